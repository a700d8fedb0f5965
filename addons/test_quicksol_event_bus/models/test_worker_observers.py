"""Observers the worker end-to-end tests (tests/workers) drive: retries, priorities, slow runs,
debounce, dedup, rate limits and the workers benchmark."""

import time
from pathlib import Path

from odoo import api, models

from .test_observers import _log

# The slow observer gives up waiting for its release file after this long, so a test that
# died half-way never leaves an Odoo request hanging for ever.
SLOW_RELEASE_TIMEOUT = 120


def _log_committed(env, observer, event_name, data):
    """Log in a transaction of its own: the entry survives the observer's failure."""
    with env.registry.cursor() as cr:
        _log(api.Environment(cr, env.uid, env.context), observer, event_name, data)


def _attempts(env, observer, data):
    """Committed attempt entries of ``observer`` for the event's records."""
    with env.registry.cursor() as cr:
        cr.execute(
            "SELECT count(*) FROM quicksol_test_log WHERE observer = %s AND res_ids = %s",
            [observer, ",".join(map(str, data.get("res_ids") or []))],
        )
        return cr.fetchone()[0]


class EventuallyObserver(models.AbstractModel):
    """Fails transiently ``data['fail_times']`` times, then succeeds (attempts are counted in
    ``quicksol.test.log`` under ``<observer>:attempt``, committed apart from the run)."""

    _name = "quicksol.test.observer.eventually"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: transient failures, then success"
    _observe_events = ["testrec.eventually"]
    _async_capable = True
    _async_queue = "notification_events"

    @api.model
    def handle(self, event_name, data):
        attempt = f"{self._name}:attempt"
        _log_committed(self.env, attempt, event_name, data)
        if _attempts(self.env, attempt, data) <= int(data.get("fail_times") or 0):
            raise ConnectionError("transient failure asked by the test")
        _log(self.env, self._name, event_name, data)


class PriorityLowObserver(models.AbstractModel):
    _name = "quicksol.test.observer.prio_low"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: low priority on the commission queue"
    _observe_events = ["testrec.prio"]
    _async_capable = True
    _async_queue = "commission_events"
    _async_priority = 1

    @api.model
    def handle(self, event_name, data):
        _log(self.env, self._name, event_name, data)


class PriorityHighObserver(models.AbstractModel):
    _name = "quicksol.test.observer.prio_high"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: high priority on the commission queue"
    _observe_events = ["testrec.prio"]
    _async_capable = True
    _async_queue = "commission_events"
    _async_priority = 9

    @api.model
    def handle(self, event_name, data):
        _log(self.env, self._name, event_name, data)


class SlowObserver(models.AbstractModel):
    """Touches ``data['started']`` (one line per run), then waits for ``data['release']``."""

    _name = "quicksol.test.observer.slow"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: waits for the test's go"
    _observe_events = ["testrec.slow"]
    _async_capable = True
    _async_queue = "notification_events"

    @api.model
    def handle(self, event_name, data):
        with open(data["started"], "a") as started:
            started.write("run\n")
        release = Path(data["release"])
        deadline = time.monotonic() + SLOW_RELEASE_TIMEOUT
        while not release.exists():
            if time.monotonic() > deadline:
                raise ConnectionError("the test never released the slow observer")
            time.sleep(0.05)
        _log(self.env, self._name, event_name, data)


class DebouncedObserver(models.AbstractModel):
    _name = "quicksol.test.observer.debounced"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: debounced, batch-capable"
    _observe_events = ["testrec.debounced"]
    _async_capable = True
    _async_queue = "notification_events"
    _async_batch = True
    _debounce_seconds = 2

    @api.model
    def handle(self, event_name, data):
        _log(self.env, self._name, event_name, data)

    @api.model
    def handle_async_batch(self, events):
        for event_name, data in events:
            _log(self.env, self._name, event_name, data, batch_size=len(events))


class DedupObserver(models.AbstractModel):
    _name = "quicksol.test.observer.dedup"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: identical events within a minute run once"
    _observe_events = ["testrec.dedup"]
    _async_capable = True
    _async_queue = "notification_events"
    _dedup_window = 60

    @api.model
    def handle(self, event_name, data):
        _log(self.env, self._name, event_name, data)


class RateLimitedObserver(models.AbstractModel):
    _name = "quicksol.test.observer.rate_limited"
    _inherit = "quicksol.abstract.observer"
    _description = "Test observer: at most 120 runs a minute"
    _observe_events = ["testrec.rate_limited"]
    _async_capable = True
    _async_queue = "notification_events"
    _rate_limit = "120/m"

    @api.model
    def handle(self, event_name, data):
        _log(self.env, self._name, event_name, data)


class BenchAuditObserver(models.AbstractModel):
    """The workers benchmark's observer: batch-capable, on the audit queue, no effect."""

    _name = "quicksol.bench.observer.audit"
    _inherit = "quicksol.abstract.observer"
    _description = "Benchmark observer: audit, batch-capable"
    _observe_events = ["bench.audit"]
    _async_capable = True
    _async_queue = "audit_events"
    _async_batch = True

    @api.model
    def handle(self, event_name, data):
        return len(data.get("res_ids") or [])

    @api.model
    def handle_async_batch(self, events):
        return len(events)
