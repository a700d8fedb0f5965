"""Keep records inside the estate companies of the user who writes them."""

from odoo.exceptions import AccessError


def check_estate_company_membership(records):
    """Refuse records whose estate company the (non-administrator) user does not belong to.

    Record rules check a record before a write, not the values it is written with: without
    this, an agent could move a property of their own company into another tenant's.
    """
    env = records.env
    if env.su or env.user.has_group("base.group_system"):
        return
    foreign = records.estate_company_id - env.user.estate_company_ids
    if foreign:
        raise AccessError(
            env._(
                "You can only put records in your own estate companies, not in %(companies)s.",
                companies=", ".join(foreign.sudo().mapped("code") or foreign.mapped("display_name")),
            )
        )
