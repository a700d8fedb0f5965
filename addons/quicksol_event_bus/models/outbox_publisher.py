"""The outbox publisher: claim pending deliveries, publish them after commit, mark them queued.

What is it?
    The half of the delivery lifecycle that moves a delivery from ``pending`` to ``queued``:
    the post-commit publish of a transaction's own events, and the relay crons that publish
    what is left (Odoo died between commit and publish, the broker was down) or lost.
How does it work?
    Rows are claimed with ``FOR UPDATE SKIP LOCKED`` (the post-commit publisher and the relay
    never publish the same row at the same time), published in one batch with publisher
    confirms (:mod:`quicksol_bus.publisher`), and marked queued in two statements.
Caveats:
    A save waits at most the connect timeout for the broker (ADR 0003): a broker that is down,
    blocked by a memory or disk alarm, or a connection another thread holds past that wait,
    counts as a failure and opens the circuit breaker, so later saves pay nothing until the
    relay's probe succeeds.
"""

import logging

from odoo import api, models
from odoo.modules.registry import Registry

from quicksol_bus.envelope import build_envelope, sign_envelope
from quicksol_bus.errors import PublishError
from quicksol_bus.publisher import OutgoingMessage, get_publisher
from quicksol_bus.states import PENDING, QUEUED
from quicksol_bus.topology import QUEUES

_logger = logging.getLogger(__name__)

# The relay runs in a cron, not in a user's save: it may wait this many connect timeouts for
# the broker's confirms and for a connection a save holds.
RELAY_PATIENCE = 5


# One file per step of the delivery lifecycle (docs/architecture.md), not one large class.
class QuicksolEventDeliveryOutbox(models.Model):
    _inherit = "quicksol.event.delivery"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _publish_committed(self, dbname, ids):
        """Post-commit hook: publish this transaction's deliveries in a cursor of our own."""
        if not ids:
            return
        try:
            registry = Registry(dbname)
            # A claim publishes at most ``relay_batch`` rows: go on, one transaction per chunk
            # (its queued marks commit at once), until every row of this transaction is sent.
            # A chunk that publishes nothing (broker down) leaves the rest to the relay.
            while ids:
                with registry.cursor() as cr:
                    env = api.Environment(cr, self.env.uid, {})
                    size = env["quicksol.event.bus"]._settings()["relay_batch"]
                    chunk, ids = ids[:size], ids[size:]
                    if not env["quicksol.event.delivery"].sudo()._publish_pending(ids=chunk):
                        return
        except Exception:
            _logger.exception("publishing %d committed deliveries failed; the relay will retry", len(ids))

    @api.model
    def _publish_pending(self, ids=None, limit=None, min_age=None, probe=False, stale_after=None, queue=None):
        """Publish pending deliveries (all, or ``ids``) and mark them queued.

        Returns how many were published; 0 when the broker is down (they stay pending) or not
        configured. An open circuit breaker skips the attempt, unless ``probe`` (the relay)
        asks to try anyway. With ``stale_after`` (seconds), deliveries *queued* that long ago
        are published again instead, with a new publish attempt (their message was lost
        outside the broker's care; a late dead letter of the old attempt is then stale).
        """
        bus = self.env["quicksol.event.bus"]
        settings = bus._settings()
        if not settings["broker_url"]:
            return 0
        if not settings["signing_key"]:
            _logger.error("EVENT_BUS_SIGNING_KEY is not set: events stay pending until it is")
            return 0
        breaker = bus._breaker(settings)
        if breaker.state == "open" and breaker.seconds_until_probe() > 0 and not probe:
            return 0  # known down: this save pays nothing, the relay will publish
        rows = self._claim(ids, limit or settings["relay_batch"], min_age, stale_after, queue)
        if not rows or not (breaker.allow() or probe):
            return 0  # a probe is used only when there is something to publish
        if stale_after:
            self._new_publish_attempt(rows)
        messages = [_outgoing_message(row, self.env.cr.dbname, settings) for row in rows]
        timeout = settings["connect_timeout"]
        patience = RELAY_PATIENCE * timeout if probe else timeout
        publisher = get_publisher(settings["broker_url"], timeout, patience)
        try:
            publisher.publish_batch(messages, lock_timeout=patience)
        except PublishError as error:
            # Down, refusing, blocked by an alarm, or busy past the wait (PublisherBusy): all
            # mean this save cannot count on the broker now.
            breaker.record_failure()
            _logger.warning(
                "broker unavailable, %d deliveries stay pending for the relay: %s", len(rows), error
            )
            return 0
        except BaseException:
            breaker.release_probe()
            raise
        breaker.record_success()
        self._mark_queued([row["id"] for row in rows], {row["event_id"] for row in rows})
        return len(rows)

    @api.model
    def _claim(self, ids, limit, min_age, stale_after, queue=None):
        """Lock and read, in one query, what the messages of up to ``limit`` deliveries need."""
        self.flush_model()  # the claim is SQL: it must see this transaction's writes (and
        self.env.flush_all()  # its buffered outbox rows, see outbox_writer.py)
        if stale_after:
            conditions = [
                f"d.state = '{QUEUED}'",
                "d.published_at < now() at time zone 'utc' - %s::interval",
            ]
            params = [f"{float(stale_after)} seconds"]
        else:
            conditions, params = [f"d.state = '{PENDING}'"], []
            if min_age:
                conditions.append("d.create_date < now() at time zone 'utc' - %s::interval")
                params.append(f"{float(min_age)} seconds")
        conditions.append("d.run_mode = 'async'")
        if queue:
            conditions.append("d.queue = %s")
            params.append(queue)
        if ids is not None:
            conditions.append("d.id = ANY(%s)")
            params.append(list(ids))
        self.env.cr.execute(
            f"""SELECT d.id, d.event_id, d.observer, d.queue, d.priority, d.publish_attempt,
                       e.uuid, e.name, e.model, e.res_ids, e.payload, e.user_id,
                       e.company_id, e.context_snapshot, e.create_date
                  FROM quicksol_event_delivery d
                  JOIN quicksol_event e ON e.id = d.event_id
                 WHERE {" AND ".join(conditions)}
              ORDER BY d.priority DESC, d.id
                 LIMIT %s
            FOR UPDATE OF d SKIP LOCKED""",  # the conditions are this method's constants
            [*params, limit],
        )
        return self.env.cr.dictfetchall()

    @api.model
    def _new_publish_attempt(self, rows):
        """Give claimed rows a new publish attempt (a stale republish is a new publish)."""
        self.env.cr.execute(
            """UPDATE quicksol_event_delivery SET publish_attempt = publish_attempt + 1
                WHERE id = ANY(%s) RETURNING id, publish_attempt""",
            [[row["id"] for row in rows]],
        )
        attempts = dict(self.env.cr.fetchall())
        for row in rows:
            row["publish_attempt"] = attempts[row["id"]]
        self.browse(list(attempts)).invalidate_recordset(["publish_attempt"])

    @api.model
    def _mark_queued(self, delivery_ids, event_ids):
        """Mark published deliveries queued, and recompute their events' states.

        Thousands of rows a batch: the ORM's write would cost more than the publish itself.
        """
        self.env.cr.execute(
            f"""UPDATE quicksol_event_delivery
                  SET state = '{QUEUED}', published_at = now() at time zone 'utc',
                      write_date = now() at time zone 'utc', write_uid = %s
                WHERE id = ANY(%s)""",
            [self.env.uid, delivery_ids],
        )
        self.browse(delivery_ids).invalidate_recordset(["state", "published_at"])
        self.env["quicksol.event"]._recompute_states(list(event_ids))

    @api.model
    def _relay_once(self):
        """Publish one batch of pending deliveries old enough to be orphans."""
        settings = self.env["quicksol.event.bus"]._settings()
        return self._publish_pending(min_age=settings["relay_min_age"], probe=True)

    @api.model
    def _cron_relay(self):
        """Publish what is still pending (crash after commit, broker down), in batches."""
        self.env.cr.execute(
            "SELECT count(*) FROM quicksol_event_delivery WHERE state = %s AND run_mode = 'async'", [PENDING]
        )
        remaining = self.env.cr.fetchone()[0]
        done = 0
        while remaining > 0:
            published = self._relay_once()
            if not published:
                break
            done += published
            remaining = max(0, remaining - published)
            # Each confirmed batch is kept even if a later one fails (as queue_job's runner).
            self.env.cr.commit()  # pylint: disable=invalid-commit
            self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        if done:
            _logger.info("relay published %d pending deliveries (%d left)", done, remaining)
        return done + self._cron_relay_stale()

    @api.model
    def _cron_relay_stale(self):
        """Publish again deliveries still queued longer than their queue's message TTL plus
        EVENT_BUS_REPUBLISH_QUEUED_AFTER: by then RabbitMQ no longer holds their message
        (consumed, or dead-lettered and reconciled), so it was lost on the worker side."""
        margin = self.env["quicksol.event.bus"]._settings()["republish_queued_after"]
        if not margin:
            return 0
        republished = 0
        for spec in QUEUES.values():
            stale_after = spec.message_ttl_ms / 1000 + margin
            count = self._publish_pending(stale_after=stale_after, probe=True, queue=spec.name)
            if count:
                _logger.warning(
                    "relay republished %d deliveries of %s queued for over %ss", count, spec.name, stale_after
                )
            republished += count
        return republished


def _outgoing_message(row, dbname, settings):
    """The signed message of one claimed delivery row (see ``_claim``)."""
    envelope = build_envelope(
        event_id=row["uuid"],
        event_name=row["name"],
        observer=row["observer"],
        queue=row["queue"],
        db=dbname,
        model=row["model"],
        res_ids=row["res_ids"] or [],
        payload=row["payload"] or {},
        uid=row["user_id"],
        company_id=row["company_id"],
        context=row["context_snapshot"] or {},
        emitted_at=row["create_date"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        attempt=row["publish_attempt"],
    )
    return OutgoingMessage(
        task_id=f"{row['uuid']}:{row['observer']}",
        envelope=sign_envelope(envelope, settings["signing_key"]),
        queue=row["queue"],
        priority=row["priority"],
    )
