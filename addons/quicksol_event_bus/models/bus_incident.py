"""``quicksol.event.bus.incident``: one open incident per raised alert signal.

A cron takes a monitor snapshot every minute and evaluates it (``quicksol_bus.alerts``): a
signal with no open incident opens one, with one activity for a bus administrator and one
e-mail to all of them; a signal still raised only updates its incident (no mail a minute); an
open incident whose signal is gone is closed, its activity marked done.
"""

import logging

from markupsafe import Markup
from odoo import api, fields, models

from quicksol_bus.alerts import KINDS, Thresholds, evaluate

_logger = logging.getLogger(__name__)

MANAGER_GROUP = "quicksol_event_bus.group_event_bus_manager"


class QuicksolEventBusIncident(models.Model):
    _name = "quicksol.event.bus.incident"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _description = "Event Bus Incident"
    _order = "state desc, opened_at desc"

    name = fields.Char(required=True, readonly=True)
    key = fields.Char(
        required=True, readonly=True, index=True, help="The alert signal, e.g. queue_depth:audit_events"
    )
    kind = fields.Selection(list(KINDS.items()), required=True, readonly=True)
    state = fields.Selection(
        [("open", "Open"), ("closed", "Closed")], default="open", required=True, readonly=True, index=True
    )
    opened_at = fields.Datetime(default=fields.Datetime.now, required=True, readonly=True)
    closed_at = fields.Datetime(readonly=True)
    last_seen_at = fields.Datetime(readonly=True)
    value = fields.Float(readonly=True, digits=(16, 3))
    threshold = fields.Float(readonly=True, digits=(16, 3))
    message = fields.Char(readonly=True)

    @api.model
    def _cron_check_alerts(self):
        self._check_alerts()

    @api.model
    def _check_alerts(self, snapshot=None):
        """Open, update and close incidents from ``snapshot`` (default: a fresh one)."""
        monitor = self.env["quicksol.event.bus.monitor"].sudo()
        if snapshot is None:
            snapshot = monitor.snapshot()
        thresholds = Thresholds.from_settings(self.env["quicksol.event.bus"]._settings())
        signals = {signal.key: signal for signal in evaluate(snapshot, thresholds)}
        # sudo - quicksol.event.bus.incident: the cron (and tests) act for the bus.
        Incident = self.sudo()
        open_incidents = {i.key: i for i in Incident.search([("state", "=", "open")])}
        now = fields.Datetime.now()
        for key, incident in open_incidents.items():
            if key not in signals:
                incident._close(now)
        for key, signal in signals.items():
            incident = open_incidents.get(key)
            values = {
                "value": signal.value,
                "threshold": signal.threshold,
                "message": signal.message,
                "last_seen_at": now,
            }
            if incident:
                incident.write(values)
            else:
                Incident._open(signal, values)
        return signals

    @api.model
    def _admins(self):
        group = self.env.ref(MANAGER_GROUP)
        worker = self.env.ref("quicksol_event_bus.user_event_bus_worker")
        return group.users.filtered(lambda u: u.active and not u.share and u != worker).sorted("id")

    @api.model
    def _open(self, signal, values):
        incident = self.create(
            {
                "name": f"{KINDS[signal.kind]}: {signal.key.partition(':')[2] or signal.message}",
                "key": signal.key,
                "kind": signal.kind,
                **values,
            }
        )
        admins = self._admins()
        _logger.warning("event bus incident opened: %s", signal.message)
        if not admins:
            return incident
        # quick_update: no "assigned to you" mail on top of the incident's own e-mail.
        incident.with_context(mail_activity_quick_update=True).activity_schedule(
            "mail.mail_activity_data_todo",
            summary=incident.name,
            note=signal.message,
            user_id=admins[0].id,
        )
        recipients = admins.partner_id.filtered("email")
        if recipients:
            self.env["mail.mail"].create(
                {
                    "subject": self.env._("Event bus incident: %s", incident.name),
                    "body_html": Markup("<p>%s</p><p>%s</p>")
                    % (signal.message, self.env._("It is closed by itself when the signal clears.")),
                    "recipient_ids": [(6, 0, recipients.ids)],
                    "model": self._name,
                    "res_id": incident.id,
                    "auto_delete": False,
                }
            )
        return incident

    def _close(self, now):
        self.write({"state": "closed", "closed_at": now})
        for incident in self:
            incident.activity_ids.action_feedback(feedback=self.env._("Cleared by itself."))
            incident.message_post(body=self.env._("Cleared: the signal is back under its threshold."))
