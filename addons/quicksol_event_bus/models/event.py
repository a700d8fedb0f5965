"""``quicksol.event``: one emitted event routed async — the outbox row and its history."""

import json
import uuid

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from quicksol_bus.topology import QUEUES

from ..client_address import outside_request
from .event_delivery import DELIVERY_STATES, is_internal

WORKER_GROUP = "quicksol_event_bus.group_event_bus_worker"
MANAGER_GROUP = "quicksol_event_bus.group_event_bus_manager"

# An event's state summarises its deliveries, worst first.
_STATE_ORDER = ("dead", "failed", "pending", "queued", "done")


class QuicksolEvent(models.Model):
    _name = "quicksol.event"
    _description = "Event Bus Event"
    _order = "id desc"
    _rec_name = "name"

    uuid = fields.Char(string="Event ID", required=True, readonly=True, index=True, copy=False)
    name = fields.Char(string="Event", required=True, readonly=True, index=True)
    state = fields.Selection(DELIVERY_STATES, compute="_compute_state", store=True, index=True, readonly=True)
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

    @api.depends("delivery_ids.state")
    def _compute_state(self):
        for event in self:
            states = set(event.delivery_ids.mapped("state"))
            event.state = next((s for s in _STATE_ORDER if s in states), "pending")

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
        if any(event.state in ("pending", "queued") for event in self):
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

    # ------------------------------------------------------------------ outbox

    @api.model
    def _insert_outbox(self, event_name, model, res_ids, payload, context_snapshot, deliveries):
        """Insert one event and its deliveries with two SQL statements.

        This is the hot path of every emit routed async, so it skips the ORM's create (about
        2 ms for the two records, ten times the SQL): the rows are new, nothing of them is in
        the ORM cache, and the stored ``state`` is written as the compute would set it.
        ``deliveries`` is a list of ``(ObserverSpec, state, run_mode)``; returns the event and
        its pending deliveries.
        """
        states = {state for _spec, state, _mode in deliveries}
        event_state = next((s for s in _STATE_ORDER if s in states), "pending")
        uid = self.env.uid
        self.env.cr.execute(
            """INSERT INTO quicksol_event (uuid, name, state, model, res_ids, payload, user_id,
                                           company_id, context_snapshot, create_uid, write_uid,
                                           create_date, write_date)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,
                       now() at time zone 'utc', now() at time zone 'utc')
               RETURNING id""",
            [
                str(uuid.uuid4()),
                event_name,
                event_state,
                model or None,
                json.dumps(res_ids),
                json.dumps(payload),
                uid,
                self.env.company.id,
                json.dumps(context_snapshot),
                uid,
                uid,
            ],
        )
        event_id = self.env.cr.fetchone()[0]
        values = [
            (
                event_id,
                spec.model,
                spec.queue,
                spec.effective_priority,
                state,
                run_mode,
                1 if state == "done" else 0,
                uid,
                uid,
            )
            for spec, state, run_mode in deliveries
        ]
        rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s, %s)"] * len(values))
        self.env.cr.execute(
            f"""INSERT INTO quicksol_event_delivery (event_id, observer, queue, priority, state,
                   run_mode, attempts, publish_attempt, create_uid, write_uid, create_date,
                   write_date, done_at)
               SELECT v.event_id, v.observer, v.queue, v.priority, v.state, v.run_mode,
                      v.attempts, 1, v.create_uid, v.write_uid, now() at time zone 'utc',
                      now() at time zone 'utc',
                      CASE WHEN v.state = 'done' THEN now() at time zone 'utc' END
                 FROM (VALUES {rows}) AS v(event_id, observer, queue, priority, state,
                                           run_mode, attempts, create_uid, write_uid)
            RETURNING id, state""",
            [item for row in values for item in row],
        )
        pending = [delivery_id for delivery_id, state in self.env.cr.fetchall() if state == "pending"]
        # sudo - quicksol.event: the emitting user has no read access to the outbox, yet the
        # bus reads back the event it just wrote for them (its uuid, for the caller).
        return (self.sudo().browse(event_id), self.env["quicksol.event.delivery"].sudo().browse(pending))

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
        with outside_request():  # observers act for the event's user, not the worker's host
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
        if delivery.state != "done":
            delivery._fail("dead", str(error or "")[:10000])
        return True

    @api.model
    def mark_coalesced(self, event_uuid, observer, into_uuid):
        """Record that a worker coalesced this delivery into an identical one (dedup).

        The delivery counts as done without running: ``into_uuid`` names the event whose run
        stands for it. Refused (False) when this delivery is done or unknown, or when the
        other one does not exist or already failed: then the worker runs it normally. If the
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
        if delivery.state == "done" or first.state in ("failed", "dead"):
            return False
        delivery._set(
            {
                "state": "done",
                "run_mode": "coalesced",
                "coalesced_into": into[0],
                "done_at": fields.Datetime.now(),
                "last_error": False,
            }
        )
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
        # 0 or less would delete the whole done history at once: refuse, never round.
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise UserError(self.env._("days must be a whole number of days, 1 or more; got %r.", days))
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
