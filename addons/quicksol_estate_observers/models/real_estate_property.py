"""Properties: carry the request's IP address and time in their lifecycle events."""

from odoo import models

from .emission_context import emission_context


class RealEstateProperty(models.Model):
    """``property.created``/``updated``/``deleted`` data gains ``emission_id``,
    ``emitted_at`` and ``ip_address`` (see :func:`emission_context`), which the async
    SecurityGroupAudit observer cannot learn on a worker."""

    _inherit = "real.estate.property"

    def _event_ids_data(self, ids):
        data = super()._event_ids_data(ids)
        data.update(emission_context())
        return data
