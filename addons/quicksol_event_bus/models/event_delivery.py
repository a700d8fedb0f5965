"""``quicksol.event.delivery``: one event for one async observer — the unit of exactly-once.

The delivery lifecycle lives in three files, one job each:

- this one: the model (fields, protection against writes from outside the bus, the one
  transition method, admin actions);
- ``outbox_publisher.py``: claim pending rows, publish them after commit, mark them queued,
  the relay crons;
- ``delivery_runner.py``: lock, run the observer, mark done, fail, dead, coalesced.

Every state change goes through :meth:`QuicksolEventDelivery._transition` (or, for the
batched SQL paths, ends with ``quicksol.event._recompute_states``), which keeps each event's
state equal to its worst delivery's (:mod:`quicksol_bus.states`).
"""

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from quicksol_bus.states import DEAD, FAILED, PENDING, STATES, UNFINISHED
from quicksol_bus.topology import QUEUES

DELIVERY_STATES = STATES
INTERNAL_KEY = "quicksol_event_bus_internal"
# The value of INTERNAL_KEY with which the bus writes its own rows: an object, so an RPC
# caller cannot forge it through the context (as queue_job's EDIT_SENTINEL).
INTERNAL = object()
MANAGER_GROUP = "quicksol_event_bus.group_event_bus_manager"


def is_internal(env):
    return env.context.get(INTERNAL_KEY) is INTERNAL


class QuicksolEventDelivery(models.Model):
    _name = "quicksol.event.delivery"
    _description = "Event Bus Delivery"
    _order = "id desc"
    _rec_name = "observer"

    event_id = fields.Many2one("quicksol.event", required=True, ondelete="cascade", index=True, readonly=True)
    event_uuid = fields.Char(related="event_id.uuid", string="Event UUID")
    event_name = fields.Char(related="event_id.name", string="Event Name")
    observer = fields.Char(required=True, readonly=True, index=True)
    queue = fields.Selection([(name, name) for name in QUEUES], required=True, readonly=True)
    priority = fields.Integer(readonly=True)
    state = fields.Selection(DELIVERY_STATES, required=True, default=PENDING, index=True, readonly=True)
    run_mode = fields.Selection(
        [
            ("async", "Worker"),
            ("inline", "Inline (logged)"),
            ("inline_fallback", "Inline (broker down)"),
            ("inline_admin", "Inline (administrator)"),
            ("coalesced", "Coalesced into another event"),
        ],
        default="async",
        required=True,
        readonly=True,
    )
    coalesced_into = fields.Char(
        readonly=True, help="UUID of the identical event whose run stood for this one (dedup)."
    )
    publish_attempt = fields.Integer(
        default=1, readonly=True, help="Incremented by every requeue; travels in the message."
    )
    attempts = fields.Integer(default=0, readonly=True, help="Runs of the observer that ended.")
    expired_count = fields.Integer(
        string="Expiries", default=0, readonly=True, help="Times its message expired in the queue unconsumed."
    )
    last_error = fields.Text(readonly=True)
    published_at = fields.Datetime(readonly=True)
    done_at = fields.Datetime(readonly=True)
    duration_ms = fields.Float(string="Run time (ms)", readonly=True, digits=(16, 1))

    _sql_constraints = [
        (
            "event_observer_unique",
            "unique(event_id, observer)",
            "An event is delivered once to each observer.",
        ),
    ]

    # ------------------------------------------------------------------ protection

    @api.model_create_multi
    def create(self, vals_list):
        if not is_internal(self.env):
            raise AccessError(self.env._("Deliveries are created by the event bus only."))
        return super().create(vals_list)

    def write(self, vals):
        if not is_internal(self.env):
            raise AccessError(self.env._("Deliveries cannot be edited; use the Requeue button."))
        return super().write(vals)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_unfinished(self):
        if not is_internal(self.env) and any(d.state in UNFINISHED for d in self):
            raise UserError(
                self.env._(
                    "Pending or queued deliveries cannot be deleted: their "
                    "events would be lost. Let them finish, or fail."
                )
            )

    def _set(self, vals):
        """Write the bus's own fields. Whoever changes ``state`` this way must recompute the
        events' states afterwards: :meth:`_transition` does both."""
        return self.sudo().with_context(**{INTERNAL_KEY: INTERNAL}).write(vals)

    def _transition(self, vals):
        """Write ``vals`` (which may change ``state``), then recompute the events' states."""
        self._set(vals)
        if "state" in vals:
            self.env["quicksol.event"]._recompute_states(self.event_id.ids)

    # ------------------------------------------------------------------ admin actions

    def action_requeue(self):
        """Put the selected failed or dead deliveries back on their queue."""
        if not (self.env.su or self.env.user.has_group(MANAGER_GROUP)):
            raise AccessError(self.env._("Only event bus administrators can requeue deliveries."))
        deliveries = self.sudo().filtered(lambda d: d.state in (FAILED, DEAD))
        if not deliveries:
            raise UserError(self.env._("Only failed or dead-lettered deliveries can be requeued."))
        deliveries._requeue()
        return True

    def _requeue(self):
        """Back to pending with a new publish attempt: older messages and dead letters of
        this delivery are recognised as stale by their attempt."""
        for delivery in self:
            delivery._set({"publish_attempt": delivery.publish_attempt + 1})
        self._transition({"state": PENDING, "run_mode": "async"})
        self.env["quicksol.event.bus"]._publish_after_commit(self)

    def _run_inline_now(self):
        pairs = [(d.event_id.uuid, d.observer) for d in self]
        found = self._lock_pairs(pairs)
        results = self.browse(list(found.values()))._run_locked(run_mode="inline_admin")
        failures = [r["error"] for r in results.values() if r["status"] not in ("done", "already_done")]
        if failures:
            raise UserError(self.env._("Some deliveries failed:\n%s", "\n".join(failures[:5])))
