"""The fault matrix (issue 7): each case emits a known burst of events (committed and rolled
back), injects one fault into the real stack, restores it, waits for recovery on a condition
with a deadline and reconciles every committed event against its effect rows. A case fails on
any lost or duplicated effect, any trace of a rolled-back event, or any event not done.

How to run it and what each case does: docs/fault-matrix.md.
"""

import os
import signal
import time

import pytest

import devstack

from .conftest import AUDIT, COMMISSION, FAULT_DEBOUNCED_EVENT, FAULT_PAIR_EVENT, Amqp, SilentListener

pytestmark = [pytest.mark.integration, pytest.mark.fault]


def _mid_burst(matrix, case, total):
    """Wait until the burst is part-way through the workers: some effects, not all."""
    devstack.wait_for(lambda: matrix.progress(case) > 0, 60, f"{case}: no event ran")
    return matrix.progress(case) < total


# ------------------------------------------------------------------------- broker faults


def test_broker_refusing_connections(fault, broker_control):
    burst = fault.burst("broker_refusing")
    fault.emit(burst, 250, calls=1)
    fault.stop_broker(broker_control)
    try:
        # Saves while nothing listens on the AMQP port: they commit, their events stay pending.
        fault.emit(burst, 250, calls=2, failing_call=True)
    finally:
        broker_control.start()
    restored = time.monotonic()
    fault.finish(burst, fault.recover(burst, restored))


def test_broker_killed_mid_burst(fault, broker_control):
    burst = fault.burst("broker_killed")
    fault.emit(burst, 300, calls=1, extra={"sleep_ms": 5})
    _mid_burst(fault, burst.case, 300)
    import os

    os.kill(fault.broker_pid(), signal.SIGKILL)
    devstack.wait_for(lambda: not broker_control.is_up(), 30, "RabbitMQ survived SIGKILL")
    try:
        fault.emit(burst, 200, calls=1, failing_call=True, extra={"sleep_ms": 5})
    finally:
        broker_control.start()
    restored = time.monotonic()
    fault.finish(burst, fault.recover(burst, restored))


def test_broker_restarted_with_a_backlog(fault, broker_control, services_env):
    fault.workers.stop(COMMISSION)
    burst = fault.burst("broker_backlog")
    fault.emit(burst, 500, calls=2)
    amqp = Amqp(services_env["CELERY_BROKER_URL"])
    try:
        devstack.wait_for(lambda: amqp.depth(COMMISSION) >= 500, 30, "the backlog never reached the queue")
    finally:
        amqp.close()
    fault.stop_broker(broker_control)
    broker_control.start()
    amqp = Amqp(services_env["CELERY_BROKER_URL"])
    try:
        # Persistent messages on a durable queue survive the restart.
        assert amqp.depth(COMMISSION) >= 500
    finally:
        amqp.close()
    restored = time.monotonic()
    fault.workers.ensure(COMMISSION)
    fault.finish(burst, fault.recover(burst, restored, relay=False))


# ------------------------------------------------------------------------- worker faults


def _kill_mid_batch(fault, case, kill):
    """A slow burst (10 ms of work per event); ``kill(worker)`` once part of it has run."""
    burst = fault.burst(case)
    (worker,) = fault.workers.ensure(COMMISSION)
    fault.emit(burst, 500, calls=2, extra={"sleep_ms": 10})
    notes = [] if _mid_burst(fault, case, 500) else ["the burst had finished before the fault"]
    kill(worker)
    return burst, notes


def test_worker_main_process_sigkill_mid_batch(fault):
    def kill(worker):
        worker.signal(signal.SIGKILL)  # its pool children are orphaned inside their Odoo calls
        devstack.wait_for(lambda: worker.proc.poll() is not None, 30, "the worker survived SIGKILL")

    burst, notes = _kill_mid_batch(fault, "worker_sigkill", kill)
    restored = time.monotonic()
    fault.workers.ensure(COMMISSION)  # reaps the dead one (and its orphans), starts another
    fault.finish(burst, fault.recover(burst, restored, relay=False), notes)


def test_pool_child_sigkill_mid_batch(fault):
    import os

    def kill(worker):
        os.kill(worker.children()[0], signal.SIGKILL)
        devstack.wait_for(
            lambda: "WorkerLostError" in worker.text() or "exited" in worker.text(),
            30,
            "the worker did not notice its lost child",
        )

    burst, notes = _kill_mid_batch(fault, "pool_child_sigkill", kill)
    restored = time.monotonic()
    fault.finish(burst, fault.recover(burst, restored, relay=False), notes)


def test_sigterm_during_a_burst(fault):
    def stop(worker):
        worker.signal(signal.SIGTERM)  # warm shutdown: the tasks in hand finish
        devstack.wait_for(lambda: worker.proc.poll() is not None, 60, "the worker ignored SIGTERM")

    burst, notes = _kill_mid_batch(fault, "worker_sigterm", stop)
    restored = time.monotonic()
    fault.workers.ensure(COMMISSION)
    fault.finish(burst, fault.recover(burst, restored, relay=False), notes)


# ------------------------------------------------------------------------- Odoo faults


def test_odoo_killed_between_commit_and_publish(fault):
    from devstack.proc import port_open

    from .conftest import root_conftest

    burst = fault.burst("odoo_killed")
    # Publishing after commit cannot happen: Odoo's broker is a port nobody listens on, so
    # the committed rows stay pending; then Odoo dies without any shutdown.
    refusing = root_conftest.free_port()
    assert not port_open(refusing)
    fault.point_broker(f"amqp://quicksol:quicksol@127.0.0.1:{refusing}//")
    try:
        fault.emit(burst, 500, calls=2)
        fault.kill_server()
        fault.server.start()
    finally:
        fault.point_broker(fault.broker_url)
    restored = time.monotonic()
    fault.finish(burst, fault.recover(burst, restored))  # the relay cron publishes them


def test_odoo_stopped_then_slow_during_callbacks(fault):
    import os

    burst = fault.burst("odoo_stopped_slow")
    (worker,) = fault.workers.ensure(COMMISSION)
    fault.emit(burst, 500, calls=2, extra={"sleep_ms": 10})
    notes = [] if _mid_burst(fault, burst.case, 500) else ["the burst had finished before the fault"]
    retries = worker.log_count("will be retried")
    fault.server.stop()
    try:
        devstack.wait_for(
            lambda: worker.log_count("will be retried") > retries,
            60,
            "no callback failed while Odoo was down",
        )
    finally:
        fault.server.start()
    # Slow: Odoo frozen (SIGSTOP) until a callback times out, then thawed; the frozen calls
    # commit after the worker gave up on them, and their retries find them done.
    ran = fault.progress(burst.case)
    devstack.wait_for(
        lambda: fault.progress(burst.case) > ran or fault.progress(burst.case) >= 500,
        60,
        "the workers did not call Odoo again after its restart",
    )
    retries = worker.log_count("will be retried")
    pid = fault.server_pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        devstack.wait_for(
            lambda: worker.log_count("will be retried") > retries,
            60,
            "no callback timed out on a frozen Odoo",
        )
    finally:
        os.kill(pid, signal.SIGCONT)
    restored = time.monotonic()
    fault.finish(burst, fault.recover(burst, restored, relay=False), notes)


# ------------------------------------------------------------------------- Redis, rollback


def test_redis_down_and_back(fault):
    (worker,) = fault.workers.ensure(COMMISSION)
    burst = fault.burst("redis_down")
    retries = worker.log_count("will be retried")
    devstack.stop("redis")
    try:
        fault.emit(burst, 500, calls=2)
        devstack.wait_for(
            lambda: worker.log_count("will be retried") > retries or fault.progress(burst.case) >= 500,
            60,
            "the workers neither ran nor retried events while Redis was down",
        )
    finally:
        devstack.start("redis")
    restored = time.monotonic()
    fault.finish(burst, fault.recover(burst, restored, relay=False))


def test_transaction_rolled_back_leaves_no_event(fault):
    burst = fault.burst("rolled_back")
    # As many events undone (savepoints, and whole failing calls) as committed.
    fault.emit(burst, 500, calls=2, rollback_ratio=1.0, failing_call=True)
    fault.emit(burst, 10, calls=1, rollback_ratio=1.0, failing_call=True)
    restored = time.monotonic()
    outcome = fault.finish(burst, fault.recover(burst, restored))
    assert outcome.rolled_back >= 500


# ------------------------------------------------------------------------- hung broker


def test_socket_that_never_speaks_amqp(fault):
    listener = SilentListener()
    burst = fault.burst("silent_socket")
    try:
        fault.point_broker(f"amqp://quicksol:quicksol@127.0.0.1:{listener.port}//")
        # Every save must return (the RPC timeout is the hang detector); its events stay pending.
        fault.emit(burst, 500, calls=2, timeout=30)
    finally:
        fault.point_broker(fault.broker_url)
        listener.close()
    restored = time.monotonic()
    fault.finish(
        burst, fault.recover(burst, restored), [f"{len(listener.accepted)} connections to the silent socket"]
    )


def _alarm(fault, case, set_args, restore_args, alarm_field):
    from devstack.rabbitmq import api

    def alarm_on():
        # Evaluated live by the node (the /api/nodes figures are sampled every few seconds).
        return api("health/checks/alarms")[0] == 503

    burst = fault.burst(case)
    hung = []
    fault.rabbitmqctl(*set_args)
    try:
        devstack.wait_for(alarm_on, 60, f"RabbitMQ raised no {alarm_field}")
        # A save must return under the alarm (within the connect timeout + 1 s); 15 s is the
        # hang detector here. Events of a hung call are reconciled from what Odoo stored.
        # One save of 500 events of 4 KB: 2 MB to publish, more than the socket buffers
        # hold while the broker reads nothing.
        started = time.monotonic()
        fault.emit(burst, 500, calls=1, timeout=15, tolerate_errors=True, extra={"pad": "x" * 4096})
        if burst.unknown:
            hung.append(f"{len(burst.unknown)} events were saved by calls that hung under the alarm")
        hung.append(f"burst emitted in {time.monotonic() - started:.1f}s under the alarm")
    finally:
        fault.rabbitmqctl(*restore_args)
    devstack.wait_for(lambda: not alarm_on(), 60, f"the {alarm_field} did not clear")
    restored = time.monotonic()
    outcome = fault.finish(burst, fault.recover(burst, restored, deadline=60), hung)
    assert not burst.unknown, hung[0]
    return outcome


def test_memory_alarm(fault):
    _alarm(
        fault,
        "memory_alarm",
        ("set_vm_memory_high_watermark", "absolute", "1"),
        ("set_vm_memory_high_watermark", "0.4"),
        "mem_alarm",
    )


def test_disk_alarm(fault):
    _alarm(
        fault,
        "disk_alarm",
        ("set_disk_free_limit", "100000GB"),
        ("set_disk_free_limit", "50MB"),
        "disk_free_alarm",
    )


# ------------------------------------------------------------------------- bad messages


def _poison_messages():
    """One message of each kind a worker cannot run (issue 7, defect 3)."""
    import json

    from quicksol_bus.topology import TASK_NAME

    def celery_headers(task, task_id):
        return {"task": task, "id": task_id, "lang": "py", "retries": 0, "root_id": task_id}

    good_body = json.dumps([[{"event_id": "poison", "observer": "x"}], {}, {}])
    return [
        (
            "wrong content type",
            b"\x80\x04garbage",
            "application/x-python-serialize",
            celery_headers(TASK_NAME, "p1"),
        ),
        ("not JSON", b"{this is not json", "application/json", celery_headers(TASK_NAME, "p2")),
        (
            "NaN in the envelope",
            b'[[{"event_id": NaN, "observer": NaN}], {}, {}]',
            "application/json",
            celery_headers(TASK_NAME, "p3"),
        ),
        (
            "unknown task name",
            good_body.encode(),
            "application/json",
            celery_headers("quicksol.no_such_task", "p4"),
        ),
        (
            "arguments of the wrong shape",
            json.dumps([["a", "b", "c"], {"x": 1}, {}]).encode(),
            "application/json",
            celery_headers(TASK_NAME, "p5"),
        ),
    ]


def test_poison_messages_mixed_into_a_burst(fault, services_env, rabbitmq_admin):
    from kombu import Connection, Producer

    from quicksol_bus.topology import QUEUES

    dead = QUEUES[COMMISSION].dead_queue
    rabbitmq_admin.purge(dead)
    poison = _poison_messages()
    burst = fault.burst("poison")
    amqp = Amqp(services_env["CELERY_BROKER_URL"])
    # A backlog first, so that the poison also lands inside batches a worker pulls.
    fault.workers.stop(COMMISSION)
    try:
        with Connection(services_env["CELERY_BROKER_URL"]) as conn:
            producer = Producer(conn.channel())
            for _kind, body, content_type, headers in poison[:3]:
                producer.publish(
                    body,
                    routing_key=COMMISSION,
                    headers=headers,
                    content_type=content_type,
                    content_encoding="utf-8",
                    delivery_mode=2,
                    priority=5,
                )
            fault.emit(burst, 250, calls=1)
            for _kind, body, content_type, headers in poison[3:]:
                producer.publish(
                    body,
                    routing_key=COMMISSION,
                    headers=headers,
                    content_type=content_type,
                    content_encoding="utf-8",
                    delivery_mode=2,
                    priority=5,
                )
            fault.emit(burst, 250, calls=1)
        restored = time.monotonic()
        fault.workers.ensure(COMMISSION)

        def poison_dead_lettered():
            return amqp.depth(COMMISSION) == 0 and amqp.depth(dead) >= len(poison)

        recovered = fault.recover(burst, restored, relay=False, deadline=30, extra_done=poison_dead_lettered)
        notes = [
            f"{amqp.depth(dead)} of {len(poison)} poison messages in {dead}, {amqp.depth(COMMISSION)} left in {COMMISSION}"
        ]
        fault.finish(burst, recovered, notes)
    finally:
        amqp.close()
        rabbitmq_admin.purge(COMMISSION)  # a looping poison message must not slow later cases
        rabbitmq_admin.purge(dead)


# ------------------------------------------------------------------------- concurrency


def test_two_workers_on_one_event(fault):
    fault.workers.ensure(AUDIT, concurrency=2)
    try:
        burst = fault.burst("two_workers", FAULT_PAIR_EVENT)
        fault.emit(burst, 500, calls=2)
        restored = time.monotonic()
        fault.finish(burst, fault.recover(burst, restored, relay=False, deadline=30))
    finally:
        fault.workers.stop(AUDIT)


def test_serialization_failure(fault):
    """Every run updates one shared row: two worker processes make concurrent runs conflict.
    Odoo must retry such a request itself: no delivery may be retried by a worker."""
    fault.workers.ensure(COMMISSION, count=2)
    try:
        burst = fault.burst("serialization")
        fault.emit(burst, 500, calls=2, extra={"contended": True})
        restored = time.monotonic()
        recovered = fault.recover(burst, restored, relay=False, deadline=60)
        outcome = fault.finish(burst, recovered)
    finally:
        for extra in fault.workers.alive(COMMISSION)[1:]:
            fault.workers.retire(extra)
    deliveries = outcome.data["deliveries"]
    retried = sum(1 for _token, _observer, _state, attempts in deliveries if attempts > 1)
    assert outcome.data["counter"] == outcome.effects, "the shared row does not count every run once"
    assert retried == 0, f"{retried} deliveries were retried by a worker after a serialization failure"


def test_messages_that_expire_unconsumed_are_published_again(fault, services_env, rabbitmq_admin, wait_for):
    """Issue 7, defect 7: no worker takes the messages within their queue's TTL (here 1 s, by
    a test policy below the queue's own hour); RabbitMQ dead-letters them as expired, the
    reconciliation tells Odoo, which publishes each delivery again with a new attempt."""
    from quicksol_bus.topology import QUEUES
    from quicksol_workers.celery_app import build_app
    from quicksol_workers.config import WorkerConfig
    from quicksol_workers.maintenance import reconcile_dead_letters

    dead = QUEUES[COMMISSION].dead_queue
    rabbitmq_admin.purge(dead)
    burst = fault.burst("ttl_expiry")
    amqp = Amqp(services_env["CELERY_BROKER_URL"])
    fault.workers.stop(COMMISSION)
    policy = ("qsb-fault-ttl", f"^{COMMISSION}$", '{"message-ttl": 1000}')
    fault.rabbitmqctl("set_policy", "--apply-to", "queues", "--priority", "5", *policy)
    try:
        fault.emit(burst, 500, calls=1)
        wait_for(
            lambda: amqp.depth(COMMISSION) == 0 and amqp.depth(dead) >= 500,
            timeout=60,
            message="the messages did not expire into the dead-letter queue",
        )
    finally:
        fault.rabbitmqctl("clear_policy", policy[0])
    aged = fault.odoo.call("quicksol.test.fault.matrix", "age_published", burst.case, 2 * 3600)
    app = build_app(WorkerConfig.from_env(fault.workers.env))
    try:
        marked_dead = reconcile_dead_letters(app)
        assert marked_dead[COMMISSION] == 0, "an expired message is not a dead one"
        restored = time.monotonic()
        fault.workers.ensure(COMMISSION)
        recovered = fault.recover(burst, restored, relay=False)
    finally:
        amqp.close()
        rabbitmq_admin.purge(dead)
    fault.finish(burst, recovered, [f"{aged} deliveries expired unconsumed and were published again"])


def test_a_callback_that_commits_after_the_worker_gave_up_on_it(fault):
    """The worker waits 1 s for Odoo; a few events take 1.5 s each. Their call times out on
    the worker (a transient error: retried) and commits in Odoo all the same: the retries
    find the work done, nothing runs twice."""
    burst = fault.burst("late_commit")
    fault.workers.stop(COMMISSION)
    impatient = fault.workers.start(COMMISSION, env={"QSB_WORKER_ODOO_TIMEOUT": "1"})
    try:
        fault.emit(burst, 490, calls=1)
        fault.emit(burst, 10, calls=1, extra={"sleep_ms": 1500})
        restored = time.monotonic()
        recovered = fault.recover(burst, restored, relay=False)
        timeouts = impatient.log_count("timeout calling Odoo")
    finally:
        fault.workers.retire(impatient)
    fault.finish(burst, recovered, [f"{timeouts} worker log lines of a call that timed out"])


def test_debounced_events_survive_a_worker_killed_mid_window(fault, services_env, wait_for):
    """Issue 7, defect 4: the 500 events of one debounce window (1 s), their worker killed
    with SIGKILL while the window is open (the leader deferred, the followers held in Redis,
    acked in RabbitMQ); a new worker closes the window: every event runs exactly once."""
    import redis

    notify = "notification_events"
    client = redis.Redis.from_url(services_env["CELERY_RESULT_BACKEND"])
    for key in client.scan_iter("qsb:debounce:quicksol.test.observer.fault_debounced:*"):
        client.delete(key)  # a window of an earlier run of the case is not this one's
    client.close()
    burst = fault.burst("debounce_kill", event_name=FAULT_DEBOUNCED_EVENT)
    worker = fault.workers.start(notify)
    try:
        fault.emit(burst, 250, calls=1)
        wait_for(
            lambda: worker.log_count("debounce leader") >= 1, timeout=30, message="no debounce window opened"
        )
        fault.emit(burst, 250, calls=1)
        children = worker.children()
        worker.signal(signal.SIGKILL)
        for pid in children:  # its pool child too: nothing of it may finish the window
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        devstack.wait_for(lambda: worker.proc.poll() is not None, 30, "the worker survived SIGKILL")
        restored = time.monotonic()
        fault.workers.ensure(notify, count=1)
        recovered = fault.recover(burst, restored, relay=True)
    finally:
        fault.workers.stop(notify, timeout=10)
    fault.finish(burst, recovered, ["the worker holding the open window was killed"])
