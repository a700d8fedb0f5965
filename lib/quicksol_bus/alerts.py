"""Which alert signals a monitor snapshot raises, given the thresholds (no Odoo import).

The snapshot is the plain data of ``quicksol.event.bus.monitor.snapshot()``. Each raised
signal has a stable ``key``: the Odoo side opens one incident per key while it is raised and
closes it when the key is no longer raised, so a lasting problem is reported once.

>>> snapshot = {"outbox": {"oldest_pending_seconds": 600.0}, "failure_rate": 0.0,
...             "deliveries_by_queue": {}, "broker": {"reachable": True, "queues": []},
...             "workers": {"reachable": True, "workers": ["w1@host"]}}
>>> [s.key for s in evaluate(snapshot, Thresholds(outbox_lag_seconds=300))]
['outbox_lag']
"""

from dataclasses import dataclass

__all__ = ["Thresholds", "Signal", "evaluate", "KINDS"]

KINDS = {
    "queue_depth": "Queue depth",
    "dead_letters": "Dead letters",
    "outbox_lag": "Outbox lag",
    "broker_down": "Broker down",
    "workers_offline": "Workers offline",
    "failure_rate": "Failure rate",
}


@dataclass(frozen=True)
class Thresholds:
    queue_depth: int = 1000
    dead_letters: int = 1
    outbox_lag_seconds: float = 300.0
    failure_rate: float = 0.1
    min_workers: int = 1

    @classmethod
    def from_settings(cls, settings):
        return cls(
            queue_depth=settings["alert_queue_depth"],
            dead_letters=settings["alert_dead_letters"],
            outbox_lag_seconds=settings["alert_outbox_lag"],
            failure_rate=settings["alert_failure_rate"],
            min_workers=settings["alert_min_workers"],
        )


@dataclass(frozen=True)
class Signal:
    key: str
    kind: str
    value: float
    threshold: float
    message: str


def _over(value, threshold):
    return bool(threshold) and value >= threshold


def evaluate(snapshot, thresholds):
    """The signals ``snapshot`` raises, sorted by key."""
    signals = []
    broker = snapshot.get("broker") or {}
    recorded = snapshot.get("deliveries_by_queue") or {}
    queues = {q["name"]: q for q in broker.get("queues") or ()}
    for name in sorted(set(queues) | set(recorded)):
        queue = queues.get(name) or {}
        depth = queue.get("messages", 0)
        if _over(depth, thresholds.queue_depth):
            signals.append(
                Signal(
                    f"queue_depth:{name}",
                    "queue_depth",
                    depth,
                    thresholds.queue_depth,
                    f"{depth} messages wait in {name} (threshold {thresholds.queue_depth})",
                )
            )
        dead = max(queue.get("dead_letters", 0), (recorded.get(name) or {}).get("dead", 0))
        if _over(dead, thresholds.dead_letters):
            signals.append(
                Signal(
                    f"dead_letters:{name}",
                    "dead_letters",
                    dead,
                    thresholds.dead_letters,
                    f"{dead} dead letters for {name}: requeue, mark done or cancel them",
                )
            )
    lag = (snapshot.get("outbox") or {}).get("oldest_pending_seconds", 0.0)
    if _over(lag, thresholds.outbox_lag_seconds):
        signals.append(
            Signal(
                "outbox_lag",
                "outbox_lag",
                lag,
                thresholds.outbox_lag_seconds,
                f"the oldest unpublished delivery waits for {lag:.0f} s (threshold {thresholds.outbox_lag_seconds:.0f} s)",
            )
        )
    if broker and not broker.get("reachable", True):
        signals.append(
            Signal(
                "broker_down",
                "broker_down",
                1,
                1,
                f"the broker cannot be reached: {broker.get('error') or '?'}",
            )
        )
    workers = snapshot.get("workers") or {}
    if broker.get("reachable") and workers.get("reachable") and thresholds.min_workers:
        online = len(workers.get("workers") or ())
        if online < thresholds.min_workers:
            signals.append(
                Signal(
                    "workers_offline",
                    "workers_offline",
                    online,
                    thresholds.min_workers,
                    f"{online} worker(s) answer, {thresholds.min_workers} expected",
                )
            )
    rate = snapshot.get("failure_rate", 0.0)
    if _over(rate, thresholds.failure_rate):
        signals.append(
            Signal(
                "failure_rate",
                "failure_rate",
                rate,
                thresholds.failure_rate,
                f"{rate:.1%} of the last hour's deliveries failed (threshold {thresholds.failure_rate:.1%})",
            )
        )
    return sorted(signals, key=lambda s: s.key)
