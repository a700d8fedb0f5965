"""SecurityGroupAudit: one audit log row per record per user or property event."""

import json
import uuid

from odoo import api, fields, models

from .. import audit_rules
from .property_import_batch import IMPORT_AUDITED_EVENT, IMPORT_COMPLETED_EVENT

AUDITED_EVENTS = ["user.created", "user.updated", "property.created", IMPORT_COMPLETED_EVENT]


class SecurityGroupAuditObserver(models.AbstractModel):
    """Async on ``audit_events``: ``user.created``, ``user.updated``, ``property.created``,
    ``property.import.completed``.

    LGPD: who created which user or property and who changed whose groups must
    be traceable, without making the save wait (eventual consistency of a few seconds is
    fine). Batchable: a worker may hand many events to :meth:`handle_async_batch`, which
    writes one row per record per event with one batched ``create()`` (a 1,000-property
    import gives 1,000 rows in one statement).

    What a worker cannot know comes in the event data, captured at emit time by this
    addon's ``_event_ids_data`` overrides: ``emission_id`` (one per emission, also the
    idempotency key: a row already written for the same emission and record is not written
    again), ``emitted_at`` and ``ip_address``. The acting user is the user the observer runs
    as: the bus runs it as the emitting user, inline or on a worker.

    Imports: the properties of an import are audited from the wizard's one
    ``property.import.completed`` event (``id_ranges`` and the emission context), not from
    their ``property.created`` events (which carry ``import_id`` and are skipped here), so
    that one run writes the rows of the whole import — still as ``property.created`` rows,
    one per property. In the same transaction it emits ``property.import.audited``
    (``{'model', 'import_id', 'count', 'audited', 'filename'}``) for the import notifier:
    the user is told once, when the rows exist, without anybody polling for them.
    """

    _name = "quicksol.observer.security.group.audit"
    _inherit = "quicksol.abstract.observer"
    _description = "Observer: security audit log"

    _observe_events = AUDITED_EVENTS
    _async_capable = True
    _async_queue = "audit_events"
    _async_batch = True
    _sequence = 50

    @api.model
    def handle(self, event_name, data):
        self._log([(event_name, data)])

    @api.model
    def handle_async_batch(self, events):
        self._log(events)

    @api.model
    def _log(self, events):
        """Write the rows of ``events`` that are not written yet, in one ``create()``."""
        rows = [row for event_name, data in events for row in self._rows(event_name, data)]
        rows = self._not_logged_yet(rows)
        self._add_companies(rows)
        # sudo - quicksol.audit.log: nobody has create access to the log; the observer
        # writes it on behalf of the acting user, whose id it records.
        logs = self.env["quicksol.audit.log"].sudo().create(rows)
        for event_name, data in events:
            if event_name == IMPORT_COMPLETED_EVENT:
                self._announce_import_audited(data)
        return logs

    @api.model
    def _announce_import_audited(self, data):
        """Emit ``property.import.audited``: every property of the import has its row now
        (written just before, or by an earlier run of the same emission)."""
        count = len(audit_rules.ids_of_ranges(data.get("id_ranges") or []))
        self.env["quicksol.event.bus"].emit(
            IMPORT_AUDITED_EVENT,
            {
                "model": data.get("model"),
                "import_id": data.get("emission_id"),
                "count": data.get("count", count),
                "audited": count,
                "filename": data.get("filename") or "",
            },
        )

    @api.model
    def _rows(self, event_name, data):
        if event_name == "property.created" and data.get("import_id"):
            return []  # audited from the import's completion event, see the class docstring
        if event_name == IMPORT_COMPLETED_EVENT:
            # One property.created row per imported property, under the import's emission.
            ids = audit_rules.ids_of_ranges(data.get("id_ranges") or [])
            if not ids:
                return []
            data = {
                "model": data.get("model"),
                "res_ids": ids,
                "emission_id": data.get("emission_id"),
                "emitted_at": data.get("emitted_at"),
                "ip_address": data.get("ip_address"),
                "filename": data.get("filename"),
            }
            event_name = "property.created"
        ids = data.get("res_ids") or ([data["res_id"]] if data.get("res_id") else [None])
        emission_id = data.get("emission_id") or str(uuid.uuid4())
        timestamp = data.get("emitted_at") or fields.Datetime.now()
        group_change = event_name == "user.updated" and audit_rules.is_group_change(data.get("changed"))
        secret_keys = self.env["quicksol.event.bus"]._declared_secret_keys()
        return [
            {
                "event_name": event_name,
                "event_uuid": emission_id,
                "user_id": self.env.uid,
                # The observer runs with the event's context (allowed companies included).
                "company_id": self.env.company.id,
                "model": data.get("model"),
                "res_id": res_id,
                "timestamp": timestamp,
                "data": json.dumps(
                    audit_rules.row_data(event_name, data, res_id, secret_keys), sort_keys=True, default=str
                ),
                "ip_address": data.get("ip_address"),
                "is_group_change": group_change,
            }
            for res_id in ids
        ]

    @api.model
    def _not_logged_yet(self, rows):
        uuids = list({row["event_uuid"] for row in rows})
        self.env["quicksol.audit.log"].flush_model()
        self.env.cr.execute(
            "SELECT event_uuid, model, res_id FROM quicksol_audit_log WHERE event_uuid = ANY(%s)", [uuids]
        )
        done = set(self.env.cr.fetchall())
        fresh, seen = [], set()
        for row in rows:
            key = (row["event_uuid"], row["model"], row["res_id"])
            if key not in done and key not in seen:
                seen.add(key)
                fresh.append(row)
        return fresh

    @api.model
    def _add_companies(self, rows):
        """Tag each row with its record's estate companies (record rules read them).

        Records deleted since the event are logged without companies: administrators still
        see those rows, auditors of a tenant do not.
        """
        by_model = {}
        for row in rows:
            if row["res_id"] and row["model"] in ("real.estate.property", "res.users"):
                by_model.setdefault(row["model"], set()).add(row["res_id"])
        companies = {}
        for model, ids in by_model.items():
            # sudo - real.estate.property/res.users: read whose tenant a record belongs to,
            # whatever the acting user may read.
            records = self.env[model].sudo().browse(sorted(ids)).exists()
            field = "estate_company_id" if model == "real.estate.property" else "estate_company_ids"
            for record in records:
                companies[(model, record.id)] = record[field].ids
        for row in rows:
            company_ids = companies.get((row["model"], row["res_id"]))
            if company_ids:
                row["estate_company_ids"] = [fields.Command.set(company_ids)]
