from prometheus_client.parser import text_string_to_metric_families

from quicksol_bus.gauges import render


def samples(text):
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


SNAPSHOT = {
    "events_by_state": {"pending": 2, "failed": 1},
    "deliveries_by_queue": {"audit_events": {"pending": 2, "dead": 0}},
    "outbox": {"pending": 2, "oldest_pending_seconds": 12.5},
    "failure_rate": 0.25,
    "broker": {
        "reachable": True,
        "queues": [{"name": "audit_events", "messages": 7, "consumers": 2, "dead_letters": 1}],
    },
    "workers": {"reachable": True, "workers": ["a", "b"]},
}


def test_every_signal_is_a_gauge():
    values = samples(render(SNAPSHOT, {"dead_letters": 1}))
    assert values[("quicksol_bus_events", (("state", "failed"),))] == 1
    assert values[("quicksol_bus_deliveries", (("queue", "audit_events"), ("state", "pending")))] == 2
    assert values[("quicksol_bus_outbox_pending", ())] == 2
    assert values[("quicksol_bus_outbox_oldest_pending_seconds", ())] == 12.5
    assert values[("quicksol_bus_failure_ratio", ())] == 0.25
    assert values[("quicksol_bus_broker_up", ())] == 1
    assert values[("quicksol_bus_queue_messages", (("queue", "audit_events"),))] == 7
    assert values[("quicksol_bus_queue_consumers", (("queue", "audit_events"),))] == 2
    assert values[("quicksol_bus_queue_dead_letters", (("queue", "audit_events"),))] == 1
    assert values[("quicksol_bus_workers_online", ())] == 2
    assert values[("quicksol_bus_open_incidents", (("kind", "dead_letters"),))] == 1


def test_a_broker_down_exports_broker_up_0_and_no_stale_depths():
    snapshot = {
        **SNAPSHOT,
        "broker": {"reachable": False, "queues": []},
        "workers": {"reachable": False, "workers": []},
    }
    values = samples(render(snapshot))
    assert values[("quicksol_bus_broker_up", ())] == 0
    assert not [
        key for key in values if key[0] in ("quicksol_bus_queue_messages", "quicksol_bus_workers_online")
    ]
