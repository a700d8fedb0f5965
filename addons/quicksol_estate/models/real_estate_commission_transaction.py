"""Commission transaction: one line of a sale's commission, for one agent."""

from odoo import fields, models


class RealEstateCommissionTransaction(models.Model):
    """What one agent earns from one sale, as agent or as prospector.

    Lines are created by the CommissionSplit observer from the
    ``commission.split.calculated`` event, usually as the bus's technical user
    or with ``sudo()``: agents, prospectors and auditors may only read them, so
    nobody can grant themselves a commission from the UI.
    """

    _name = "real.estate.commission.transaction"
    _description = "Commission Transaction"
    _order = "date desc, id desc"
    _rec_name = "property_id"

    property_id = fields.Many2one(
        "real.estate.property",
        string="Property",
        required=True,
        index=True,
        ondelete="restrict",
    )
    agent_id = fields.Many2one(
        "real.estate.agent",
        string="Agent",
        required=True,
        index=True,
        ondelete="restrict",
    )
    type = fields.Selection(
        [("prospector", "Prospector"), ("agent", "Agent")],
        required=True,
        default="agent",
    )
    percentage = fields.Float(
        digits=(7, 4),
        help="Percent of the sale price this line stands for.",
    )
    amount = fields.Monetary(currency_field="currency_id", required=True)
    # Stored so record rules and reports filter on it without a join.
    estate_company_id = fields.Many2one(
        related="property_id.estate_company_id",
        store=True,
        index=True,
        string="Estate Company",
    )
    currency_id = fields.Many2one(related="property_id.currency_id", store=True)
    date = fields.Date(required=True, default=fields.Date.context_today)
