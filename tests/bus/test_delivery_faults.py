"""Faults met by the outbox in-process, with real transactions: a RabbitMQ resource alarm
during saves, and two workers finishing two deliveries of one event at the same moment."""

import threading

import pytest

from .conftest import ASYNC, broker_alarm, environment

pytestmark = [pytest.mark.integration, pytest.mark.fault]

COMMISSION = "quicksol.test.observer.commission"


def _save_in_thread(registry, count, uuids):
    """Emit ``count`` events and commit (which publishes them) in a thread of its own.

    Returns the thread once its events are emitted: joining it measures the commit alone.
    """
    emitted = threading.Event()

    def save():
        with environment(registry) as env:
            bus = env["quicksol.event.bus"]
            uuids.extend(bus.emit("testrec.created", {"res_ids": [n]}) for n in range(count))
            emitted.set()
            env.cr.commit()  # the post-commit publish runs inside this call

    thread = threading.Thread(target=save, daemon=True)
    thread.start()
    assert emitted.wait(60), "emitting the events did not finish"
    return thread


@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_saves_return_in_time_under_a_broker_alarm_and_every_event_is_published_after(
    registry, rabbitmq_admin, drain_queue, kind
):
    with environment(registry) as env:
        bus = env["quicksol.event.bus"]
        settings = bus._settings()
        breaker = bus._breaker(settings)
    breaker.reset()
    drain_queue("audit_events")
    allowed = settings["connect_timeout"] + 1.0  # the bound for one save
    uuids = []
    with broker_alarm(rabbitmq_admin, kind):
        # The first save meets the blocked broker; the next ones meet the open breaker.
        for _save in range(3):
            thread = _save_in_thread(registry, 5, uuids)
            thread.join(timeout=allowed)
            assert not thread.is_alive(), f"a save hung over {allowed}s under a {kind} alarm"
        assert breaker.state == "open", "a blocked broker must open the circuit breaker"
        with environment(registry) as env:
            pending = env["quicksol.event.delivery"].search_count(
                [("event_id.uuid", "in", uuids), ("state", "=", "pending")]
            )
        assert pending == len(uuids) == 15
    # The alarm is cleared: the relay publishes every event (once each is enough: a copy that
    # the broker read late from a dropped connection is harmless, Odoo runs a pair once).
    with environment(registry) as env:
        env["quicksol.event.delivery"].sudo()._cron_relay()
    with environment(registry) as env:
        deliveries = env["quicksol.event.delivery"].search([("event_id.uuid", "in", uuids)])
        assert set(deliveries.mapped("state")) == {"queued"}
        assert set(deliveries.event_id.mapped("state")) == {"queued"}
    published = drain_queue("audit_events")
    assert set(published) == {f"{uuid}:{ASYNC}" for uuid in uuids}
    assert breaker.state == "closed"


def test_two_workers_finishing_two_deliveries_of_one_event_leave_it_done(registry):
    from functools import partial

    from odoo.service.model import retrying

    with environment(registry) as env:
        event_uuid = env["quicksol.event.bus"].emit("testrec.custom", {"res_ids": [1]})
        env.cr.flush()  # writes the outbox rows (precommit) and plans their publish...
        env.cr.postcommit.clear()  # ...which the test cancels: it plays the workers itself
        env.cr.commit()
        worker_uid = env.ref("quicksol_event_bus.user_event_bus_worker").id
    results = {}
    with environment(registry, worker_uid) as first:
        results[ASYNC] = first["quicksol.event"].run_async(event_uuid, ASYNC)  # not committed

        def second_worker():
            # As the server runs an RPC call: Odoo's retrying() around it.
            with environment(registry, worker_uid) as second:
                call = partial(second["quicksol.event"].run_async, event_uuid, COMMISSION)
                results[COMMISSION] = retrying(call, second)

        thread = threading.Thread(target=second_worker, daemon=True)
        thread.start()
        # The second worker waits for the first one's write of the event row: if it went on
        # now, it would read the first delivery as still pending and leave the event pending.
        thread.join(timeout=1.0)
        assert thread.is_alive(), "the second worker did not wait for the event's row"
        first.cr.commit()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert {name: r["status"] for name, r in results.items()} == {ASYNC: "done", COMMISSION: "done"}
    with environment(registry) as env:
        event = env["quicksol.event"].search([("uuid", "=", event_uuid)])
        assert event.state == "done"
        assert set(event.delivery_ids.mapped("state")) == {"done"}
        assert env["quicksol.test.log"].search_count([("event_uuid", "=", event_uuid)]) == 2
