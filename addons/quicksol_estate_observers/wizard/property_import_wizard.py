"""Import properties from a CSV file: check every row, then create them in one batch."""

import base64

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .. import audit_rules, property_csv
from ..models.emission_context import emission_context
from ..models.property_import_batch import IMPORT_COMPLETED_EVENT, IMPORT_CONTEXT_KEY, PropertyImportBatch

# Rows per create(). Each create() emits one property.created event with the ids of its
# rows (plus a few fixed keys): 5,000 ids are about 35 KB of JSON, well under the bus's
# payload limit (quicksol_bus.payload.DEFAULT_PAYLOAD_LIMIT, 256 KiB; EVENT_BUS_PAYLOAD_LIMIT
# when configured) and under the emitter mixin's own split (_event_ids_per_event). The
# seed's 1,000-row file is one batch. (The completion event carries id ranges, whatever
# the number of rows.)
CREATE_CHUNK = 5000
# Errors listed in the wizard; the count says how many there are in all.
MAX_ERRORS_SHOWN = 1000
# Errors about the header name their column in the sentence already.
HEADER_ERRORS = ("missing_column", "unknown_column", "duplicate_column")
# Fields only the wizard's own steps write: read-only in the form, and refused from any
# other caller (RPC included), so that nobody can put an imported wizard back to draft.
STEP_FIELDS = frozenset(
    {
        "state",
        "row_count",
        "error_count",
        "error_report",
        "created_count",
        "batch_count",
        "property_ids",
        "event_uuid",
    }
)
_STEP_WRITE_KEY = "quicksol_property_import_step"
# The context value of the steps' writes: an object, which an RPC context (JSON) cannot hold.
_STEP_WRITE = object()


class PropertyImportWizard(models.TransientModel):
    """Upload a CSV, see every bad row by line number, import when all rows are good.

    The rules (columns, formats, lookups by code, name or CRECI) live in the plain module
    :mod:`property_csv`; this wizard builds its lookups from what the importing user may
    read (record rules: other agencies' companies and agents are "unknown"), translates
    the errors, creates the properties as the user (access rights and observers apply:
    ProspectorAutoAssign fills the prospector of a prospector's rows) and emits
    ``property.import.completed`` so that workers audit the new properties and tell the
    user when that is done, instead of making them wait.

    A wizard imports once: its result fields (``STEP_FIELDS``: state, counts, imported
    properties) are written by its own steps only, and an imported wizard refuses to check
    or import again.
    """

    _name = "quicksol.property.import.wizard"
    _description = "Import Properties from CSV"

    file = fields.Binary(string="CSV File", required=True, attachment=False)
    filename = fields.Char()
    state = fields.Selection(
        [("draft", "Draft"), ("checked", "Checked"), ("error", "Errors"), ("done", "Imported")],
        default="draft",
        required=True,
        readonly=True,
    )
    row_count = fields.Integer(string="Rows", readonly=True)
    error_count = fields.Integer(string="Errors", readonly=True)
    error_report = fields.Text(readonly=True)
    created_count = fields.Integer(string="Created", readonly=True)
    batch_count = fields.Integer(string="Batches", readonly=True)
    property_ids = fields.Many2many("real.estate.property", string="Imported Properties", readonly=True)
    event_uuid = fields.Char(
        string="Background Event",
        readonly=True,
        help="Event whose observers finish the import in the background.",
    )
    summary = fields.Char(compute="_compute_summary")

    @api.depends("state", "row_count", "error_count", "created_count", "batch_count")
    def _compute_summary(self):
        for wizard in self:
            wizard.summary = {
                "draft": wizard.env._("Choose a CSV file, then check it or import it."),
                "checked": wizard.env._(
                    "%(rows)s rows checked: all valid, ready to import.", rows=wizard.row_count
                ),
                "error": wizard.env._(
                    "%(rows)s rows checked: %(errors)s errors, nothing was created. "
                    "Fix the file and try again.",
                    rows=wizard.row_count,
                    errors=wizard.error_count,
                ),
                "done": wizard.env._(
                    "%(created)s properties created in %(batches)s batch(es). The audit "
                    "trail is being recorded in the background; you will be notified "
                    "when it is done.",
                    created=wizard.created_count,
                    batches=wizard.batch_count,
                ),
            }[wizard.state]

    # ------------------------------------------------------------------ result fields

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_step_fields(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._check_step_fields(vals)
        return super().write(vals)

    def _check_step_fields(self, vals):
        if self.env.context.get(_STEP_WRITE_KEY) is _STEP_WRITE:
            return
        refused = sorted(STEP_FIELDS.intersection(vals))
        if refused:
            raise AccessError(
                self.env._(
                    "The import sets these fields itself: %(fields)s.",
                    fields=", ".join(refused),
                )
            )

    def _write_step(self, vals):
        return self.with_context(**{_STEP_WRITE_KEY: _STEP_WRITE}).write(vals)

    # ------------------------------------------------------------------ actions

    def action_check(self):
        """Check every row without creating anything."""
        self.ensure_one()
        self._ensure_not_imported()
        self._check()
        return self._reopen()

    def action_import(self):
        """Check every row; create all the properties only when no row has an error."""
        self.ensure_one()
        self._ensure_not_imported()
        self.env["real.estate.property"].check_access("create")
        result = self._check()
        if not result.errors:
            self._create_properties(result.vals_list)
        return self._reopen()

    def action_open_properties(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id("quicksol_estate.real_estate_property_action")
        action["domain"] = [("id", "in", self.property_ids.ids)]
        return action

    # ------------------------------------------------------------------ steps

    def _ensure_not_imported(self):
        if self.state == "done" or self.property_ids:
            raise UserError(self.env._("This file was already imported."))

    def _check(self):
        content = base64.b64decode(self.file or b"")
        result = property_csv.check_csv(content, self._lookups())
        messages = [self._error_message(error) for error in result.errors[:MAX_ERRORS_SHOWN]]
        if len(result.errors) > MAX_ERRORS_SHOWN:
            messages.append(
                self.env._("… and %(more)s more errors.", more=len(result.errors) - MAX_ERRORS_SHOWN)
            )
        self._write_step(
            {
                "state": "error" if result.errors else "checked",
                "row_count": result.row_count,
                "error_count": len(result.errors),
                "error_report": "\n".join(messages) or False,
            }
        )
        return result

    def _create_properties(self, vals_list):
        """Create the rows in batches of ``CREATE_CHUNK``, then emit the completion event.

        ``property.import.completed`` carries what the audit of the import needs: the ids
        as ``[first, last]`` ranges (a 50,000-row import fits the payload limit), the count,
        the file name and the emission context (emission id, time, IP address). The
        ``property.created`` events of the chunks carry its emission id as ``import_id``
        (see :class:`PropertyImportBatch`).
        """
        emission = emission_context()
        batch = PropertyImportBatch(emission["emission_id"])
        Property = self.env["real.estate.property"].with_context(
            mail_create_nolog=True, mail_create_nosubscribe=True, **{IMPORT_CONTEXT_KEY: batch}
        )
        created = self.env["real.estate.property"]
        batches = 0
        for start in range(0, len(vals_list), CREATE_CHUNK):
            created |= Property.create(vals_list[start : start + CREATE_CHUNK])
            batches += 1
        event_uuid = self.env["quicksol.event.bus"].emit(
            IMPORT_COMPLETED_EVENT,
            {
                "model": created._name,
                "count": len(created),
                # The ids announced as the import's (the created ones) and any created id
                # whose property.created was not: each property is audited by the import.
                "id_ranges": audit_rules.id_ranges(set(batch.res_ids) | set(created.ids)),
                "filename": self.filename or "",
                **emission,
            },
        )
        self._write_step(
            {
                "state": "done",
                "created_count": len(created),
                "batch_count": batches,
                "property_ids": [fields.Command.set(created.ids)],
                "event_uuid": event_uuid or False,
            }
        )
        return created

    def _reopen(self):
        return {
            "type": "ir.actions.act_window",
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
            "context": self.env.context,
        }

    # ------------------------------------------------------------------ lookups and messages

    def _lookups(self):
        """What the user may reference, from what record rules let them read."""
        add = property_csv.add_key
        companies, agents, countries, states = {}, {}, {}, {}
        estate_companies = self.env["real.estate.company"].search([])
        for company in estate_companies:
            add(companies, company.code or "", company.id)
            add(companies, company.name, company.id)
        for agent in self.env["real.estate.agent"].search(
            [("estate_company_id", "in", estate_companies.ids)]
        ):
            add(agents, (agent.estate_company_id.id, agent.name), agent.id)
            add(agents, (agent.estate_company_id.id, agent.creci or ""), agent.id)
        for country in self.env["res.country"].search([]):
            add(countries, country.code, country.id)
            add(countries, country.name, country.id)
        for state in self.env["res.country.state"].search([]):
            add(states, (state.country_id.id, state.code), state.id)
            add(states, (state.country_id.id, state.name), state.id)
        return property_csv.Lookups(companies, agents, countries, states)

    def _error_message(self, error):
        """The error as a sentence in the user's language, with its line and column."""
        value = error.params.get("value", "")
        texts = {
            "empty_file": lambda: self.env._("The file has no header or no rows."),
            "missing_column": lambda: self.env._(
                'The required column "%(column)s" is missing.', column=error.column
            ),
            "unknown_column": lambda: self.env._(
                'Unknown column "%(column)s". Expected columns: %(columns)s.',
                column=error.column,
                columns=", ".join(property_csv.COLUMNS),
            ),
            "duplicate_column": lambda: self.env._(
                'The column "%(column)s" appears twice.', column=error.column
            ),
            "too_many_rows": lambda: self.env._(
                "The file has more than %(max)s rows; split it.", max=error.params["max"]
            ),
            "too_many_cells": lambda: self.env._(
                "The row has %(count)s cells, the header %(expected)s.", **error.params
            ),
            "required": lambda: self.env._('"%(column)s" is required.', column=error.column),
            "too_long": lambda: self.env._(
                '"%(column)s" is longer than %(max)s characters.',
                column=error.column,
                max=error.params["max"],
            ),
            "unknown_company": lambda: self.env._(
                'Unknown estate company "%(value)s" (give its code or name).', value=value
            ),
            "ambiguous_company": lambda: self.env._(
                'Several estate companies are named "%(value)s"; use the code.', value=value
            ),
            "unknown_agent": lambda: self.env._(
                'No agent "%(value)s" (name or CRECI) in this estate company.', value=value
            ),
            "ambiguous_agent": lambda: self.env._(
                'Several agents match "%(value)s" in this estate company; use the CRECI.', value=value
            ),
            "unknown_country": lambda: self.env._(
                'Unknown country "%(value)s" (give its code, e.g. BR).', value=value
            ),
            "ambiguous_country": lambda: self.env._(
                'Several countries match "%(value)s"; use the code.', value=value
            ),
            "unknown_federal_state": lambda: self.env._(
                'Unknown federal state "%(value)s" for this country (give its code, e.g. SP).', value=value
            ),
            "ambiguous_federal_state": lambda: self.env._(
                'Several federal states match "%(value)s"; use the code.', value=value
            ),
            "country_needed": lambda: self.env._(
                'The federal state "%(value)s" needs a country.', value=value
            ),
            "bad_state": lambda: self.env._(
                'Unknown status "%(value)s": use draft or available.', value=value
            ),
            "sold_state": lambda: self.env._(
                'Sold properties cannot be imported ("%(value)s"): import '
                "them as available and sell them, so that the commission "
                "is split.",
                value=value,
            ),
            "bad_price": lambda: self.env._(
                '"%(value)s" is not a price (e.g. 450000.00 or 450.000,00).', value=value
            ),
        }
        text = texts[error.code]()
        if not error.line:
            return text
        if not error.column or error.code in HEADER_ERRORS:
            return self.env._("Line %(line)s: %(message)s", line=error.line, message=text)
        return self.env._(
            "Line %(line)s, column %(column)s: %(message)s",
            line=error.line,
            column=error.column,
            message=text,
        )
