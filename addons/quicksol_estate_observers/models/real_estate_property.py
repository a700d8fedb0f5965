"""Properties: carry the request's IP address and time in their lifecycle events."""

from odoo import models

from .emission_context import emission_context
from .property_import_batch import import_batch_of


class RealEstateProperty(models.Model):
    """``property.created``/``updated``/``deleted`` data gains ``emission_id``,
    ``emitted_at`` and ``ip_address`` (see :func:`emission_context`), which the async
    SecurityGroupAudit observer cannot learn on a worker.

    ``property.created`` events of properties created by the import wizard also carry
    ``import_id``: the emission id of the import's ``property.import.completed`` event,
    from which the audit observer writes their audit rows (all at once, then announces it).
    """

    _inherit = "real.estate.property"

    def _event_ids_data(self, ids):
        data = super()._event_ids_data(ids)
        data.update(emission_context())
        return data

    def _emit_after(self, bus, operation, ids, **extra):
        batch = import_batch_of(self.env)
        if batch and operation == "create" and ids:
            batch.res_ids.extend(ids)
            extra["import_id"] = batch.import_id
        return super()._emit_after(bus, operation, ids, **extra)
