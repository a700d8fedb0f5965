"""Commission lines: one line per role and property, enforced by the database."""

from odoo import models


class RealEstateCommissionTransaction(models.Model):
    """The CommissionSplit observer checks for existing lines before creating any (the bus
    runs an event once, but a property must never be split twice, whatever the events);
    this constraint is the database's last word on it, also against concurrent workers."""

    _inherit = "real.estate.commission.transaction"

    _sql_constraints = [
        (
            "property_type_unique",
            "unique(property_id, type)",
            "A property has at most one commission line per role (agent, prospector).",
        ),
    ]
