"""Users: membership of estate companies, and ``user.*`` events."""

from odoo import fields, models


class ResUsers(models.Model):
    """Users emit ``user.before_create``, ``user.created``, ``user.before_write``,
    ``user.updated``... through the bus mixin, so observers can validate the
    estate companies given to a user and audit group changes.
    """

    _name = "res.users"
    _inherit = ["res.users", "quicksol.event.emitter.mixin"]
    _event_prefix = "user"

    # Same relation table as real.estate.company.user_ids: one membership, two sides.
    estate_company_ids = fields.Many2many(
        "real.estate.company",
        "real_estate_company_res_users_rel",
        "user_id",
        "estate_company_id",
        string="Estate Companies",
        groups="base.group_user",
        help="Estate companies whose data this user may see and edit.",
    )
