"""The reason an administrator gives for an action on events (kept in their chatter)."""

from odoo import fields, models


class QuicksolEventAdminWizard(models.TransientModel):
    _name = "quicksol.event.admin.wizard"
    _description = "Event Bus Action"

    action = fields.Selection(
        [
            ("retry", "Retry"),
            ("requeue", "Requeue dead letters"),
            ("cancel", "Cancel"),
            ("mark_done", "Mark done"),
        ],
        required=True,
    )
    event_ids = fields.Many2many("quicksol.event", string="Events", required=True)
    event_count = fields.Integer(compute="_compute_event_count")
    reason = fields.Text(required=True, help="Kept in each event's history with your name.")

    def _compute_event_count(self):
        for wizard in self:
            wizard.event_count = len(wizard.event_ids)

    def action_confirm(self):
        self.ensure_one()
        self.event_ids.admin_action(self.action, self.reason)
        return {"type": "ir.actions.act_window_close"}
