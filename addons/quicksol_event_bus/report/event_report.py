"""``quicksol.event.report``: one row per delivery with its event's name, model and day, for
the graph and pivot views (a SQL view: grouping by queue, observer and model at once)."""

from odoo import fields, models, tools

from ..models.event_delivery import DELIVERY_STATES


class QuicksolEventReport(models.Model):
    _name = "quicksol.event.report"
    _description = "Event Bus Analysis"
    _auto = False
    _order = "create_date desc"
    _rec_name = "event_name"

    event_id = fields.Many2one("quicksol.event", string="Event record", readonly=True)
    event_name = fields.Char(string="Event", readonly=True)
    model = fields.Char(readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    observer = fields.Char(readonly=True)
    queue = fields.Char(readonly=True)
    state = fields.Selection(DELIVERY_STATES, readonly=True)
    run_mode = fields.Char(readonly=True)
    create_date = fields.Datetime(string="Emitted", readonly=True)
    attempts = fields.Integer(readonly=True, aggregator="sum")
    duration_ms = fields.Float(string="Run time (ms)", readonly=True, aggregator="avg")
    failed = fields.Integer(string="Failed or dead", readonly=True, aggregator="sum")

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            f"""CREATE VIEW {self._table} AS (
                SELECT d.id, d.event_id, e.name AS event_name, e.model, e.company_id,
                       d.observer, d.queue, d.state, d.run_mode, d.create_date, d.attempts,
                       d.duration_ms,
                       CASE WHEN d.state IN ('failed', 'dead') THEN 1 ELSE 0 END AS failed
                  FROM quicksol_event_delivery d
                  JOIN quicksol_event e ON e.id = d.event_id)"""
        )
