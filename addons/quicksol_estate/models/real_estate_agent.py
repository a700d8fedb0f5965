"""Agent: a person selling or prospecting properties for one estate company."""

from odoo import api, fields, models

from .tenancy import check_estate_company_membership


class RealEstateAgent(models.Model):
    """An agent (corretor) of one estate company.

    The same record serves as *selling agent* (``property.agent_id``) and as
    *prospector* (``property.prospector_id``): in Brazilian agencies the
    "captador" is a broker like any other, paid from the same commission, so
    both roles point here and commission lines have one ``agent_id``. Which
    role a user may play is decided by their groups, not by this model.
    """

    _name = "real.estate.agent"
    _description = "Real Estate Agent"
    _inherit = ["mail.thread"]
    _order = "name"

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    user_id = fields.Many2one(
        "res.users",
        string="User",
        ondelete="set null",
        tracking=True,
        help="Odoo user acting as this agent. A prospector creating a property "
        "becomes its prospector through this link.",
    )
    estate_company_id = fields.Many2one(
        "real.estate.company",
        string="Estate Company",
        required=True,
        index=True,
        ondelete="restrict",
        default=lambda self: self.env.user.estate_company_ids[:1],
    )
    creci = fields.Char(
        string="CRECI",
        help="Broker registration number (Conselho Regional de Corretores de Imóveis).",
    )
    phone = fields.Char()
    email = fields.Char()
    property_ids = fields.One2many("real.estate.property", "agent_id", string="Sold Properties")
    prospected_property_ids = fields.One2many(
        "real.estate.property", "prospector_id", string="Prospected Properties"
    )
    commission_transaction_ids = fields.One2many(
        "real.estate.commission.transaction", "agent_id", string="Commissions"
    )

    _sql_constraints = [
        (
            "user_company_unique",
            "unique(user_id, estate_company_id)",
            "A user can be only one agent per estate company.",
        ),
    ]

    @api.onchange("user_id")
    def _onchange_user_id(self):
        # Saves typing: an agent is usually named after their user.
        if self.user_id and not self.name:
            self.name = self.user_id.name
            self.email = self.user_id.email

    @api.constrains("estate_company_id")
    def _check_estate_company_membership(self):
        check_estate_company_membership(self)
