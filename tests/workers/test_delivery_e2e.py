"""End to end: Odoo emits, a real worker process runs the observer through handle_async."""

import pytest

from quicksol_bus.topology import QUEUES

pytestmark = [pytest.mark.integration]

ASYNC = "quicksol.test.observer.async"  # audit_events
COMMISSION = "quicksol.test.observer.commission"  # commission_events
FLAKY = "quicksol.test.observer.flaky"  # notification_events


def emit(odoo_admin, event, data):
    uuid = odoo_admin.call("quicksol.test.record", "emit_for_test", event, data)
    assert uuid, f"{event} was not routed async (is Odoo in sync mode?)"
    return uuid


def record(odoo_admin, name="r"):
    return odoo_admin.call("quicksol.test.record", "create", [{"name": name}])[0]


def test_event_emitted_in_odoo_is_run_by_the_worker_and_marked_done(
    odoo_admin, clean_queues, start_worker, wait_for
):
    res_id = record(odoo_admin)
    uuid = emit(odoo_admin, "testrec.custom", {"res_ids": [res_id]})
    start_worker("audit_events")
    wait_for(
        lambda: odoo_admin.state(uuid, ASYNC) == "done",
        timeout=60,
        message="the async observer's delivery never became done",
    )
    assert odoo_admin.runs(ASYNC, res_id) >= 1
    # the commission observer's message waits for a commission worker
    assert odoo_admin.state(uuid, COMMISSION) == "queued"


def test_permanent_failure_fails_at_once(odoo_admin, clean_queues, amqp, start_worker, wait_for):
    res_id = record(odoo_admin)
    uuid = emit(odoo_admin, "testrec.flaky", {"res_ids": [res_id], "fail": "permanent"})
    start_worker("notification_events")
    wait_for(
        lambda: odoo_admin.state(uuid, FLAKY) == "failed",
        timeout=60,
        message="permanent failure not recorded",
    )
    assert odoo_admin.runs(FLAKY, res_id) == 1 or odoo_admin.deliveries(uuid, FLAKY)[0]["attempts"] == 1
    assert amqp.depth(QUEUES["notification_events"].dead_queue) == 0


def test_three_transient_failures_end_dead_lettered_and_dead_in_odoo(
    odoo_admin, clean_queues, amqp, start_worker, wait_for
):
    res_id = record(odoo_admin)
    uuid = emit(odoo_admin, "testrec.flaky", {"res_ids": [res_id], "fail": "transient"})
    start_worker("notification_events")
    dead_queue = QUEUES["notification_events"].dead_queue
    wait_for(lambda: amqp.depth(dead_queue) == 1, timeout=90, message="no dead letter after the last retry")
    wait_for(
        lambda: odoo_admin.state(uuid, FLAKY) == "dead", timeout=30, message="the event is not dead in Odoo"
    )
    row = odoo_admin.deliveries(uuid, FLAKY)[0]
    assert row["attempts"] == 4, row
    assert "transient failure asked by the test" in (row["last_error"] or "")


def test_forged_and_unsigned_messages_never_reach_odoo(
    odoo_admin, clean_queues, amqp, start_worker, wait_for, services_env
):
    from quicksol_bus.envelope import build_envelope, sign_envelope
    from quicksol_bus.publisher import OutgoingMessage, Publisher

    res_id = record(odoo_admin)
    # a real event whose delivery stays queued: the forged messages name it
    uuid = emit(odoo_admin, "testrec.flaky", {"res_ids": [res_id], "fail": ""})
    wait_for(
        lambda: amqp.depth("notification_events") == 1,
        timeout=30,
        message="Odoo's own message never reached the queue",
    )
    clean_queues.purge("notification_events")
    env = build_envelope(
        event_id=uuid,
        event_name="testrec.flaky",
        observer=FLAKY,
        queue="notification_events",
        db="qsb_e2e",
        model="quicksol.test.record",
        res_ids=[res_id],
        payload={},
        uid=2,
        company_id=1,
        context={},
    )
    forged = sign_envelope(env, b"not the key")
    unsigned = dict(env)
    publisher = Publisher(services_env["CELERY_BROKER_URL"])
    try:
        publisher.publish_batch(
            [
                OutgoingMessage(f"{uuid}:{FLAKY}", forged, "notification_events", 1),
                OutgoingMessage(f"{uuid}:{FLAKY}", unsigned, "notification_events", 1),
            ]
        )
    finally:
        publisher.close()
    start_worker("notification_events")
    dead_queue = QUEUES["notification_events"].dead_queue
    wait_for(
        lambda: amqp.depth(dead_queue) == 2,
        timeout=60,
        message="forged/unsigned messages were not dead-lettered",
    )
    wait_for(
        lambda: amqp.depth("notification_events") == 0,
        timeout=30,
        message="forged/unsigned messages left in the queue",
    )
    reasons = [
        m["properties"]["headers"].get("quicksol_dead_reason")
        for m in clean_queues.get_messages(dead_queue, count=2)
    ]
    assert any("signature mismatch" in r for r in reasons), reasons
    assert any("unsigned" in r for r in reasons), reasons
    assert odoo_admin.runs(FLAKY, res_id) == 0
    assert odoo_admin.state(uuid, FLAKY) == "queued"
    assert odoo_admin.deliveries(uuid, FLAKY)[0]["attempts"] == 0
