"""``quicksol.event``: one emitted event routed async — the outbox row and its history."""

import json

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from quicksol_bus.states import DEAD, DONE, PENDING, QUEUED, UNFINISHED, worst_state_sql
from quicksol_bus.topology import QUEUES

from .event_delivery import DELIVERY_STATES, MANAGER_GROUP, is_internal

WORKER_GROUP = "quicksol_event_bus.group_event_bus_worker"


class QuicksolEvent(models.Model):
    _name = "quicksol.event"
    _description = "Event Bus Event"
    _order = "id desc"
    _rec_name = "name"

    uuid = fields.Char(string="Event ID", required=True, readonly=True, index=True, copy=False)
    name = fields.Char(string="Event", required=True, readonly=True, index=True)
    # Stored, never computed by the ORM: _recompute_states() sets it after every transition
    # of a delivery, under the event's row lock (two workers finishing two deliveries of one
    # event at once each see the other's work).
    state = fields.Selection(DELIVERY_STATES, default=PENDING, index=True, readonly=True)
    model = fields.Char(readonly=True, index=True)
    res_ids = fields.Json(string="Record IDs", readonly=True)
    payload = fields.Json(string="Data", readonly=True)
    payload_text = fields.Text(string="Data (JSON)", compute="_compute_payload_text")
    user_id = fields.Many2one("res.users", string="Emitted by", readonly=True, index=True)
    company_id = fields.Many2one("res.company", readonly=True)
    context_snapshot = fields.Json(readonly=True)
    delivery_ids = fields.One2many("quicksol.event.delivery", "event_id", readonly=True)
    observers = fields.Char(compute="_compute_summary", string="Target observers")
    attempts = fields.Integer(compute="_compute_summary")
    last_error = fields.Text(compute="_compute_summary")

    _sql_constraints = [("uuid_unique", "unique(uuid)", "The event id must be unique.")]

    @api.depends("delivery_ids.observer", "delivery_ids.attempts", "delivery_ids.last_error")
    def _compute_summary(self):
        for event in self:
            deliveries = event.delivery_ids
            event.observers = ", ".join(deliveries.mapped("observer"))
            event.attempts = sum(deliveries.mapped("attempts"))
            event.last_error = next((d.last_error for d in deliveries if d.last_error), False)

    @api.depends("payload")
    def _compute_payload_text(self):
        for event in self:
            event.payload_text = json.dumps(event.payload, indent=2, sort_keys=True, ensure_ascii=False)

    # ------------------------------------------------------------------ protection

    @api.model_create_multi
    def create(self, vals_list):
        self._check_internal(self.env._("Events are created by the event bus only."))
        return super().create(vals_list)

    def write(self, vals):
        self._check_internal(self.env._("Events cannot be edited; use the Requeue button."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_unfinished(self):
        # The deliveries' own states, not the summary: an event with a failed and a queued
        # delivery shows "failed", and deleting it would lose the queued one.
        if any(delivery.state in UNFINISHED for delivery in self.sudo().delivery_ids):
            raise UserError(
                self.env._(
                    "Pending or queued events cannot be deleted: they would "
                    "be lost. Let them finish, or fail."
                )
            )

    def _check_internal(self, message):
        if not is_internal(self.env):
            raise AccessError(message)

    def _check_group(self, xmlid):
        if not (self.env.su or self.env.user.has_group(xmlid)):
            raise AccessError(self.env._("This operation is reserved to the group %s.", xmlid))

    # ------------------------------------------------------------------ state

    @api.model
    def _recompute_states(self, event_ids):
        """Set each event's state to its worst delivery's (:mod:`quicksol_bus.states`).

        Called after every transition of a delivery. Every event row is written, changed or
        not: two workers that finish the two deliveries of one event at once would otherwise
        each read the other's delivery as unfinished (Odoo's transactions are REPEATABLE
        READ) and leave the event queued forever. Writing the row makes the second of them
        wait for the first and then fail with a serialization error, which Odoo's request
        retry turns into a second run that reads both results (the runner lets it through).
        """
        event_ids = sorted(set(event_ids))
        if not event_ids:
            return
        self.env["quicksol.event.delivery"].flush_model(["state"])
        self.env.cr.execute(
            f"""UPDATE quicksol_event e SET state = worst.state
                 FROM (SELECT event_id, {worst_state_sql("state")} AS state
                         FROM quicksol_event_delivery
                        WHERE event_id = ANY(%s)
                     GROUP BY event_id) worst
                WHERE e.id = worst.event_id""",
            [event_ids],
        )
        self.browse(event_ids).invalidate_recordset(["state", "observers", "attempts", "last_error"])

    # ------------------------------------------------------------------ worker API (RPC)

    @api.model
    def run_async(self, event_uuid, observer):
        """Run ``observer.handle_async`` for one event, at most once; see run_async_batch."""
        return self.run_async_batch([[event_uuid, observer]])[0]

    @api.model
    def run_async_batch(self, items):
        """Run many ``[event_uuid, observer]`` pairs; return one result dict per item.

        Each pair runs under a row lock, with its done mark in this same transaction, so a
        redelivered message finds the work done: ``{'status': 'already_done'}``. Statuses:
        done, already_done, failed (permanent error, recorded), retry (transient error,
        recorded; the worker should retry), unknown (no such pair).
        """
        self._check_group(WORKER_GROUP)
        pairs = self._validate_items(items)
        Delivery = self.env["quicksol.event.delivery"].sudo()
        found = Delivery._lock_pairs(pairs)
        results = Delivery.browse(list(found.values()))._run_locked()
        return [
            results[found[pair]]
            if pair in found
            else {"status": "unknown", "error": "no such event and observer", "permanent": True}
            for pair in pairs
        ]

    @api.model
    def mark_dead(self, event_uuid, observer, error, attempt=None):
        """Record that a worker dead-lettered this delivery after its last try (idempotent).

        ``attempt`` is the envelope's publish attempt: a dead letter of an earlier publish
        than the delivery's current one (it was requeued since) is stale and ignored, so a
        late reconciliation cannot bury the requeued work.
        """
        self._check_group(WORKER_GROUP)
        (pair,) = self._validate_items([[event_uuid, observer]])
        Delivery = self.env["quicksol.event.delivery"].sudo()
        found = Delivery._lock_pairs([pair])
        if not found:
            return False
        delivery = Delivery.browse(found[pair])
        if attempt is not None and int(attempt) < delivery.publish_attempt:
            return False
        if delivery.state != DONE:
            delivery._fail(DEAD, str(error or "")[:10000])
        return True

    @api.model
    def mark_expired(self, event_uuid, observer, attempt):
        """Record that RabbitMQ expired this delivery's message (its queue's TTL) unconsumed.

        Expiry means no worker took the message in time (workers down or overwhelmed), not
        that the work is bad: the delivery is published again with a new attempt, up to
        ``EVENT_BUS_MAX_EXPIRIES`` times; after that it is parked as dead with a reason that
        says so, for an administrator to requeue once workers run (docs/adr/0006). Returns
        ``"republished"``, ``"parked"`` or False (unknown, stale attempt, or already ended).
        """
        self._check_group(WORKER_GROUP)
        (pair,) = self._validate_items([[event_uuid, observer]])
        Delivery = self.env["quicksol.event.delivery"].sudo()
        found = Delivery._lock_pairs([pair])
        if not found:
            return False
        delivery = Delivery.browse(found[pair])
        if int(attempt) < delivery.publish_attempt or delivery.state not in UNFINISHED:
            return False
        expiries = delivery.expired_count + 1
        delivery._set({"expired_count": expiries})
        limit = self.env["quicksol.event.bus"]._settings()["max_expiries"]
        if expiries > limit:
            delivery._fail(
                DEAD,
                f"expired {expiries} times in {delivery.queue}: no worker took it within the queue's "
                "message TTL; requeue it once the workers run",
            )
            return "parked"
        delivery._set(
            {"last_error": f"expired in {delivery.queue} (no worker took it in time); published again"}
        )
        delivery._requeue()
        return "republished"

    @api.model
    def mark_coalesced(self, event_uuid, observer, into_uuid):
        """Record that a worker coalesced this delivery into an identical one (dedup).

        The delivery counts as done without running: ``into_uuid`` names the event whose run
        stands for it. Refused (False) when this delivery is done or unknown, or when the
        other one does not exist or has already run or failed: then the worker runs it
        normally. If the
        other one fails later, this one fails with it (see quicksol.event.delivery._fail).
        """
        self._check_group(WORKER_GROUP)
        pair, into = self._validate_items([[event_uuid, observer], [into_uuid, observer]])
        if pair == into:
            return False
        Delivery = self.env["quicksol.event.delivery"].sudo()
        found = Delivery._lock_pairs([pair, into])
        if pair not in found or into not in found:
            return False
        delivery, first = Delivery.browse(found[pair]), Delivery.browse(found[into])
        # Only into a first event that has not run yet: one that ran already cannot stand for
        # a later one (A, then B, then A again: the second A must run after B).
        if delivery.state == DONE or first.state not in (PENDING, QUEUED):
            return False
        delivery._mark_coalesced_into(first)
        return True

    @api.model
    def observer_info(self):
        """Worker-side settings of every observer, by observer model name."""
        self._check_group(WORKER_GROUP)
        info = {}
        for spec in self.env["quicksol.event.bus"]._observer_index().specs:
            cls = self.pool[spec.model]
            info[spec.model] = {
                "events": list(spec.events),
                "async_capable": spec.async_capable,
                "queue": spec.queue,
                "priority": spec.effective_priority,
                "async_batch": spec.batchable,
                "debounce_seconds": cls._debounce_seconds,
                "dedup_window": cls._dedup_window,
                "rate_limit": cls._rate_limit or False,  # XML-RPC carries no None
            }
        return info

    @api.model
    def _validate_items(self, items):
        if not isinstance(items, (list, tuple)):
            raise UserError(self.env._("items must be a list of [event_uuid, observer] pairs."))
        pairs = []
        for item in items:
            if (
                not isinstance(item, (list, tuple))
                or len(item) != 2
                or not all(isinstance(part, str) and part for part in item)
            ):
                raise UserError(
                    self.env._("Each item must be an [event_uuid, observer] pair of strings, got %r.", item)
                )
            pairs.append(tuple(item))
        return pairs

    # ------------------------------------------------------------------ admin buttons

    def action_requeue(self):
        """Put failed and dead deliveries back on their queue (published after commit)."""
        self._check_group(MANAGER_GROUP)
        return self.delivery_ids.action_requeue()

    def action_run_inline(self):
        """Run pending, failed or dead deliveries here and now (broker down for long)."""
        self._check_group(MANAGER_GROUP)
        deliveries = self.sudo().delivery_ids.filtered(lambda d: d.state in ("pending", "failed", "dead"))
        if not deliveries:
            raise UserError(self.env._("Nothing to run: every delivery is queued or done."))
        deliveries._run_inline_now()
        return True

    # ------------------------------------------------------------------ maintenance

    @api.model
    def purge_done(self, days=None, limit=10000):
        """Delete done events older than ``days`` (default: the retention parameter)."""
        if not self.env.su:
            self._check_group(WORKER_GROUP)
        if days is None:
            days = int(
                self.env["ir.config_parameter"].sudo().get_param("quicksol_event_bus.done_retention_days", 30)
            )
        self.env.flush_all()  # the SQL below reads the stored event states
        self.env.cr.execute(
            """DELETE FROM quicksol_event WHERE id IN (
                   SELECT id FROM quicksol_event
                    WHERE state = 'done' AND create_date < now() at time zone 'utc' - %s::interval
                    ORDER BY id LIMIT %s)""",
            [f"{int(days)} days", int(limit)],
        )
        purged = self.env.cr.rowcount
        self.env.invalidate_all()  # rows (and their deliveries, by cascade) left behind the ORM
        return purged

    @api.model
    def queue_names(self):
        return sorted(QUEUES)
