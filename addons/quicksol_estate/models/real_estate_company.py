"""Estate company: the tenant that owns agents, properties and commissions."""

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from .. import commission_split


class RealEstateCompany(models.Model):
    """A real-estate agency; its users only see its own data (record rules).

    Deliberately not ``res.company``: one Odoo company may host several
    agencies, and a user may belong to several of them, without touching
    accounting multi-company. The commission rule lives here as two fields
    rather than in a rule model because the seed has one rule per agency.
    """

    _name = "real.estate.company"
    _description = "Estate Company"
    _inherit = ["mail.thread"]
    _order = "name"

    name = fields.Char(required=True, tracking=True)
    code = fields.Char(
        help="Short unique code, e.g. used as a prefix in reports and imports.",
    )
    active = fields.Boolean(default=True)
    partner_id = fields.Many2one(
        "res.partner",
        string="Contact",
        help="Address and contact details of the agency.",
    )
    currency_id = fields.Many2one(
        "res.currency",
        required=True,
        default=lambda self: self.env.company.currency_id,
    )
    user_ids = fields.Many2many(
        "res.users",
        "real_estate_company_res_users_rel",
        "estate_company_id",
        "user_id",
        string="Members",
        help="Users who work for this estate company and may see its data.",
    )
    agent_ids = fields.One2many("real.estate.agent", "estate_company_id", string="Agents")
    property_ids = fields.One2many("real.estate.property", "estate_company_id", string="Properties")
    # Defaults come from the plain module; data/ir_default_data.xml repeats them
    # as ir.default values so an administrator can change them without code.
    commission_rate = fields.Float(
        string="Commission Rate (%)",
        default=commission_split.DEFAULT_COMMISSION_RATE,
        digits=(5, 2),
        required=True,
        tracking=True,
        help="Total commission of a sale, in percent of the sale price.",
    )
    prospector_share = fields.Float(
        string="Prospector Share (%)",
        default=commission_split.DEFAULT_PROSPECTOR_SHARE,
        digits=(5, 2),
        required=True,
        tracking=True,
        help="Part of the commission that goes to the prospector, in percent of "
        "the commission. The selling agent gets the rest, or all of it when the "
        "property has no prospector.",
    )
    property_count = fields.Integer(compute="_compute_property_count")

    _sql_constraints = [
        ("code_unique", "unique(code)", "The estate company code must be unique."),
    ]

    @api.constrains("commission_rate", "prospector_share")
    def _check_commission_rule(self):
        for company in self:
            for value in (company.commission_rate, company.prospector_share):
                if not 0 <= value <= 100:
                    raise ValidationError(self.env._("Commission percentages must be between 0 and 100."))

    def _compute_property_count(self):
        counts = dict(
            self.env["real.estate.property"]._read_group(
                [("estate_company_id", "in", self.ids)],
                ["estate_company_id"],
                ["__count"],
            )
        )
        for company in self:
            company.property_count = counts.get(company, 0)

    def action_view_properties(self):
        """Open the company's properties (smart button)."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("quicksol_estate.real_estate_property_action")
        action["domain"] = [("estate_company_id", "=", self.id)]
        action["context"] = {"default_estate_company_id": self.id}
        return action
