"""Dead-letter reconciliation that believes only what Odoo can check itself."""

from odoo import api, fields, models
from odoo.exceptions import UserError

from quicksol_bus.topology import QUEUES

from .event import WORKER_GROUP


class QuicksolEventDeadLetter(models.Model):
    _inherit = "quicksol.event"

    @api.model
    def confirm_dead_letter(self, event_uuid, observer, reason, attempt):
        """Mark a delivery dead for a dead letter found by the reconciliation, if Odoo agrees.

        A dead letter proves less than it seems: its envelope is signed, but the queue it
        sits in and its headers (our ``quicksol_dead_*`` ones, RabbitMQ's ``x-death``) are
        not, so anyone who may write to the broker can copy a live message into
        ``<queue>.dead``. Only what Odoo can check is believed: the signed publish attempt
        must be the delivery's current one, and the delivery must have been queued for
        longer than its queue's message TTL, after which RabbitMQ holds no live copy of it
        (the rule the relay's stale republishing also relies on). ``reason`` is recorded,
        as the letter's claim. Returns ``'dead'`` (marked now or before), ``'done'``,
        ``'failed'`` (its failure stands), ``'stale'`` (another publish attempt),
        ``'unknown'`` (no such delivery) or ``'unconfirmed'`` (may still be live: ask again
        later).
        """
        self._check_group(WORKER_GROUP)
        if not isinstance(attempt, int) or isinstance(attempt, bool):
            raise UserError(self.env._("attempt must be the envelope's publish attempt (an integer)."))
        (pair,) = self._validate_items([[event_uuid, observer]])
        Delivery = self.env["quicksol.event.delivery"].sudo()
        found = Delivery._lock_pairs([pair])
        if not found:
            return "unknown"
        delivery = Delivery.browse(found[pair])
        if attempt != delivery.publish_attempt:
            return "stale"
        if delivery.state in ("done", "dead", "failed"):
            return delivery.state
        spec = QUEUES.get(delivery.queue)
        published = delivery.published_at
        if not (spec and published):
            return "unconfirmed"
        age = (fields.Datetime.now() - published).total_seconds()
        if age * 1000 <= spec.message_ttl_ms:
            return "unconfirmed"
        delivery._fail("dead", self.env._("dead letter reconciled: %s", str(reason or "")[:2000]))
        return "dead"
