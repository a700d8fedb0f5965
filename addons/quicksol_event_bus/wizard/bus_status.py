"""The Broker and workers screen: a snapshot of ``quicksol.event.bus.monitor`` in a form."""

from odoo import api, fields, models

CIRCUIT_STATES = [
    ("closed", "Closed (publishing)"),
    ("open", "Open (broker down, saves skip it)"),
    ("half_open", "Half-open (probing)"),
    ("sync", "Sync mode (no broker configured)"),
]


class QuicksolEventBusStatus(models.TransientModel):
    _name = "quicksol.event.bus.status"
    _description = "Event Bus: Broker and Workers"

    checked_at = fields.Datetime(readonly=True)
    broker_reachable = fields.Boolean(readonly=True)
    broker_error = fields.Char(readonly=True)
    broker_url = fields.Char(string="Broker", readonly=True)
    circuit_state = fields.Selection(CIRCUIT_STATES, readonly=True)
    outbox_pending = fields.Integer(string="Unpublished deliveries", readonly=True)
    outbox_oldest_seconds = fields.Float(string="Oldest unpublished (s)", readonly=True, digits=(16, 1))
    failure_rate = fields.Float(string="Failure rate, last hour (%)", readonly=True, digits=(16, 1))
    workers_reachable = fields.Boolean(readonly=True)
    workers_error = fields.Char(readonly=True)
    workers_online = fields.Integer(readonly=True)
    worker_names = fields.Text(string="Workers", readonly=True)
    queue_ids = fields.One2many("quicksol.event.bus.status.queue", "status_id", readonly=True)
    rabbitmq_management_url = fields.Char(string="RabbitMQ management", readonly=True)
    flower_url = fields.Char(string="Flower", readonly=True)
    notice = fields.Char(readonly=True, help="The outcome of the last action on this screen.")

    @api.model
    def _values_from_snapshot(self, snapshot):
        broker = snapshot["broker"]
        workers = snapshot["workers"]
        by_queue = snapshot["deliveries_by_queue"]
        state = snapshot["circuit_state"]
        return {
            "checked_at": snapshot["checked_at"],
            "broker_reachable": broker["reachable"],
            "broker_error": broker["error"] or False,
            "broker_url": snapshot["broker_url"] or False,
            "circuit_state": state if state in dict(CIRCUIT_STATES) else False,
            "outbox_pending": snapshot["outbox"]["pending"],
            "outbox_oldest_seconds": snapshot["outbox"]["oldest_pending_seconds"],
            "failure_rate": 100.0 * snapshot["failure_rate"],
            "workers_reachable": workers["reachable"],
            "workers_error": workers["error"] or False,
            "workers_online": len(workers["workers"]),
            "worker_names": "\n".join(workers["workers"]) or False,
            "rabbitmq_management_url": snapshot["rabbitmq_management_url"] or False,
            "flower_url": snapshot["flower_url"] or False,
            "queue_ids": [
                (
                    0,
                    0,
                    {
                        "name": queue["name"],
                        "exists": queue["exists"],
                        "messages": queue["messages"],
                        "unacked": queue["unacked"],
                        "consumers": queue["consumers"],
                        "dead_letters": queue["dead_letters"],
                        "recorded_dead": by_queue.get(queue["name"], {}).get("dead", 0),
                        "dead_policy": queue.get("dead_policy") or False,
                    },
                )
                for queue in broker["queues"]
            ],
        }

    @api.model
    def default_get(self, fields_list):
        """A new screen (the menu) shows a fresh snapshot."""
        values = super().default_get(fields_list)
        if "checked_at" in fields_list and not self.env.context.get("quicksol_status_no_snapshot"):
            snapshot = self.env["quicksol.event.bus.monitor"].snapshot()
            values.update(self._values_from_snapshot(snapshot))
        return values

    @api.model
    def action_open(self, notice=False):
        """Take a snapshot and show it (the menu and the Refresh button)."""
        snapshot = self.env["quicksol.event.bus.monitor"].snapshot()
        status = self.with_context(quicksol_status_no_snapshot=True).create(
            {**self._values_from_snapshot(snapshot), "notice": notice}
        )
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Broker and workers"),
            "res_model": self._name,
            "res_id": status.id,
            "view_mode": "form",
            "views": [(self.env.ref("quicksol_event_bus.quicksol_event_bus_status_view_form").id, "form")],
            "target": "current",
        }

    def action_refresh(self):
        return self.action_open()

    def action_apply_dead_letter_policy(self):
        policy = self.env["quicksol.event.bus.monitor"].apply_dead_letter_policy()
        return self.action_open(notice=self.env._("Dead-letter policy %s applied.", policy["name"]))


class QuicksolEventBusStatusQueue(models.TransientModel):
    _name = "quicksol.event.bus.status.queue"
    _description = "Event Bus: Queue Status"

    status_id = fields.Many2one("quicksol.event.bus.status", required=True, ondelete="cascade")
    name = fields.Char(string="Queue", readonly=True)
    exists = fields.Boolean(string="Declared", readonly=True)
    messages = fields.Integer(string="Depth", readonly=True)
    unacked = fields.Integer(string="Being worked", readonly=True)
    consumers = fields.Integer(readonly=True)
    dead_letters = fields.Integer(string="Dead letters (broker)", readonly=True)
    recorded_dead = fields.Integer(string="Dead letters (recorded)", readonly=True)
    dead_policy = fields.Char(string="Dead-letter policy", readonly=True)

    def action_purge_recorded_dead_letters(self):
        """Remove from <queue>.dead what Odoo recorded, then show the screen again."""
        self.ensure_one()
        counts = self.env["quicksol.event.bus.monitor"].purge_recorded_dead_letters(self.name)
        return self.status_id.action_open(
            notice=self.env._(
                "%(removed)s recorded dead letters removed from %(queue)s.dead, %(kept)s kept.",
                removed=counts["removed"],
                kept=counts["kept"],
                queue=self.name,
            )
        )
