"""Periodic jobs run by Celery beat: dead-letter reconciliation and clean-up of old events.

Reconciliation walks each ``<queue>.dead`` queue once (up to ``limit`` messages): a dead
letter Odoo was not told about (``quicksol_dead_marked`` false, or dead-lettered by RabbitMQ
itself on TTL expiry or an unexpected error, so without our headers) and whose signature is
valid is offered to Odoo's ``confirm_dead_letter``, with the envelope's signed publish
attempt. Nothing outside the signature is trusted: the queue a letter sits in and its
headers can be written by anyone with broker access (a genuine envelope copied into the dead
queue must not bury live work), so Odoo marks the delivery dead only when it can check the
letter itself (same publish attempt, queued for longer than the queue's message TTL); an
``unconfirmed`` letter is kept unmarked and offered again at the next run. A letter that
RabbitMQ itself dead-lettered because its message expired (``x-death`` reason ``expired``) is
not a failure: it goes to Odoo's ``mark_expired``, which publishes the delivery again with a
new attempt, or parks it after repeated expiries (docs/adr/0006). A letter that is no task
of ours is kept as it is, for a person to read, and the walk goes on. Every message is
published back to the dead queue (with confirms, marked when Odoo has settled it) before
the old copy is acked, so the dead queue keeps every dead letter for inspection and nothing
is lost if the job dies half-way.
"""

import logging
import xmlrpc.client

from quicksol_bus.errors import SignatureError
from quicksol_bus.topology import QUEUES

from .broker import BrokerLink
from .connector import get_connector
from .messages import from_kombu_message, verify
from .outcome import classify_exception

__all__ = ["reconcile_dead_letters", "cleanup_done_events"]

_logger = logging.getLogger(__name__)


def _reason(delivery):
    reason = delivery.headers.get("quicksol_dead_reason")
    if reason:
        return reason
    deaths = delivery.headers.get("x-death") or []
    if deaths:
        return f"dead-lettered by RabbitMQ: {deaths[0].get('reason')} in {deaths[0].get('queue')}"
    return "dead-lettered"


# Odoo's verdict on a dead letter -> its quicksol_dead_marked header: True (Odoo holds the
# delivery's final state), False (offer it again later), "n/a" (nothing to tell Odoo).
_MARKED = {
    "dead": True,
    "failed": True,
    "done": "n/a",
    "stale": "n/a",
    "unknown": "n/a",
    "unconfirmed": False,
}


def _expired(delivery):
    """True when RabbitMQ dead-lettered the message because its queue's TTL ran out."""
    if delivery.headers.get("quicksol_dead_reason"):
        return False  # a worker dead-lettered it, with its reason
    deaths = delivery.headers.get("x-death") or []
    return bool(deaths) and deaths[0].get("reason") == "expired"


# Odoo's answer to mark_expired -> the letter's quicksol_dead_marked header.
_EXPIRED_MARKED = {"republished": True, "parked": True, "unconfirmed": False}


def _settle_with_odoo(connector, delivery):
    """Ask Odoo about a verified letter; return its new quicksol_dead_marked and whether
    Odoo marked the delivery dead now."""
    if _expired(delivery) and delivery.attempt is not None:
        verdict = connector.execute("mark_expired", delivery.event_id, delivery.observer, delivery.attempt)
        return _EXPIRED_MARKED.get(verdict, "n/a"), verdict == "parked"
    verdict = _confirm(connector, delivery)
    return _MARKED[verdict], verdict == "dead"


def _confirm(connector, delivery):
    if delivery.attempt is None:
        return "unknown"  # an envelope without a publish attempt names no delivery of ours
    verdict = connector.execute(
        "confirm_dead_letter",
        delivery.event_id,
        delivery.observer,
        _reason(delivery)[:2000],
        delivery.attempt,
    )
    return verdict if verdict in _MARKED else "unconfirmed"


def reconcile_dead_letters(app, limit=1000, broker=None, connector=None):
    """Return {queue: number of dead letters newly marked dead in Odoo}."""
    config = app.quicksol_config
    broker = broker or BrokerLink(app)
    connector = connector or get_connector(config)
    marked = {}
    try:
        for spec in QUEUES.values():
            depth = min(limit, broker.queue_depth(spec.dead_queue))
            marked[spec.name] = 0
            odoo_ok = True
            for message in broker.pull(spec.dead_queue, depth):
                try:
                    delivery = from_kombu_message(message, spec.name)
                except ValueError as error:
                    # Not a task of ours (a poison message the workers dead-lettered as it
                    # came): kept, moved to the end of the dead queue, for a person to read.
                    broker.dead_letter_raw(
                        message, spec.name, message.headers.get("quicksol_dead_reason") or str(error)
                    )
                    message.ack()
                    continue
                state = delivery.headers.get("quicksol_dead_marked")
                now_marked = False if state is None else state
                if state not in (True, "n/a") and odoo_ok:
                    try:
                        verify(delivery, config.signing_key)
                    except SignatureError:
                        now_marked = "n/a"
                    else:
                        try:
                            now_marked, dead_now = _settle_with_odoo(connector, delivery)
                            marked[spec.name] += dead_now
                        except Exception as error:
                            if classify_exception(error) is None:
                                raise
                            odoo_ok = False  # try again next run
                            now_marked = False
                broker.dead_letter(delivery, _reason(delivery), now_marked)
                message.ack()
    finally:
        broker.close()
    _logger.info("dead-letter reconciliation: %s", marked)
    return marked


def cleanup_done_events(app, connector=None):
    """Ask Odoo (``purge_done(days)``) to delete done events older than the retention."""
    config = app.quicksol_config
    connector = connector or get_connector(config)
    try:
        removed = connector.execute("purge_done", config.retention_days)
    except xmlrpc.client.Fault as fault:
        _logger.warning("clean-up not available in Odoo: %s", str(fault.faultString)[-300:])
        return None
    _logger.info("clean-up removed %s done events older than %s days", removed, config.retention_days)
    return removed
