"""Prometheus gauges of a monitor snapshot (no Odoo import), in the text exposition format.

Served by Odoo at ``/api/v1/metrics`` next to the workers' counters that Flower's ``/metrics``
exports (``quicksol_worker_*``); example alert rules: docs/alerts.md.
"""

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

__all__ = ["render", "CONTENT_TYPE"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _SnapshotCollector:
    def __init__(self, snapshot, open_incidents):
        self.snapshot = snapshot
        self.open_incidents = open_incidents

    def collect(self):
        snap = self.snapshot
        events = GaugeMetricFamily("quicksol_bus_events", "Events by state", labels=["state"])
        for state, count in sorted(snap["events_by_state"].items()):
            events.add_metric([state], count)
        yield events
        deliveries = GaugeMetricFamily(
            "quicksol_bus_deliveries",
            "Deliveries recorded in Odoo by queue and state",
            labels=["queue", "state"],
        )
        for queue, states in sorted(snap["deliveries_by_queue"].items()):
            for state, count in sorted(states.items()):
                deliveries.add_metric([queue, state], count)
        yield deliveries
        outbox = snap["outbox"]
        yield GaugeMetricFamily(
            "quicksol_bus_outbox_pending",
            "Deliveries not yet published to the broker",
            value=outbox["pending"],
        )
        yield GaugeMetricFamily(
            "quicksol_bus_outbox_oldest_pending_seconds",
            "Age of the oldest unpublished delivery (0 when none)",
            value=outbox["oldest_pending_seconds"],
        )
        yield GaugeMetricFamily(
            "quicksol_bus_failure_ratio",
            "Share of failed or dead deliveries among those emitted in the last hour",
            value=snap["failure_rate"],
        )
        broker = snap.get("broker")
        if broker is not None:
            yield GaugeMetricFamily(
                "quicksol_bus_broker_up",
                "1 if the RabbitMQ management API answered",
                value=int(broker["reachable"]),
            )
            families = {
                "messages": GaugeMetricFamily(
                    "quicksol_bus_queue_messages", "Messages in the work queue", labels=["queue"]
                ),
                "consumers": GaugeMetricFamily(
                    "quicksol_bus_queue_consumers", "Consumers of the work queue", labels=["queue"]
                ),
                "dead_letters": GaugeMetricFamily(
                    "quicksol_bus_queue_dead_letters", "Messages in <queue>.dead", labels=["queue"]
                ),
            }
            for queue in broker["queues"]:
                for key, family in families.items():
                    family.add_metric([queue["name"]], queue[key])
            if broker["reachable"]:
                yield from families.values()
        workers = snap.get("workers")
        if workers is not None and workers["reachable"]:
            yield GaugeMetricFamily(
                "quicksol_bus_workers_online",
                "Celery workers that answered a ping",
                value=len(workers["workers"]),
            )
        incidents = GaugeMetricFamily(
            "quicksol_bus_open_incidents", "Open incidents by kind", labels=["kind"]
        )
        for kind, count in sorted(self.open_incidents.items()):
            incidents.add_metric([kind], count)
        yield incidents


def render(snapshot, open_incidents=None):
    """The gauges of ``snapshot`` (and of the open incidents by kind) as exposition text."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_SnapshotCollector(snapshot, open_incidents or {}))
    return generate_latest(registry)
