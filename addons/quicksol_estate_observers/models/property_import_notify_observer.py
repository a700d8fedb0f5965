"""PropertyImportNotify: tell the importing user when the background work is done."""

from odoo import api, models

from .. import audit_rules
from .user_notification import BackgroundWorkPending, notify_user

EVENT = "property.import.completed"


class PropertyImportNotifyObserver(models.AbstractModel):
    """Async on ``notification_events``, after ``property.import.completed``.

    The import wizard creates the properties in the user's transaction and leaves the rest
    to workers; the slow part is the audit trail (one row per property, written by the
    SecurityGroupAudit observer on ``audit_events``). This observer tells the user who ran
    the import (the bus runs it as them) once the audit rows of every imported property
    exist; on a worker, until then, :class:`BackgroundWorkPending` makes the bus retry.
    Inline (sync mode) the audit already ran in the same transaction.

    Event data: ``{'model', 'count', 'id_ranges': [[first, last], ...], 'filename'}`` —
    ranges, not ids, so that a 50,000-row import fits the bus's payload limit.
    """

    _name = "quicksol.observer.property.import.notify"
    _inherit = "quicksol.abstract.observer"
    _description = "Observer: tell the user a property import is fully processed"

    _observe_events = [EVENT]
    _async_capable = True
    _async_queue = "notification_events"
    _sequence = 20

    @api.model
    def handle(self, event_name, data):
        return self._notify(data, wait_for_audit=False)

    @api.model
    def handle_async(self, event_name, data):
        return self._notify(data, wait_for_audit=True)

    @api.model
    def _notify(self, data, wait_for_audit):
        ids = audit_rules.ids_of_ranges(data.get("id_ranges") or [])
        # sudo - quicksol.audit.log: the importing user may not read the audit log; only
        # the count of rows about their own import is used.
        audited = (
            self.env["quicksol.audit.log"]
            .sudo()
            .search_count(
                [
                    ("event_name", "=", "property.created"),
                    ("model", "=", data.get("model") or "real.estate.property"),
                    ("res_id", "in", ids),
                ]
            )
            if ids
            else 0
        )
        if audited < len(ids) and wait_for_audit:
            raise BackgroundWorkPending(f"{len(ids) - audited} imported properties not audited yet")
        user = self.env.user
        env = self.with_context(lang=user.lang).env
        return notify_user(
            user,
            env._("Property import processed"),
            env._(
                "%(count)s properties imported from %(file)s; audit trail recorded for %(audited)s of them.",
                count=data.get("count", len(ids)),
                file=data.get("filename") or env._("the CSV file"),
                audited=audited,
            ),
        )
