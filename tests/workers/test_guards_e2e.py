"""Debounce, dedup and per-observer rate limits against real Redis, RabbitMQ and Odoo: every
event ends done (run, or coalesced in Odoo) — none lost, none run twice.

One notification worker serves the module (its rate limit for the rate-limited observer is
set from the environment, as operators would)."""

import uuid as uuidlib

import pytest

from quicksol_bus.topology import QUEUES

pytestmark = [pytest.mark.integration]

NOTIFY = "notification_events"
DEBOUNCED = "quicksol.test.observer.debounced"  # _debounce_seconds = 2, _async_batch
DEDUP = "quicksol.test.observer.dedup"  # _dedup_window = 60
RATE_LIMITED = "quicksol.test.observer.rate_limited"


@pytest.fixture(scope="module")
def guard_worker(odoo_server, services_env, rabbitmq_admin, module_worker):
    import redis

    client = redis.Redis.from_url(services_env["CELERY_RESULT_BACKEND"])
    for pattern in ("qsb:debounce:*", "qsb:dedup:*", "qsb:rate:*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    for name in (NOTIFY, QUEUES[NOTIFY].dead_queue):
        rabbitmq_admin.purge(name)
    return module_worker(NOTIFY, env={"QSB_WORKER_RATE_LIMITS": f"{RATE_LIMITED}=3/s"})


def _emit_many(odoo_admin, event, datas):
    return [odoo_admin.call("quicksol.test.record", "emit_for_test", event, data) for data in datas]


def _states(odoo_admin, uuids, observer):
    rows = odoo_admin.call(
        "quicksol.event.delivery",
        "search_read",
        [("event_uuid", "in", uuids), ("observer", "=", observer)],
        fields=["state", "run_mode", "coalesced_into"],
    )
    return rows


def _all_done(odoo_admin, uuids, observer):
    rows = _states(odoo_admin, uuids, observer)
    return len(rows) == len(uuids) and all(r["state"] == "done" for r in rows)


def _logs(odoo_admin, observer, res_id):
    return odoo_admin.call(
        "quicksol.test.log",
        "search_read",
        [("observer", "=", observer), ("res_ids", "=", str(res_id))],
        fields=["batch_size"],
    )


def test_debounce_runs_a_window_once_with_every_event_and_loses_none(odoo_admin, guard_worker, wait_for):
    res_id = odoo_admin.call("quicksol.test.record", "create", [{"name": "debounce"}])[0]
    uuids = _emit_many(odoo_admin, "testrec.debounced", [{"res_ids": [res_id], "n": i} for i in range(5)])
    wait_for(
        lambda: _all_done(odoo_admin, uuids, DEBOUNCED),
        timeout=60,
        message="not every debounced event became done",
    )
    logs = _logs(odoo_admin, DEBOUNCED, res_id)
    # each event's effect once; the window went to Odoo as one batch
    assert len(logs) == 5, logs
    assert guard_worker.log_count("debounce leader") >= 1
    assert max(row["batch_size"] for row in logs) > 1, logs


def test_dedup_runs_or_coalesces_each_identical_event_exactly_once(odoo_admin, guard_worker, wait_for):
    res_id = odoo_admin.call("quicksol.test.record", "create", [{"name": "dedup"}])[0]
    data = {"res_ids": [res_id], "nonce": uuidlib.uuid4().hex}  # identical within this run only
    uuids = _emit_many(odoo_admin, "testrec.dedup", [data] * 3)
    wait_for(
        lambda: _all_done(odoo_admin, uuids, DEDUP),
        timeout=60,
        message="not every duplicate event became done",
    )
    rows = _states(odoo_admin, uuids, DEDUP)
    coalesced = [r for r in rows if r["run_mode"] == "coalesced"]
    # A duplicate is coalesced only into a first event that has not run yet (whether it had,
    # depends on how the worker's batches fell): each event either ran once or was coalesced.
    # The deterministic cases are in test_guards_faults.py.
    assert len(_logs(odoo_admin, DEDUP, res_id)) + len(coalesced) == 3, rows
    assert {r["coalesced_into"] for r in coalesced} <= set(uuids), rows


def test_rate_limit_per_observer_holds_back_and_runs_every_event_once(odoo_admin, guard_worker, wait_for):
    res_ids = odoo_admin.call("quicksol.test.record", "create", [{"name": f"rate {i}"} for i in range(8)])
    uuids = _emit_many(odoo_admin, "testrec.rate_limited", [{"res_ids": [i]} for i in res_ids])
    wait_for(
        lambda: _all_done(odoo_admin, uuids, RATE_LIMITED),
        timeout=60,
        message="not every rate-limited event became done",
    )
    assert all(len(_logs(odoo_admin, RATE_LIMITED, i)) == 1 for i in res_ids)
    assert guard_worker.log_count(f"rate limit 3/s of {RATE_LIMITED} reached") >= 1
