from quicksol_bus.alerts import Thresholds, evaluate


def snapshot(**overrides):
    data = {
        "outbox": {"pending": 0, "oldest_pending_seconds": 0.0},
        "failure_rate": 0.0,
        "deliveries_by_queue": {"audit_events": {"dead": 0}},
        "broker": {
            "reachable": True,
            "error": "",
            "queues": [{"name": "audit_events", "messages": 0, "dead_letters": 0, "consumers": 1}],
        },
        "workers": {"reachable": True, "error": "", "workers": ["celery@a"]},
    }
    data.update(overrides)
    return data


def keys(data, **thresholds):
    return [s.key for s in evaluate(data, Thresholds(**thresholds))]


def test_a_healthy_bus_raises_nothing():
    assert keys(snapshot()) == []


def test_each_signal_over_its_threshold():
    data = snapshot(
        outbox={"pending": 3, "oldest_pending_seconds": 400.0},
        failure_rate=0.5,
        deliveries_by_queue={"audit_events": {"dead": 2}},
        broker={"reachable": True, "queues": [{"name": "audit_events", "messages": 5000, "dead_letters": 0}]},
        workers={"reachable": True, "workers": []},
    )
    assert keys(data) == [
        "dead_letters:audit_events",
        "failure_rate",
        "outbox_lag",
        "queue_depth:audit_events",
        "workers_offline",
    ]


def test_zero_turns_an_alert_off():
    data = snapshot(outbox={"oldest_pending_seconds": 10_000.0}, failure_rate=1.0)
    assert keys(data, outbox_lag_seconds=0, failure_rate=0) == []


def test_broker_down_is_one_signal_and_hides_the_workers_one():
    data = snapshot(
        broker={"reachable": False, "error": "connection refused", "queues": []},
        workers={"reachable": False, "workers": []},
    )
    (signal,) = evaluate(data, Thresholds())
    assert (signal.key, signal.message) == ("broker_down", "the broker cannot be reached: connection refused")


def test_dead_letters_in_the_broker_count_even_when_odoo_has_not_recorded_them():
    data = snapshot(
        broker={"reachable": True, "queues": [{"name": "audit_events", "messages": 0, "dead_letters": 4}]}
    )
    (signal,) = evaluate(data, Thresholds())
    assert (signal.key, signal.value) == ("dead_letters:audit_events", 4)
