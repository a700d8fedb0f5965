"""``quicksol.audit.log``: who did what to which record, when and from where (LGPD)."""

import logging

from odoo import api, fields, models
from odoo.exceptions import AccessError

_logger = logging.getLogger(__name__)

RETENTION_PARAM = "quicksol_estate_observers.audit_retention_days"
# LGPD asks to keep personal data no longer than needed; five years covers the usual
# limitation periods of Brazilian civil and labour claims. Configurable per database.
DEFAULT_RETENTION_DAYS = 5 * 365
# Rows deleted per statement: small enough to keep locks and WAL bursts short, large
# enough that millions of expired rows go in a few cron runs.
PURGE_CHUNK = 10000


class QuicksolAuditLog(models.Model):
    """One row per record per audited event, written by the SecurityGroupAudit observer.

    Append-only: nobody may edit or delete a row through the ORM, administrators
    included (``write``/``unlink`` raise), so the log can be trusted; rows are created
    with ``sudo()`` by the observer only (no access right grants ``create``). The
    retention cron removes expired rows with SQL, in chunks.
    """

    _name = "quicksol.audit.log"
    _description = "Security Audit Log"
    _order = "timestamp desc, id desc"
    _rec_name = "event_name"

    event_name = fields.Char(string="Event", required=True, readonly=True, index=True)
    event_uuid = fields.Char(
        string="Emission ID",
        readonly=True,
        index=True,
        help="Identifies the emission: every row written for the same event shares it.",
    )
    user_id = fields.Many2one(
        "res.users",
        string="User",
        readonly=True,
        index=True,
        ondelete="set null",
        help="Who did it (the user whose action emitted the event).",
    )
    model = fields.Char(readonly=True, index=True)
    res_id = fields.Many2oneReference(string="Record ID", model_field="model", readonly=True, index=True)
    timestamp = fields.Datetime(
        required=True, readonly=True, index=True, help="When the event was emitted (not when it was logged)."
    )
    data = fields.Text(string="Data (JSON)", readonly=True)
    ip_address = fields.Char(string="IP Address", readonly=True)
    is_group_change = fields.Boolean(
        string="Group Change", readonly=True, index=True, help="The event changed a user's security groups."
    )
    company_id = fields.Many2one(
        "res.company",
        string="Company",
        readonly=True,
        index=True,
        help="The company the acting user worked in: only users allowed in it read the row.",
    )
    estate_company_ids = fields.Many2many(
        "real.estate.company",
        "quicksol_audit_log_estate_company_rel",
        "log_id",
        "estate_company_id",
        string="Estate Companies",
        readonly=True,
        help="Estate companies of the record: their auditors may read this row.",
    )

    _sql_constraints = [
        (
            "emission_record_unique",
            "unique(event_uuid, model, res_id)",
            "An emission is logged once per record.",
        ),
    ]

    # ------------------------------------------------------------------ append-only

    @api.model_create_multi
    def create(self, vals_list):
        if not self.env.su:
            raise AccessError(self.env._("Audit log rows are written by the audit observer only."))
        return super().create(vals_list)

    def write(self, vals):
        self._refuse_write()
        return super().write(vals)  # never reached: kept for the override chain

    def _refuse_write(self):
        raise AccessError(self.env._("The audit log is read-only."))

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        # at_uninstall=False: uninstalling the addon still drops its rows.
        raise AccessError(
            self.env._("Audit log rows cannot be deleted; the retention job removes them when they expire.")
        )

    # ------------------------------------------------------------------ retention (LGPD)

    @api.model
    def _retention_days(self):
        # sudo - ir.config_parameter: the retention period is read by the cron's user.
        value = self.env["ir.config_parameter"].sudo().get_param(RETENTION_PARAM)
        try:
            days = int(value) if value else DEFAULT_RETENTION_DAYS
        except ValueError:
            _logger.warning(
                "%s is not a number (%r); keeping %d days", RETENTION_PARAM, value, DEFAULT_RETENTION_DAYS
            )
            days = DEFAULT_RETENTION_DAYS
        return max(days, 1)

    @api.model
    def _purge_expired(self, days=None, chunk=PURGE_CHUNK):
        """Delete one chunk of rows older than the retention; return (deleted, remaining).

        SQL, not ``unlink``: the ORM refuses deletion to everybody, this private method
        (not callable over RPC) is the only way out of the log.
        """
        days = days or self._retention_days()
        limit_clause = "timestamp < (now() at time zone 'utc') - %s::interval"
        self.flush_model(["timestamp"])
        self.env.cr.execute(
            f"""DELETE FROM quicksol_audit_log WHERE id IN (
                    SELECT id FROM quicksol_audit_log WHERE {limit_clause}
                     ORDER BY id LIMIT %s)""",
            [f"{int(days)} days", int(chunk)],
        )
        deleted = self.env.cr.rowcount
        self.env.cr.execute(
            f"SELECT count(*) FROM quicksol_audit_log WHERE {limit_clause}",
            [f"{int(days)} days"],
        )
        remaining = self.env.cr.fetchone()[0]
        self.env.invalidate_all()  # deleted rows (and their relations) left behind the ORM
        return deleted, remaining

    @api.model
    def _cron_purge_expired(self):
        """Cron: delete one chunk and report progress; Odoo reruns the cron at once while
        ``remaining`` is above zero, committing between runs, so a huge backlog never holds
        one long transaction."""
        deleted, remaining = self._purge_expired()
        self.env["ir.cron"]._notify_progress(done=deleted, remaining=remaining)
        if deleted:
            _logger.info("audit retention: deleted %d expired rows, %d left", deleted, remaining)
        return deleted
