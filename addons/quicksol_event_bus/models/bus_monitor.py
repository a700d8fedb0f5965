"""``quicksol.event.bus.monitor``: one snapshot of the bus's health, shared by the Broker and
workers screen, the status API, the alerts and the Prometheus gauges.

Outbox figures come from this database; queue depths, dead letters and consumers from the
RabbitMQ management API; workers online from Celery's control API. The remote checks run in
parallel with short timeouts (``EVENT_BUS_MONITOR_TIMEOUT``), so the snapshot answers within
about two seconds when the broker or the workers are down, and says so.
"""

import logging

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from quicksol_bus.dead_letters import apply_dead_letter_policy, purge_recorded_dead_letters
from quicksol_bus.monitoring import check_broker_and_workers, display_url, vhost_of
from quicksol_bus.topology import QUEUES

_logger = logging.getLogger(__name__)

AUDITOR_GROUP = "quicksol_event_bus.group_event_bus_auditor"
MANAGER_GROUP = "quicksol_event_bus.group_event_bus_manager"
# Failure rate: failed or dead deliveries among those emitted in this window.
FAILURE_WINDOW = "1 hour"
STATES = ("pending", "queued", "done", "failed", "dead")


class QuicksolEventBusMonitor(models.AbstractModel):
    _name = "quicksol.event.bus.monitor"
    _description = "Event Bus Monitor"

    @api.model
    def _check_auditor(self):
        if not (self.env.su or self.env.user.has_group(AUDITOR_GROUP)):
            raise AccessError(self.env._("Only event bus auditors and administrators see the bus's health."))

    @api.model
    def _outbox(self):
        """Pending (unpublished) deliveries and the age of the oldest, in seconds."""
        self.env["quicksol.event.delivery"].flush_model()
        self.env.cr.execute(
            """SELECT count(*),
                      EXTRACT(EPOCH FROM (now() at time zone 'utc' - min(create_date)))
                 FROM quicksol_event_delivery
                WHERE state = 'pending' AND run_mode = 'async'"""
        )
        count, age = self.env.cr.fetchone()
        return {"pending": count, "oldest_pending_seconds": round(float(age or 0.0), 1)}

    @api.model
    def _counts(self):
        """Events by state, deliveries by queue and state, failure rate of the last hour."""
        self.env["quicksol.event.delivery"].flush_model()
        self.env["quicksol.event"].flush_model(["state"])
        self.env.cr.execute("SELECT state, count(*) FROM quicksol_event GROUP BY state")
        events = dict.fromkeys(STATES, 0) | dict(self.env.cr.fetchall())
        self.env.cr.execute(
            "SELECT queue, state, count(*) FROM quicksol_event_delivery GROUP BY queue, state"
        )
        by_queue = {name: dict.fromkeys(STATES, 0) for name in sorted(QUEUES)}
        for queue, state, count in self.env.cr.fetchall():
            by_queue.setdefault(queue, dict.fromkeys(STATES, 0))[state] = count
        self.env.cr.execute(
            """SELECT count(*), count(*) FILTER (WHERE state IN ('failed', 'dead'))
                 FROM quicksol_event_delivery
                WHERE create_date > now() at time zone 'utc' - %s::interval""",
            [FAILURE_WINDOW],
        )
        total, failed = self.env.cr.fetchone()
        return {
            "events_by_state": events,
            "deliveries_by_queue": by_queue,
            "failure_rate": round(failed / total, 4) if total else 0.0,
            "failure_window": FAILURE_WINDOW,
        }

    @api.model
    def _remote(self):
        """Broker and workers, each with its error when it could not be asked."""
        settings = self.env["quicksol.event.bus"]._settings()
        broker, workers = check_broker_and_workers(
            settings["broker_url"], settings["rabbitmq_mgmt_url"], timeout=settings["monitor_timeout"]
        )
        return broker, workers

    @api.model
    def _circuit_state(self):
        settings = self.env["quicksol.event.bus"]._settings()
        if not settings["broker_url"]:
            return "sync"
        return self.env["quicksol.event.bus"]._breaker(settings).state

    @api.model
    def snapshot(self, with_remote=True):
        """Everything the screen, the API, the alerts and the gauges show, as plain data."""
        self._check_auditor()
        settings = self.env["quicksol.event.bus"]._settings()
        data = {
            "outbox": self._outbox(),
            **self._counts(),
            "circuit_state": self._circuit_state(),
            "broker_url": display_url(settings["broker_url"]),
            "rabbitmq_management_url": display_url(settings["rabbitmq_mgmt_url"]),
            "flower_url": display_url(settings["flower_url"]),
            "checked_at": fields.Datetime.to_string(fields.Datetime.now()),
        }
        if with_remote:
            broker, workers = self._remote()
            data["broker"] = broker.as_dict()
            data["workers"] = workers.as_dict()
        return data


class QuicksolEventBusDeadLetters(models.AbstractModel):
    """Dead-letter queues: the bounding policy and the purge of recorded dead letters."""

    _inherit = "quicksol.event.bus.monitor"

    @api.model
    def _check_manager(self):
        if not (self.env.su or self.env.user.has_group(MANAGER_GROUP)):
            raise AccessError(self.env._("Only event bus administrators can change the dead-letter queues."))

    @api.model
    def _recorded_pairs(self, pairs):
        """The (event uuid, observer) pairs whose delivery Odoo holds in a final state."""
        if not pairs:
            return set()
        self.env["quicksol.event.delivery"].flush_model()
        self.env.cr.execute(
            """SELECT e.uuid, d.observer
                 FROM quicksol_event_delivery d
                 JOIN quicksol_event e ON e.id = d.event_id
                WHERE e.uuid = ANY(%s) AND (e.uuid, d.observer) IN %s
                  AND d.state IN ('dead', 'failed', 'done')""",
            [list({uuid for uuid, _observer in pairs}), tuple(pairs)],
        )
        return set(self.env.cr.fetchall())

    @api.model
    def purge_recorded_dead_letters(self, queue):
        """Remove from ``<queue>.dead`` the dead letters Odoo has recorded; return counts."""
        self._check_manager()
        if queue not in QUEUES:
            raise UserError(self.env._("Unknown queue %s.", queue))
        settings = self.env["quicksol.event.bus"]._settings()
        if not settings["broker_url"]:
            raise UserError(self.env._("No broker is configured (sync mode): there is no dead-letter queue."))
        try:
            removed, kept = purge_recorded_dead_letters(
                settings["broker_url"], QUEUES[queue].dead_queue, self._recorded_pairs
            )
        except Exception as error:
            raise UserError(self.env._("The broker could not be reached: %s", error)) from error
        _logger.info(
            "%s purged %d recorded dead letters of %s (%d kept)", self.env.user.login, removed, queue, kept
        )
        return {"removed": removed, "kept": kept}

    @api.model
    def apply_dead_letter_policy(self):
        """Create or update the RabbitMQ policy that bounds every dead-letter queue."""
        self._check_manager()
        settings = self.env["quicksol.event.bus"]._settings()
        if not settings["rabbitmq_mgmt_url"]:
            raise UserError(self.env._("Set EVENT_BUS_RABBITMQ_MGMT_URL to apply the policy."))
        try:
            policy = apply_dead_letter_policy(
                settings["rabbitmq_mgmt_url"],
                vhost_of(settings["broker_url"]),
                settings["monitor_timeout"] * 2,
            )
        except Exception as error:
            raise UserError(
                self.env._("The RabbitMQ management API refused the policy: %s", error)
            ) from error
        _logger.info("%s applied the dead-letter policy %s", self.env.user.login, policy["name"])
        return policy
