"""Hostile messages on the broker: forged, unsigned, tampered, replayed, oversized and
wrong-database messages injected into each work queue and each dead-letter queue.

A real worker consumes the three queues; the dead-letter reconciliation runs as beat would
run it. Each case asserts the refusal, its reason, and that nothing was written: no event,
no delivery change, no audit row, no observer effect, no Redis done key.
"""

import json

import pytest

from quicksol_bus.envelope import build_envelope, sign_envelope
from quicksol_bus.topology import QUEUES, TASK_NAME

from .conftest import WorkerProcess, counts, decode_headers, root_conftest, worker_environment

pytestmark = pytest.mark.integration

ASYNC = "quicksol.test.observer.async"
COMMISSION = "quicksol.test.observer.commission"
FLAKY = "quicksol.test.observer.flaky"
TARGETS = {"audit_events": ASYNC, "commission_events": COMMISSION, "notification_events": FLAKY}
ROLES = ("target", "replay", "wrongdb", "deadcopy")


# ------------------------------------------------------------------------------ the stage


class Broker:
    """Raw publishing, as an attacker with write access to the broker would do it."""

    def __init__(self, url):
        from celery import Celery
        from kombu import Connection, Producer

        self.app = Celery("qsb-attacker", set_as_current=False)
        self.connection = Connection(url)
        self.channel = self.connection.channel()
        self.producer = Producer(self.channel)

    def inject(self, queue, envelope, task_id=None, headers=None):
        """Publish a task message with ``envelope`` straight into ``queue`` (default exchange)."""
        task_id = task_id or f"{envelope.get('event_id')}:{envelope.get('observer')}"
        task = self.app.amqp.as_task_v2(task_id, TASK_NAME, args=[envelope], kwargs={})
        self.producer.publish(
            task.body,
            exchange="",
            routing_key=queue,
            headers={**task.headers, **(headers or {})},
            serializer="json",
            delivery_mode=2,
            **task.properties,
        )
        return task_id

    def depth(self, queue):
        return self.channel.queue_declare(queue, passive=True)[1]

    def purge(self, queue):
        self.channel.queue_purge(queue)

    def close(self):
        self.connection.release()


@pytest.fixture(scope="module")
def broker(services_env):
    link = Broker(services_env["CELERY_BROKER_URL"])
    yield link
    link.close()


@pytest.fixture(scope="module")
def stage(admin, security_server, services_env, broker):
    """Queued deliveries of every queue whose live messages were removed, then one worker on
    the three queues: whatever the worker does from now on comes from what a test injects."""
    for spec in QUEUES.values():
        broker.purge(spec.name)
        broker.purge(spec.dead_queue)
    record = admin("quicksol.test.record", "create", [{"name": "attack target"}])[0]
    pairs = {}
    for role in ROLES:
        custom = admin("quicksol.test.record", "emit_for_test", "testrec.custom", {"res_ids": [record]})
        flaky = admin(
            "quicksol.test.record", "emit_for_test", "testrec.flaky", {"res_ids": [record], "fail": ""}
        )
        pairs[role] = {"audit_events": custom, "commission_events": custom, "notification_events": flaky}
    wait_for = root_conftest.wait_for
    wait_for(
        lambda: all(broker.depth(q) >= len(ROLES) for q in QUEUES),
        timeout=30,
        message="Odoo did not publish the staged events",
    )
    for queue in QUEUES:
        broker.purge(queue)
    key = admin("quicksol.event.bus", "generate_worker_api_key")
    worker = WorkerProcess(",".join(QUEUES), worker_environment(security_server, services_env, key))
    try:
        wait_for(worker.ready, timeout=60, message="the attacked worker did not start")
        yield {"pairs": pairs, "record": record, "worker": worker, "db": security_server.db}
    finally:
        worker.stop()


@pytest.fixture(scope="module")
def redis_client(services_env):
    import redis

    return redis.Redis.from_url(services_env["CELERY_RESULT_BACKEND"])


def genuine(stage, role, queue, key, **changes):
    """The envelope Odoo would sign for the staged pair (``changes`` before signing)."""
    fields = {
        "event_id": stage["pairs"][role][queue],
        "event_name": "testrec.flaky" if queue == "notification_events" else "testrec.custom",
        "observer": TARGETS[queue],
        "queue": queue,
        "db": stage["db"],
        "model": None,
        "res_ids": [stage["record"]],
        "payload": {"res_ids": [stage["record"]]},
        "uid": 2,
        "company_id": 1,
        "context": {},
        "attempt": 1,
    }
    fields.update(changes)
    return sign_envelope(build_envelope(**fields), key)


def effects(admin, stage, redis_client, roles=ROLES):
    """Everything an accepted message could change."""
    from quicksol_workers.idempotency import done_key

    uuids = sorted({uuid for role in roles for uuid in stage["pairs"][role].values()})
    deliveries = admin(
        "quicksol.event.delivery",
        "search_read",
        [("event_id.uuid", "in", uuids)],
        ["observer", "state", "attempts", "last_error", "publish_attempt"],
        order="id",
    )
    # The genuine envelopes of these attacks are of publish attempt 1.
    keys = [done_key(stage["pairs"][role][q], TARGETS[q], 1) for role in roles for q in QUEUES]
    return {
        "deliveries": deliveries,
        "rows": counts(admin, **{"quicksol.event": [], "quicksol.audit.log": [], "quicksol.test.log": []}),
        "redis": [bool(redis_client.exists(key)) for key in keys],
    }


class DeadLetters:
    """Messages of the dead-letter queues, fetched once and kept by task id."""

    def __init__(self, rabbitmq_admin):
        self.api = rabbitmq_admin
        self.seen = {}

    def fetch(self, task_id, queue):
        if task_id not in self.seen:
            for message in self.api.get_messages(QUEUES[queue].dead_queue, count=50, ack=True):
                headers = decode_headers(message)
                self.seen[headers.get("id")] = (headers, json.loads(message["payload"]))
        return self.seen.get(task_id)


@pytest.fixture(scope="module")
def dead_letters(rabbitmq_admin):
    return DeadLetters(rabbitmq_admin)


def wait_dead(wait_for, dead_letters, task_id, queue, stage):
    return wait_for(
        lambda: dead_letters.fetch(task_id, queue),
        timeout=30,
        message=lambda: f"{task_id} never reached {queue}.dead:\n{stage['worker'].text()[-2000:]}",
    )


# ------------------------------------------------------------------------------ work queues


def _variants(stage, queue, key):
    good = genuine(stage, "target", queue, key)
    unsigned = {name: value for name, value in good.items() if name != "signature"}
    tampered_ids = dict(good, res_ids=[1, 2, 3])
    tampered_user = dict(good, uid=1)  # run it as the superuser, says the attacker
    forged = genuine(stage, "target", queue, "not-the-signing-key")
    oversized = genuine(
        stage, "target", queue, "not-the-signing-key", payload={"blob": "x" * (2 * 1024 * 1024)}
    )
    malformed = {"event_id": good["event_id"], "observer": good["observer"]}
    return [
        ("unsigned", unsigned, "unsigned message"),
        ("tampered res_ids", tampered_ids, "signature mismatch"),
        ("tampered uid", tampered_user, "signature mismatch"),
        ("forged", forged, "signature mismatch"),
        ("oversized", oversized, "signature mismatch"),
        ("malformed", malformed, "malformed envelope"),
    ]


@pytest.mark.parametrize("queue", list(QUEUES))
def test_forged_unsigned_tampered_oversized_messages_are_refused(
    admin, stage, broker, signing_key, redis_client, dead_letters, wait_for, queue
):
    before = effects(admin, stage, redis_client)
    injected = []
    for label, envelope, reason in _variants(stage, queue, signing_key):
        task_id = broker.inject(
            queue, envelope, task_id=f"{envelope['event_id']}:{envelope['observer']}:{label}"
        )
        injected.append((label, task_id, reason))
    for label, task_id, reason in injected:
        headers, _body = wait_dead(wait_for, dead_letters, task_id, queue, stage)
        assert headers["quicksol_dead_reason"].startswith("rejected: "), (label, headers)
        assert reason in headers["quicksol_dead_reason"], (label, headers["quicksol_dead_reason"])
        assert headers["quicksol_dead_marked"] == "n/a", label  # Odoo was never called
    wait_for(lambda: broker.depth(queue) == 0, timeout=30, message=f"{queue} not drained")
    assert effects(admin, stage, redis_client) == before
    # the id of the message must be the signed one: a genuine envelope under another id
    good = genuine(stage, "target", queue, signing_key)
    task_id = broker.inject(queue, good, task_id=f"{good['event_id']}:some.other.observer")
    headers, _body = wait_dead(wait_for, dead_letters, task_id, queue, stage)
    assert "does not match its signed envelope" in headers["quicksol_dead_reason"]
    assert effects(admin, stage, redis_client) == before


@pytest.mark.parametrize("queue", list(QUEUES))
def test_a_replayed_genuine_message_has_no_second_effect(
    admin, stage, broker, signing_key, redis_client, wait_for, queue
):
    from quicksol_workers.idempotency import done_key

    envelope = genuine(stage, "replay", queue, signing_key)
    uuid, observer = envelope["event_id"], envelope["observer"]

    def state():
        return admin(
            "quicksol.event.delivery",
            "search_read",
            [("event_id.uuid", "=", uuid), ("observer", "=", observer)],
            ["state", "attempts"],
        )[0]

    broker.inject(queue, envelope)
    wait_for(lambda: state()["state"] == "done", timeout=30, message=lambda: stage["worker"].text()[-2000:])
    effect = state()
    logs_after_first = counts(admin, **{"quicksol.test.log": []})
    broker.inject(queue, envelope)  # replay: Redis remembers it
    redis_client.delete(done_key(uuid, observer, 1))
    worker = stage["worker"]

    def replays_settled(n):
        lines = [ln for ln in worker.text().splitlines() if uuid in ln and observer in ln and "already" in ln]
        return len(lines) >= n

    wait_for(lambda: replays_settled(1), timeout=30, message=lambda: worker.text()[-2000:])
    broker.inject(queue, envelope)  # replay with the Redis key gone: Odoo says already done
    wait_for(lambda: replays_settled(2), timeout=30, message=lambda: worker.text()[-2000:])
    assert state() == effect
    assert counts(admin, **{"quicksol.test.log": []}) == logs_after_first


@pytest.mark.parametrize("queue", list(QUEUES))
def test_a_message_signed_for_another_database_is_refused(
    admin, stage, broker, signing_key, redis_client, dead_letters, wait_for, queue
):
    """Two databases sharing a signing key (a staging copy of production, say): a message of
    one must not run in the other."""
    before = effects(admin, stage, redis_client, roles=("wrongdb",))
    envelope = genuine(stage, "wrongdb", queue, signing_key, db="qsb_some_other_database")
    task_id = broker.inject(queue, envelope)

    def settled():
        return (
            dead_letters.fetch(task_id, queue)
            or effects(admin, stage, redis_client, roles=("wrongdb",)) != before
        )

    wait_for(settled, timeout=30, message=lambda: stage["worker"].text()[-2000:])
    assert effects(admin, stage, redis_client, roles=("wrongdb",)) == before, "it ran in this database"
    headers, _body = dead_letters.fetch(task_id, queue)
    assert "database" in headers["quicksol_dead_reason"] or "db" in headers["quicksol_dead_reason"]
    assert effects(admin, stage, redis_client, roles=("wrongdb",)) == before


# ------------------------------------------------------------------------------ dead-letter queues


@pytest.fixture(scope="module")
def reconcile(security_server, services_env, admin):
    """Run the dead-letter reconciliation exactly as beat's task does, in this process."""
    from quicksol_workers.celery_app import build_app
    from quicksol_workers.config import WorkerConfig
    from quicksol_workers.maintenance import reconcile_dead_letters

    key = admin("quicksol.event.bus", "generate_worker_api_key")
    env = worker_environment(security_server, services_env, key)
    app = build_app(WorkerConfig.from_env(env))
    return lambda: reconcile_dead_letters(app)


def test_dead_letter_queues_believe_nothing_unsigned_or_unverifiable(
    admin, stage, broker, signing_key, redis_client, reconcile, rabbitmq_admin
):
    before = effects(admin, stage, redis_client)
    injected = {}
    for queue in QUEUES:
        dead = QUEUES[queue].dead_queue
        live_copy = genuine(stage, "deadcopy", queue, signing_key)
        letters = [
            ("copied live message", live_copy, {}),
            (
                "copied with a forged x-death",
                live_copy,
                {"x-death": [{"reason": "expired", "queue": queue, "count": 1}]},
            ),
            (
                "copied, forged unmarked reason",
                live_copy,
                {"quicksol_dead_reason": "gave up", "quicksol_dead_marked": False},
            ),
            ("forged", genuine(stage, "deadcopy", queue, "wrong-key"), {}),
            ("unsigned", {k: v for k, v in live_copy.items() if k != "signature"}, {}),
            ("tampered", dict(live_copy, attempt=99), {}),
        ]
        for label, envelope, headers in letters:
            task_id = f"{envelope['event_id']}:{envelope['observer']}"
            broker.inject(dead, envelope, task_id=task_id, headers=headers)
            injected.setdefault(queue, []).append(label)
    marked = reconcile()
    assert marked == dict.fromkeys(QUEUES, 0), marked
    assert effects(admin, stage, redis_client) == before  # no delivery became dead
    for queue in QUEUES:
        letters = rabbitmq_admin.get_messages(QUEUES[queue].dead_queue, count=50, ack=True)
        assert len(letters) == len(injected[queue])  # kept for a person to read
        marks = sorted(str(decode_headers(m).get("quicksol_dead_marked")) for m in letters)
        # the genuine copies stay unmarked (offered again later), the rest is n/a
        assert marks == sorted(["False"] * 3 + ["n/a"] * 3), marks
