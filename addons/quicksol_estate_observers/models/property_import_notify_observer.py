"""PropertyImportNotify: tell the importing user when the background work is done."""

from odoo import api, models

from .property_import_batch import IMPORT_AUDITED_EVENT
from .user_notification import notify_user


class PropertyImportNotifyObserver(models.AbstractModel):
    """Async on ``notification_events``, after ``property.import.audited``.

    The import wizard creates the properties in the user's transaction and emits
    ``property.import.completed``; the slow part, the audit trail (one row per property),
    is written from that event by the SecurityGroupAudit observer on ``audit_events``,
    which emits ``property.import.audited`` in the transaction that writes the rows. This
    observer reacts to that event: it runs once per import, only after the rows exist, as
    the user who ran the import (the bus runs chained events as the emitting user).
    Inline (sync mode) the whole chain runs in the import's transaction.

    Event data: ``{'model', 'import_id', 'count', 'audited', 'filename'}``.
    """

    _name = "quicksol.observer.property.import.notify"
    _inherit = "quicksol.abstract.observer"
    _description = "Observer: tell the user a property import is fully processed"

    _observe_events = [IMPORT_AUDITED_EVENT]
    _async_capable = True
    _async_queue = "notification_events"
    _sequence = 20

    @api.model
    def handle(self, event_name, data):
        user = self.env.user
        env = self.with_context(lang=user.lang).env
        return notify_user(
            user,
            env._("Property import processed"),
            env._(
                "%(count)s properties imported from %(file)s; audit trail recorded for %(audited)s of them.",
                count=data.get("count", 0),
                file=data.get("filename") or env._("the CSV file"),
                audited=data.get("audited", 0),
            ),
        )
