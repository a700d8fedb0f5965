"""Administration of events: chatter, readable labels, the record one click away, and the
admin actions (retry, requeue, cancel, mark done) logged with who did them and why.

The outbox rows are written by the bus only (``quicksol.event.delivery._transition``); every
state change an administrator makes goes through :func:`_finish` or :func:`_requeue` below, the
one place of this addon that calls the delivery's internal writers.
"""

from datetime import timedelta

from markupsafe import Markup, escape
from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

MANAGER_GROUP = "quicksol_event_bus.group_event_bus_manager"

# action -> (delivery states it applies to, what it does)
ADMIN_ACTIONS = {
    "retry": ("failed",),
    "requeue": ("dead",),
    "cancel": ("pending", "queued", "failed", "dead"),
    "mark_done": ("failed", "dead"),
}
# Run modes of deliveries an administrator finished without running their observer; the
# delivery is done (a late message finds it done and is skipped by the worker).
FINISH_RUN_MODES = {"cancel": "cancelled", "mark_done": "marked_done"}
RECORD_NAMES_SHOWN = 5


def _finish(deliveries, run_mode):
    """Mark ``deliveries`` done without running them, and store their events' states."""
    deliveries._transition(
        {"state": "done", "run_mode": run_mode, "done_at": fields.Datetime.now(), "last_error": False}
    )


def _requeue(deliveries):
    """Put ``deliveries`` back in the outbox; they are published after commit."""
    deliveries._requeue()


class QuicksolEventDeliveryAdmin(models.Model):
    _inherit = "quicksol.event.delivery"

    run_mode = fields.Selection(
        selection_add=[
            ("cancelled", "Cancelled by an administrator"),
            ("marked_done", "Marked done by an administrator"),
            ("disabled", "Skipped: observer disabled"),
        ],
        ondelete={"cancelled": "set default", "marked_done": "set default", "disabled": "set default"},
    )


class QuicksolEventAdmin(models.Model):
    _name = "quicksol.event"
    _inherit = ["quicksol.event", "mail.thread"]

    model_label = fields.Char(string="Model name", compute="_compute_labels")
    record_names = fields.Char(string="Records", compute="_compute_labels")
    pending_minutes = fields.Integer(
        string="Pending for at least (minutes)",
        compute="_compute_pending_minutes",
        search="_search_pending_minutes",
        help="Minutes since the event was emitted while it is still pending.",
    )

    @api.depends("model", "res_ids")
    def _compute_labels(self):
        models_by_name = {m.model: m.name for m in self.env["ir.model"].sudo().search([])}
        for event in self:
            event.model_label = models_by_name.get(event.model, event.model or False)
            event.record_names = event._record_names()

    def _record_names(self):
        ids = [i for i in (self.res_ids or []) if isinstance(i, int)]
        if not (self.model and ids) or self.model not in self.env:
            return False
        records = self.env[self.model].browse(ids[:RECORD_NAMES_SHOWN])
        try:
            names = [r.display_name for r in records.exists()]
        except AccessError:
            names = [f"#{i}" for i in records.ids]
        more = len(ids) - RECORD_NAMES_SHOWN
        return ", ".join(names) + (self.env._(" and %s more", more) if more > 0 else "")

    @api.depends("state", "create_date")
    def _compute_pending_minutes(self):
        now = fields.Datetime.now()
        for event in self:
            if event.state == "pending" and event.create_date:
                event.pending_minutes = int((now - event.create_date).total_seconds() // 60)
            else:
                event.pending_minutes = 0

    def _search_pending_minutes(self, operator, value):
        """Any comparison means "pending for at least ``value`` minutes" (search box, filter)."""
        if not isinstance(value, int) or operator not in ("=", ">=", ">"):
            raise UserError(self.env._("Search pending events with a whole number of minutes."))
        minutes = value + 1 if operator == ">" else value
        since = fields.Datetime.now() - timedelta(minutes=minutes)
        return [("state", "=", "pending"), ("create_date", "<=", since)]

    # ------------------------------------------------------------------ navigation

    def action_open_record(self):
        """Open the record(s) the event is about."""
        self.ensure_one()
        ids = [i for i in (self.res_ids or []) if isinstance(i, int)]
        if not (self.model and ids) or self.model not in self.env:
            raise UserError(self.env._("This event is about no record of an installed model."))
        action = {
            "type": "ir.actions.act_window",
            "res_model": self.model,
            "name": self.model_label,
            "target": "current",
        }
        if len(ids) == 1:
            return {**action, "res_id": ids[0], "view_mode": "form", "views": [(False, "form")]}
        return {
            **action,
            "domain": [("id", "in", ids)],
            "view_mode": "list,form",
            "views": [(False, "list"), (False, "form")],
        }

    def action_open_admin_wizard(self):
        """Ask for the reason of the action named in the context (``admin_action``)."""
        action = self.env.context.get("admin_action")
        if action not in ADMIN_ACTIONS:
            raise UserError(self.env._("Unknown event bus action %r.", action))
        self._check_manager()
        return {
            "type": "ir.actions.act_window",
            "res_model": "quicksol.event.admin.wizard",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {"default_action": action, "default_event_ids": self.ids},
        }

    # ------------------------------------------------------------------ admin actions

    def _check_manager(self):
        if not (self.env.su or self.env.user.has_group(MANAGER_GROUP)):
            raise AccessError(self.env._("Only event bus administrators can change events."))

    def admin_action(self, action, reason):
        """Apply ``action`` (retry, requeue, cancel, mark_done) to these events' deliveries.

        Each event changed gets a chatter message with the administrator (its author), the
        action, the deliveries and ``reason``. Events with nothing to do are left alone;
        returns the number of deliveries changed and fails when there is none.
        """
        self._check_manager()
        if action not in ADMIN_ACTIONS:
            raise UserError(self.env._("Unknown event bus action %r.", action))
        reason = (reason or "").strip()
        if not reason:
            raise UserError(self.env._("Say why: the reason is kept in the event's history."))
        self.check_access("read")
        states = ADMIN_ACTIONS[action]
        # sudo - quicksol.event.delivery: administrators read deliveries but only the bus
        # writes them; the group was checked above.
        deliveries = self.sudo().delivery_ids.filtered(lambda d: d.state in states)
        if not deliveries:
            raise UserError(
                self.env._(
                    "Nothing to %(action)s: no delivery of the selected events is %(states)s.",
                    action=self._action_label(action),
                    states=", ".join(states),
                )
            )
        summary = {event: event.delivery_ids & deliveries for event in self.sudo()}
        if action in FINISH_RUN_MODES:
            _finish(deliveries, FINISH_RUN_MODES[action])
        else:
            _requeue(deliveries)
        for event, changed in summary.items():
            if changed:
                event._log_admin_action(action, changed, reason)
        return len(deliveries)

    def _action_label(self, action):
        return dict(
            self.env["quicksol.event.admin.wizard"]._fields["action"]._description_selection(self.env)
        )[action]

    def _log_admin_action(self, action, deliveries, reason):
        body = Markup("<p><b>%s</b>: %s</p><p>%s %s</p>") % (
            self._action_label(action),
            ", ".join(deliveries.mapped("observer")),
            self.env._("Reason:"),
            escape(reason),
        )
        # The author is the administrator (env.user), also under sudo.
        self.message_post(body=body, message_type="comment", subtype_xmlid="mail.mt_note")
