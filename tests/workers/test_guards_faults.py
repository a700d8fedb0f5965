"""The workers' guards (debounce, dedup) under faults, driven step by step against real Redis
and a real Odoo: a crash between two steps is a step that does not happen."""

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.fault]

DEBOUNCED = "quicksol.test.observer.debounced"  # _debounce_seconds = 2
DEDUP = "quicksol.test.observer.dedup"  # _dedup_window = 60
QUEUE = "notification_events"


@pytest.fixture
def guards(worker_env, services_env):
    import redis

    from quicksol_workers.config import WorkerConfig
    from quicksol_workers.connector import OdooConnector
    from quicksol_workers.guards import Guards

    config = WorkerConfig.from_env(worker_env)
    client = redis.Redis.from_url(services_env["CELERY_RESULT_BACKEND"])
    for pattern in ("qsb:debounce:*", "qsb:dedup:*"):
        for key in client.scan_iter(pattern):
            client.delete(key)
    connector = OdooConnector(config.odoo_url, config.odoo_db, config.odoo_user, config.odoo_secret)
    yield Guards(config, client, connector)
    client.close()


@pytest.fixture
def message(signed, worker_env):
    """``message(uuid, res_ids, **headers)``: a verified delivery as a worker holds it."""
    from quicksol_workers.messages import Delivery, verify

    def build(uuid, res_ids, observer=DEBOUNCED, event_name="testrec.debounced", **headers):
        envelope = signed(uuid, observer, QUEUE, res_ids, event_name)
        delivery = Delivery(
            task_id=f"{uuid}:{observer}",
            args=(envelope,),
            kwargs={},
            retries=0,
            queue=QUEUE,
            headers=headers,
        )
        verify(delivery, worker_env["EVENT_BUS_SIGNING_KEY"].encode())
        return delivery

    return build


def _emit(odoo_admin, res_id, count, event_name="testrec.debounced", same=False):
    """Emit ``count`` events on the record (identical ones with ``same``); return their uuids."""
    return [
        odoo_admin.call(
            "quicksol.test.record", "emit_for_test", event_name, {"res_ids": [res_id], "n": 0 if same else n}
        )
        for n in range(count)
    ]


def test_a_leader_redelivered_before_its_fire_message_leads_again_and_loses_nobody(
    odoo_admin, guards, message
):
    from quicksol_workers.guards import COALESCED, DEFER, FIRE_HEADER, debounce_key

    res_id = odoo_admin.call("quicksol.test.record", "create", [{"name": "leader crash"}])[0]
    leader, follower = _emit(odoo_admin, res_id, 2)
    decisions = {}
    first = message(leader, [res_id])
    guards.filter([first], decisions)
    assert decisions[id(first)].action == DEFER
    # The worker dies before the fire message is published: RabbitMQ redelivers the leader.
    again = message(leader, [res_id])
    guards.filter([again], decisions)
    assert decisions[id(again)].action == DEFER, "a redelivered leader must publish the fire message"
    held = message(follower, [res_id])
    guards.filter([held], decisions)
    assert decisions[id(held)].action == COALESCED
    fire = message(
        leader, [res_id], **{FIRE_HEADER: debounce_key(DEBOUNCED, "quicksol.test.record", [res_id])}
    )
    run, extra = guards.filter([fire], decisions)
    assert run == [fire]
    assert [d.event_id for d in extra] == [follower]  # the leader joined twice, runs once


def test_a_guard_failing_for_one_message_keeps_the_decisions_taken_for_the_others(
    odoo_admin, guards, message
):
    from quicksol_workers.guards import COALESCED, DEFER
    from quicksol_workers.outcome import RETRY

    res_id = odoo_admin.call("quicksol.test.record", "create", [{"name": "guard raises"}])[0]
    leader, broken, follower = _emit(odoo_admin, res_id, 3)
    batch = [message(leader, [res_id]), message(broken, [res_id, "not an id"]), message(follower, [res_id])]
    decisions = {}
    run, _extra = guards.filter(batch, decisions)  # the broken one's key cannot be computed
    assert run == []
    actions = [decisions[id(d)].action for d in batch]
    assert actions == [DEFER, RETRY, COALESCED], [decisions[id(d)] for d in batch]
    assert "guard failed unexpectedly" in decisions[id(batch[1])].reason


def test_dedup_coalesces_only_into_a_first_event_that_has_not_run(odoo_admin, guards, message, worker_env):
    from quicksol_workers.guards import COALESCED

    res_id = odoo_admin.call("quicksol.test.record", "create", [{"name": "dedup flips"}])[0]
    first, duplicate, later = _emit(odoo_admin, res_id, 3, "testrec.dedup", same=True)

    def delivery(uuid):
        return message(uuid, [res_id], observer=DEDUP, event_name="testrec.dedup")

    decisions = {}
    run, _extra = guards.filter([delivery(first), held := delivery(duplicate)], decisions)
    assert [d.event_id for d in run] == [first], list(decisions.values())
    assert decisions[id(held)].action == COALESCED  # the first one has not run yet
    guards.connector.run_async(first, DEDUP)  # now it has (and something else may have changed)
    run, _extra = guards.filter([again := delivery(later)], decisions)
    assert run == [again], "an identical event after the first one ran must run too"
    assert guards.connector.run_async(later, DEDUP)["status"] == "done"
    assert odoo_admin.state(duplicate, DEDUP) == "done"
