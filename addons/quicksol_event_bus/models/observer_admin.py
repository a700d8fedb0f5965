"""``quicksol.event.observer``: the live observer registry as a screen, with last-day figures,
and the switch that disables an observer without a restart.

The registry itself stays in memory (``quicksol.event.bus._observer_index``); this model keeps
one row per observer model for what an administrator decides (``enabled``). The set of disabled
observers is mirrored in one system parameter, which ``emit`` reads from the ORM cache: a
disabled observer costs the hot path a cached lookup, and every Odoo process sees the change
at its next request (the parameter write invalidates the caches of all workers).
"""

import logging
from dataclasses import replace

from odoo import api, fields, models
from odoo.exceptions import AccessError

from quicksol_bus.names import is_before_event

_logger = logging.getLogger(__name__)

DISABLED_PARAM = "quicksol_event_bus.disabled_observers"
MANAGER_GROUP = "quicksol_event_bus.group_event_bus_manager"
STATS_WINDOW = "1 day"


class QuicksolEventObserver(models.Model):
    _name = "quicksol.event.observer"
    _description = "Event Bus Observer"
    _order = "name"

    name = fields.Char(string="Observer model", required=True, readonly=True, index=True)
    description = fields.Char(readonly=True)
    enabled = fields.Boolean(default=True, help="A disabled observer is skipped when its events are emitted.")
    installed = fields.Boolean(compute="_compute_registry", help="The observer is in the running registry.")
    events = fields.Char(compute="_compute_registry")
    run_mode = fields.Selection(
        [("sync", "Inline (sync)"), ("async", "Worker (async)")], compute="_compute_registry"
    )
    queue = fields.Char(compute="_compute_registry")
    priority = fields.Integer(compute="_compute_registry")
    sequence = fields.Integer(compute="_compute_registry")
    async_batch = fields.Boolean(string="Batch", compute="_compute_registry")
    debounce_seconds = fields.Float(string="Debounce (s)", compute="_compute_registry")
    dedup_window = fields.Float(string="Dedup window (s)", compute="_compute_registry")
    rate_limit = fields.Char(compute="_compute_registry")
    day_count = fields.Integer(string="Deliveries (24 h)", compute="_compute_stats")
    day_done = fields.Integer(string="Done (24 h)", compute="_compute_stats")
    day_failed = fields.Integer(string="Failed or dead (24 h)", compute="_compute_stats")
    day_pending = fields.Integer(string="Waiting (24 h)", compute="_compute_stats")
    failure_rate = fields.Float(string="Failure rate (24 h, %)", compute="_compute_stats", digits=(16, 1))
    p50_ms = fields.Float(string="p50 (ms)", compute="_compute_stats", digits=(16, 1))
    p95_ms = fields.Float(string="p95 (ms)", compute="_compute_stats", digits=(16, 1))

    _sql_constraints = [("name_unique", "unique(name)", "One row per observer model.")]

    def _compute_registry(self):
        index = self.env["quicksol.event.bus"]._observer_index()
        for observer in self:
            spec = index.get(observer.name)
            cls = self.env.registry.get(observer.name) if spec else None
            observer.installed = bool(spec)
            observer.events = ", ".join(spec.events) if spec else False
            observer.run_mode = ("async" if spec.async_capable else "sync") if spec else False
            observer.queue = spec.queue if spec and spec.async_capable else False
            observer.priority = spec.effective_priority if spec else 0
            observer.sequence = spec.sequence if spec else 0
            observer.async_batch = bool(spec and spec.batchable)
            observer.debounce_seconds = cls._debounce_seconds if cls is not None else 0
            observer.dedup_window = cls._dedup_window if cls is not None else 0
            observer.rate_limit = (cls._rate_limit or False) if cls is not None else False

    def _compute_stats(self):
        stats = self._day_stats(self.mapped("name"))
        for observer in self:
            row = stats.get(observer.name, {})
            total = row.get("total", 0)
            observer.day_count = total
            observer.day_done = row.get("done", 0)
            observer.day_failed = row.get("failed", 0)
            observer.day_pending = row.get("waiting", 0)
            observer.failure_rate = 100.0 * row.get("failed", 0) / total if total else 0.0
            observer.p50_ms = row.get("p50") or 0.0
            observer.p95_ms = row.get("p95") or 0.0

    @api.model
    def _day_stats(self, names):
        """Counts and run-time percentiles of the last day, by observer, in one query."""
        if not names:
            return {}
        self.env["quicksol.event.delivery"].flush_model()
        self.env.cr.execute(
            """SELECT observer,
                      count(*) AS total,
                      count(*) FILTER (WHERE state = 'done') AS done,
                      count(*) FILTER (WHERE state IN ('failed', 'dead')) AS failed,
                      count(*) FILTER (WHERE state IN ('pending', 'queued')) AS waiting,
                      percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms)
                          FILTER (WHERE duration_ms IS NOT NULL) AS p50,
                      percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
                          FILTER (WHERE duration_ms IS NOT NULL) AS p95
                 FROM quicksol_event_delivery
                WHERE observer = ANY(%s)
                  AND create_date > now() at time zone 'utc' - %s::interval
             GROUP BY observer""",
            [list(names), STATS_WINDOW],
        )
        return {row["observer"]: row for row in self.env.cr.dictfetchall()}

    # ------------------------------------------------------------------ registry sync

    @api.model
    def _sync_registry(self):
        """Create a row for every observer of the registry that has none yet."""
        index = self.env["quicksol.event.bus"]._observer_index()
        # sudo - quicksol.event.observer: rows mirror the code; reading the screen creates them.
        rows = self.sudo().with_context(active_test=False)
        known = set(rows.search([]).mapped("name"))
        missing = [spec.model for spec in index.specs if spec.model not in known]
        if missing:
            rows.create([{"name": name, "description": self.env[name]._description} for name in missing])

    @api.model
    def web_search_read(self, domain, specification, offset=0, limit=None, order=None, count_limit=None):
        # The screen always lists every observer of the running registry.
        self._sync_registry()
        return super().web_search_read(
            domain, specification, offset=offset, limit=limit, order=order, count_limit=count_limit
        )

    def action_open_deliveries(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.name,
            "res_model": "quicksol.event",
            "view_mode": "list,form",
            "views": [(False, "list"), (False, "form")],
            "domain": [("delivery_ids.observer", "=", self.name)],
        }

    # ------------------------------------------------------------------ enable / disable

    @api.model_create_multi
    def create(self, vals_list):
        records = super().create(vals_list)
        if any(not vals.get("enabled", True) for vals in vals_list):
            records._store_disabled()
        return records

    def write(self, vals):
        if "enabled" in vals and not (self.env.su or self.env.user.has_group(MANAGER_GROUP)):
            raise AccessError(self.env._("Only event bus administrators can enable or disable observers."))
        result = super().write(vals)
        if "enabled" in vals:
            self._store_disabled()
            for observer in self:
                _logger.info(
                    "observer %s %s by %s",
                    observer.name,
                    "enabled" if observer.enabled else "disabled",
                    self.env.user.login,
                )
        return result

    def action_disable(self):
        self.write({"enabled": False})

    def action_enable(self):
        self.write({"enabled": True})

    def _store_disabled(self):
        disabled = self.sudo().search([("enabled", "=", False)]).mapped("name")
        # sudo - ir.config_parameter: the parameter mirrors this model's rows, read at emit.
        self.env["ir.config_parameter"].sudo().set_param(DISABLED_PARAM, ",".join(sorted(disabled)))


class QuicksolEventBusDisabledObservers(models.AbstractModel):
    _inherit = "quicksol.event.bus"

    @api.model
    def _disabled_observers(self):
        # sudo - ir.config_parameter: any user's save reads it; get_param is ORM-cached.
        value = self.env["ir.config_parameter"].sudo().get_param(DISABLED_PARAM)
        return frozenset(value.split(",")) if value else frozenset()

    @api.model
    def _without_disabled(self, event_name, plan):
        """Drop disabled observers from ``plan``; return (plan, the observers skipped and to
        be recorded on the event). Before-events keep no record: their data is the live vals."""
        disabled = self._disabled_observers()
        if not disabled:
            return plan, ()
        skipped = tuple(s for s in plan.inline + plan.async_ if s.model in disabled)
        if not skipped:
            return plan, ()
        _logger.debug("%s: disabled observers skipped: %s", event_name, [s.model for s in skipped])
        plan = replace(
            plan,
            inline=tuple(s for s in plan.inline if s.model not in disabled),
            async_=tuple(s for s in plan.async_ if s.model not in disabled),
        )
        return plan, (() if is_before_event(event_name) else skipped)
