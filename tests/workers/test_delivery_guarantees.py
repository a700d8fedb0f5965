"""Delivery guarantees against real services: priorities, retries and requeue, duplicates,
worker crashes (SIGTERM, SIGKILL of the main process and of a pool child), Odoo down.

Every test waits on conditions with deadlines (``wait_for``); none asserts a duration.
"""

import signal

import pytest

from quicksol_bus.topology import QUEUES

pytestmark = [pytest.mark.integration]

FLAKY = "quicksol.test.observer.flaky"  # notification_events
EVENTUALLY = "quicksol.test.observer.eventually"  # notification_events
SLOW = "quicksol.test.observer.slow"  # notification_events
PRIO_LOW = "quicksol.test.observer.prio_low"  # commission_events, priority 1
PRIO_HIGH = "quicksol.test.observer.prio_high"  # commission_events, priority 9
NOTIFY = "notification_events"
NOTIFY_DEAD = QUEUES[NOTIFY].dead_queue


def emit(odoo_admin, event, data):
    uuid = odoo_admin.call("quicksol.test.record", "emit_for_test", event, data)
    assert uuid, f"{event} was not routed async (is Odoo in sync mode?)"
    return uuid


def record(odoo_admin, name="r"):
    return odoo_admin.call("quicksol.test.record", "create", [{"name": name}])[0]


def _event_id(odoo_admin, uuid):
    (event_id,) = odoo_admin.call("quicksol.event", "search", [("uuid", "=", uuid)])
    return event_id


def _attempt_runs(odoo_admin, res_id):
    return odoo_admin.runs(f"{EVENTUALLY}:attempt", res_id)


# ---------------------------------------------------------------------------------- item 2


def test_backlog_runs_highest_priority_first(odoo_admin, clean_queues, amqp, start_worker, wait_for):
    res_ids = [record(odoo_admin, f"prio {i}") for i in range(3)]
    for res_id in res_ids:
        emit(odoo_admin, "testrec.prio", {"res_ids": [res_id]})
    # the backlog is complete before any consumer exists: 3 low and 3 high messages
    wait_for(
        lambda: amqp.depth("commission_events") == 6,
        timeout=30,
        message="the six messages never reached commission_events",
    )
    start_worker("commission_events", env={"QSB_WORKER_BATCH_SIZE": "1"}, concurrency=1)
    domain = [("observer", "in", [PRIO_LOW, PRIO_HIGH]), ("res_ids", "in", [str(i) for i in res_ids])]
    wait_for(
        lambda: odoo_admin.call("quicksol.test.log", "search_count", domain) == 6,
        timeout=60,
        message="the backlog was not run",
    )
    order = [
        row["observer"]
        for row in odoo_admin.call(
            "quicksol.test.log", "search_read", domain, fields=["observer"], order="id"
        )
    ]
    assert order == [PRIO_HIGH] * 3 + [PRIO_LOW] * 3, order


# ---------------------------------------------------------------------------------- item 3


def test_transient_failure_is_retried_then_succeeds_once_and_requeue_runs_a_dead_one_once(
    odoo_admin, clean_queues, amqp, start_worker, wait_for
):
    once = record(odoo_admin, "fails once")
    always = record(odoo_admin, "fails four times")
    uuid_once = emit(odoo_admin, "testrec.eventually", {"res_ids": [once], "fail_times": 1})
    # four failures: the first try and the three retries; the requeued fifth succeeds
    uuid_dead = emit(odoo_admin, "testrec.eventually", {"res_ids": [always], "fail_times": 4})
    start_worker(NOTIFY)

    wait_for(
        lambda: odoo_admin.state(uuid_once, EVENTUALLY) == "done",
        timeout=60,
        message="the retried event never became done",
    )
    assert _attempt_runs(odoo_admin, once) == 2
    assert odoo_admin.runs(EVENTUALLY, once) == 1

    wait_for(
        lambda: odoo_admin.state(uuid_dead, EVENTUALLY) == "dead",
        timeout=90,
        message="the always-failing event is not dead in Odoo",
    )
    wait_for(lambda: amqp.depth(NOTIFY_DEAD) == 1, timeout=30, message="no dead letter")
    assert odoo_admin.runs(EVENTUALLY, always) == 0

    # an administrator requeues it over XML-RPC: it is published again and runs once
    odoo_admin.call("quicksol.event", "action_requeue", [_event_id(odoo_admin, uuid_dead)])
    wait_for(
        lambda: odoo_admin.state(uuid_dead, EVENTUALLY) == "done",
        timeout=60,
        message="the requeued event never became done",
    )
    assert odoo_admin.runs(EVENTUALLY, always) == 1
    assert _attempt_runs(odoo_admin, always) == 5
    assert amqp.depth(NOTIFY) == 0


# ---------------------------------------------------------------------------------- item 5


def test_same_signed_message_delivered_twice_has_one_effect(
    odoo_admin, clean_queues, amqp, signed, services_env, start_worker, wait_for
):
    import redis
    from kombu import Connection

    from quicksol_workers.idempotency import done_key

    res_id = record(odoo_admin, "twice")
    uuid = emit(odoo_admin, "testrec.flaky", {"res_ids": [res_id], "fail": ""})
    envelope = signed(uuid, FLAKY, NOTIFY, [res_id], "testrec.flaky")
    message = (f"{uuid}:{FLAKY}", envelope, NOTIFY, 1)
    # Odoo's own message and two more copies of it, all signed with the real key
    amqp.publish_envelopes([message, message])
    wait_for(lambda: amqp.depth(NOTIFY) == 3, timeout=30, message="messages not queued")
    worker = start_worker(NOTIFY)
    wait_for(
        lambda: odoo_admin.state(uuid, FLAKY) == "done", timeout=60, message="the event never became done"
    )
    wait_for(lambda: amqp.depth(NOTIFY) == 0, timeout=30, message="copies left in the queue")
    wait_for(
        lambda: worker.log_count("event delivered") == 3, timeout=30, message="not every copy was settled"
    )
    assert odoo_admin.runs(FLAKY, res_id) == 1

    # A redelivery (RabbitMQ's redelivered flag: a consumer died holding it) after the Redis
    # done key is gone: Odoo itself answers already_done.
    redis.Redis.from_url(services_env["CELERY_RESULT_BACKEND"]).delete(
        done_key(uuid, FLAKY, envelope["attempt"])
    )
    worker.stop()
    amqp.publish_envelopes([message])
    with Connection(services_env["CELERY_BROKER_URL"]) as conn:
        held = conn.SimpleQueue(NOTIFY, no_ack=False, queue_opts={"no_declare": True})
        held.get(timeout=10)  # taken, never acked: back in the queue when conn closes
    worker = start_worker(NOTIFY)
    wait_for(
        lambda: worker.log_count("already_done") == 1,
        timeout=60,
        message="the redelivered copy was not answered already_done by Odoo",
    )
    assert odoo_admin.runs(FLAKY, res_id) == 1
    assert amqp.depth(NOTIFY_DEAD) == 0


# ---------------------------------------------------------------------------------- item 6


def _slow_event(odoo_admin, tmp_path, name):
    res_id = record(odoo_admin, name)
    started, release = tmp_path / f"{name}.started", tmp_path / f"{name}.release"
    uuid = emit(
        odoo_admin, "testrec.slow", {"res_ids": [res_id], "started": str(started), "release": str(release)}
    )
    return uuid, res_id, started, release


@pytest.mark.fault
def test_sigterm_mid_task_completes_the_task(
    odoo_admin, clean_queues, amqp, start_worker, wait_for, tmp_path
):
    worker = start_worker(NOTIFY)
    uuid, res_id, started, release = _slow_event(odoo_admin, tmp_path, "sigterm")
    wait_for(started.exists, timeout=60, message="the slow observer never started")
    worker.signal(signal.SIGTERM)
    wait_for(
        lambda: "Warm shutdown" in worker.text() or worker.proc.poll() is not None,
        timeout=30,
        message="the worker ignored SIGTERM",
    )
    release.touch()
    wait_for(
        lambda: worker.proc.poll() is not None, timeout=60, message="the worker did not exit after its task"
    )
    if odoo_admin.state(uuid, SLOW) != "done":  # not finished in time: it must be redelivered
        start_worker(NOTIFY)
    wait_for(
        lambda: odoo_admin.state(uuid, SLOW) == "done", timeout=60, message="the event was lost after SIGTERM"
    )
    assert odoo_admin.runs(SLOW, res_id) == 1
    assert amqp.depth(NOTIFY) == 0 and amqp.depth(NOTIFY_DEAD) == 0


@pytest.mark.fault
def test_sigkill_of_the_worker_main_process_redelivers_with_one_effect(
    odoo_admin, clean_queues, amqp, start_worker, wait_for, tmp_path
):
    first = start_worker(NOTIFY)
    uuid, res_id, started, release = _slow_event(odoo_admin, tmp_path, "sigkill-main")
    wait_for(started.exists, timeout=60, message="the slow observer never started")
    first.signal(signal.SIGKILL)  # its pool child is orphaned, still inside its Odoo call
    wait_for(
        lambda: amqp.depth(NOTIFY) == 1, timeout=30, message="RabbitMQ did not put the unacked message back"
    )
    second = start_worker(NOTIFY)
    wait_for(lambda: second.log_count("received") >= 1, timeout=60, message="the message was not redelivered")
    release.touch()
    wait_for(
        lambda: odoo_admin.state(uuid, SLOW) == "done", timeout=60, message="the event never became done"
    )
    wait_for(
        lambda: second.log_count("event delivered") == 1,
        timeout=60,
        message="the redelivered message was not settled",
    )
    assert odoo_admin.runs(SLOW, res_id) == 1
    assert amqp.depth(NOTIFY) == 0 and amqp.depth(NOTIFY_DEAD) == 0


@pytest.mark.fault
def test_sigkill_of_a_pool_child_redelivers_with_one_effect(
    odoo_admin, clean_queues, amqp, start_worker, wait_for, tmp_path
):
    import os

    worker = start_worker(NOTIFY)
    uuid, res_id, started, release = _slow_event(odoo_admin, tmp_path, "sigkill-child")
    wait_for(started.exists, timeout=60, message="the slow observer never started")
    (child,) = worker.children()
    os.kill(child, signal.SIGKILL)
    wait_for(
        lambda: "WorkerLostError" in worker.text(),
        timeout=30,
        message="the worker did not notice its lost child",
    )
    wait_for(lambda: worker.log_count("received") >= 2, timeout=60, message="the message was not redelivered")
    release.touch()
    wait_for(
        lambda: odoo_admin.state(uuid, SLOW) == "done", timeout=60, message="the event never became done"
    )
    wait_for(
        lambda: worker.log_count("event delivered") == 1,
        timeout=60,
        message="the redelivered message was not settled",
    )
    assert odoo_admin.runs(SLOW, res_id) == 1
    assert amqp.depth(NOTIFY) == 0 and amqp.depth(NOTIFY_DEAD) == 0


# ---------------------------------------------------------------------------------- item 7


@pytest.mark.fault
def test_odoo_down_then_back_retries_until_done(
    odoo_admin, odoo_server, clean_queues, amqp, start_worker, wait_for
):
    res_id = record(odoo_admin, "odoo down")
    uuid = emit(odoo_admin, "testrec.flaky", {"res_ids": [res_id], "fail": ""})
    odoo_server.stop()
    try:
        # enough retries to outlast an Odoo restart; each retry waits at most 2 s
        worker = start_worker(
            NOTIFY,
            env={"QSB_WORKER_MAX_RETRIES": "100", "QSB_WORKER_RETRY_BASE": "1", "QSB_WORKER_RETRY_CAP": "2"},
        )
        wait_for(
            lambda: worker.log_count("will be retried") >= 2,
            timeout=60,
            message="the worker did not retry while Odoo was down",
        )
    finally:
        odoo_server.start()
    wait_for(
        lambda: odoo_admin.state(uuid, FLAKY) == "done",
        timeout=120,
        message="the event was lost while Odoo was down",
    )
    assert odoo_admin.runs(FLAKY, res_id) == 1
    assert amqp.depth(NOTIFY_DEAD) == 0
