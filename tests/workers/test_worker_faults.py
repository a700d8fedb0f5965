"""Worker-side faults against real services (issue 7's fault matrix, worker items): poison
messages of every kind mixed with genuine ones, an envelope of another database, the worker
user losing its group, RabbitMQ memory and disk alarms. Real worker processes, RabbitMQ, Redis, Odoo.

The audit tests share one module worker (QSB_WORKER_* below); every wait is a condition with
a deadline, no test asserts a duration.
"""

import json
import uuid as uuidlib

import pytest

from quicksol_bus.envelope import build_envelope, sign_envelope
from quicksol_bus.topology import QUEUES, TASK_NAME

pytestmark = [pytest.mark.integration]

AUDIT = "audit_events"
AUDIT_DEAD = QUEUES[AUDIT].dead_queue
NOTIFY = "notification_events"
NOTIFY_DEAD = QUEUES[NOTIFY].dead_queue
ASYNC = "quicksol.test.observer.async"  # audit_events
FLAKY = "quicksol.test.observer.flaky"  # notification_events
EVENTUALLY = "quicksol.test.observer.eventually"  # notification_events
WORKER_GROUP = ("quicksol_event_bus", "group_event_bus_worker")
FAST_RETRIES = {"QSB_WORKER_RETRY_BASE": "0.5", "QSB_WORKER_RETRY_CAP": "1", "QSB_WORKER_BROKER_TIMEOUT": "2"}


def emit(odoo_admin, event, data):
    uuid = odoo_admin.call("quicksol.test.record", "emit_for_test", event, data)
    assert uuid, f"{event} was not routed async (is Odoo in sync mode?)"
    return uuid


def record(odoo_admin, name="r"):
    return odoo_admin.call("quicksol.test.record", "create", [{"name": name}])[0]


def custom_runs(odoo_admin, res_id):
    """Runs of the audit observer for ``testrec.custom`` events of ``res_id`` (creating the
    record runs it once more, for ``testrec.created``)."""
    return odoo_admin.call(
        "quicksol.test.log",
        "search_count",
        [("observer", "=", ASYNC), ("event_name", "=", "testrec.custom"), ("res_ids", "=", str(res_id))],
    )


@pytest.fixture(scope="module")
def audit_worker(module_worker):
    """The module's audit worker (started once, the only consumer of audit_events)."""
    return module_worker(AUDIT, env=FAST_RETRIES)


def publish_raw(url, items):
    """Publish ``[(body bytes, content_type, headers)]`` straight into audit_events."""
    from kombu import Connection, Producer

    with Connection(url, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel())
        for body, content_type, headers in items:
            producer.publish(
                body,
                exchange="",
                routing_key=AUDIT,
                content_type=content_type,
                content_encoding="utf-8",
                headers=headers,
                delivery_mode=2,
                serializer=None,
            )


def task_headers(task_id, task=TASK_NAME):
    return {"lang": "py", "task": task, "id": task_id, "retries": 0, "root_id": task_id}


def poison_messages(signed, tag):
    """One message of each poison kind, tagged (their ids name ``tag`` and their kind)."""
    nan_envelope = json.dumps([[dict(signed(f"{tag}-nan", ASYNC, AUDIT, [1], "testrec.custom"))], {}, {}])
    nan_envelope = nan_envelope.replace('"payload": {}', '"payload": {"v": NaN}')
    assert "NaN" in nan_envelope
    good_body = json.dumps([[{"v": 1}], {}, {"callbacks": None}]).encode()
    return {
        "wrong content type": (b"plain words", "text/plain", task_headers(f"{tag}-ctype")),
        "not json": (b"{not json", "application/json", task_headers(f"{tag}-json")),
        "nan in the envelope": (
            nan_envelope.encode(),
            "application/json",
            task_headers(f"{tag}-nan:{ASYNC}"),
        ),
        "unknown task": (good_body, "application/json", task_headers(f"{tag}-task", "someone.else.task")),
        "not protocol 2": (b'{"args": []}', "application/json", task_headers(f"{tag}-proto")),
        "no task header": (b'{"hello": 1}', "application/json", {"id": f"{tag}-noheader"}),
    }


def dead_letters(rabbitmq_admin, queue, count):
    return [
        m["properties"].get("headers") or {}
        for m in rabbitmq_admin.get_messages(queue, count=count, ack=True)
    ]


def queue_settled(rabbitmq_admin, amqp, queue):
    info = rabbitmq_admin.queue(queue) or {}
    return amqp.depth(queue) == 0 and int(info.get("messages_unacknowledged") or 0) == 0


# ------------------------------------------------------------------------------ item 3


def test_poison_messages_of_every_kind_go_to_the_dead_queue_with_a_reason_and_block_nothing(
    odoo_admin, clean_queues, amqp, signed, services_env, audit_worker, wait_for
):
    url = services_env["CELERY_BROKER_URL"]
    # First alone (each poison is the head Celery's consumer or our task meets), then behind a
    # genuine message (pulled in its batch), then genuine messages behind the poison.
    first, behind = poison_messages(signed, "p1"), poison_messages(signed, "p2")
    publish_raw(url, list(first.values()))
    genuine = [
        emit(odoo_admin, "testrec.custom", {"res_ids": [record(odoo_admin, f"g{i}")]}) for i in range(2)
    ]
    publish_raw(url, list(behind.values()))
    genuine += [
        emit(odoo_admin, "testrec.custom", {"res_ids": [record(odoo_admin, f"g{i}")]}) for i in range(2, 4)
    ]
    poison = len(first) + len(behind)

    wait_for(
        lambda: all(odoo_admin.state(uuid, ASYNC) == "done" for uuid in genuine),
        timeout=90,
        message="genuine events behind poison messages were not delivered",
    )
    wait_for(
        lambda: amqp.depth(AUDIT_DEAD) == poison,
        timeout=60,
        message=f"expected {poison} poison messages in {AUDIT_DEAD}",
    )
    wait_for(
        lambda: queue_settled(clean_queues, amqp, AUDIT),
        timeout=30,
        message=f"{AUDIT} is not empty or holds unacknowledged messages",
    )
    headers = dead_letters(clean_queues, AUDIT_DEAD, poison)
    reasons = {h.get("id") or "": h.get("quicksol_dead_reason") for h in headers}
    assert len(reasons) == poison and all(reasons.values()), reasons
    for tag in ("p1", "p2"):
        assert "Content-type" in reasons[f"{tag}-ctype"] or "ContentDisallowed" in reasons[f"{tag}-ctype"]
        assert "decode" in reasons[f"{tag}-json"].lower()
        assert "envelope cannot be verified" in reasons[f"{tag}-nan:{ASYNC}"]
        assert "someone.else.task" in reasons[f"{tag}-task"]
        assert "protocol" in reasons[f"{tag}-proto"].lower() or "unexpected" in reasons[f"{tag}-proto"]
        assert reasons[f"{tag}-noheader"]
    assert amqp.depth(AUDIT_DEAD) == 0  # read and acked above


# ------------------------------------------------------------------------------ item 12


def test_an_envelope_signed_for_another_database_is_dead_lettered_and_never_run(
    odoo_admin, odoo_server, clean_queues, amqp, services_env, audit_worker, wait_for
):
    from quicksol_bus.publisher import OutgoingMessage, Publisher

    res_id = record(odoo_admin, "other db")
    # the event's real message is run; a copy signed for another database names the same pair
    other_id = str(uuidlib.uuid4())
    envelope = build_envelope(
        event_id=other_id,
        event_name="testrec.custom",
        observer=ASYNC,
        queue=AUDIT,
        db=f"{odoo_server.db}_other",
        model="quicksol.test.record",
        res_ids=[res_id],
        payload={},
        uid=2,
        company_id=1,
        context={},
    )
    publisher = Publisher(services_env["CELERY_BROKER_URL"])
    try:
        publisher.publish_batch(
            [
                OutgoingMessage(
                    f"{other_id}:{ASYNC}",
                    sign_envelope(envelope, odoo_server.env["EVENT_BUS_SIGNING_KEY"]),
                    AUDIT,
                    5,
                )
            ]
        )
    finally:
        publisher.close()
    wait_for(
        lambda: amqp.depth(AUDIT_DEAD) == 1, timeout=60, message="the other database's message is not dead"
    )
    (headers,) = dead_letters(clean_queues, AUDIT_DEAD, 1)
    assert "another database" in headers["quicksol_dead_reason"], headers
    assert f"{odoo_server.db}_other" in headers["quicksol_dead_reason"]
    assert headers["quicksol_dead_marked"] == "n/a"  # Odoo was not told
    assert custom_runs(odoo_admin, res_id) == 0


# ------------------------------------------------------------------------------ item 9


def _worker_group(odoo_admin):
    (row,) = odoo_admin.call(
        "ir.model.data",
        "search_read",
        [("module", "=", WORKER_GROUP[0]), ("name", "=", WORKER_GROUP[1])],
        fields=["res_id"],
    )
    (user,) = odoo_admin.call("res.users", "search", [("login", "=", "event_bus_worker")])
    return row["res_id"], user


def test_the_worker_user_losing_its_group_holds_messages_until_restored_then_runs_them_once(
    odoo_admin, clean_queues, amqp, audit_worker, wait_for
):
    group, user = _worker_group(odoo_admin)
    res_ids = [record(odoo_admin, f"no rights {i}") for i in range(2)]
    alarms_before = audit_worker.log_count("ALARM: Odoo refused the worker itself")
    odoo_admin.call("res.users", "write", [user], {"groups_id": [(3, group)]})
    try:
        uuids = [emit(odoo_admin, "testrec.custom", {"res_ids": [res_id]}) for res_id in res_ids]
        # more holds than the message has retries (3): a message fault would be dead by now
        wait_for(
            lambda: audit_worker.log_count("ALARM: Odoo refused the worker itself") >= alarms_before + 8,
            timeout=90,
            message="the worker did not hold the messages back with an alarm",
        )
        assert all(odoo_admin.state(uuid, ASYNC) == "queued" for uuid in uuids)
        assert amqp.depth(AUDIT_DEAD) == 0
    finally:
        odoo_admin.call("res.users", "write", [user], {"groups_id": [(4, group)]})
    wait_for(
        lambda: all(odoo_admin.state(uuid, ASYNC) == "done" for uuid in uuids),
        timeout=60,
        message="the held events did not run once the group was restored",
    )
    assert [custom_runs(odoo_admin, res_id) for res_id in res_ids] == [1, 1]
    assert [row["attempts"] for uuid in uuids for row in odoo_admin.deliveries(uuid, ASYNC)] == [1, 1]
    assert amqp.depth(AUDIT_DEAD) == 0


# ------------------------------------------------------------------------------ item 2


class BrokerAlarm:
    """A memory alarm (``set_vm_memory_high_watermark absolute 1``) or a disk alarm
    (``set_disk_free_limit`` above the free space) on the test broker; ``clear`` restores the
    value read before."""

    def __init__(self, kind):
        from devstack import rabbitmq

        self.kind = kind
        self._ctl = rabbitmq._ctl
        probe = {
            "memory": "vm_memory_monitor:get_vm_memory_high_watermark().",
            "disk": "rabbit_disk_monitor:get_disk_free_limit().",
        }[kind]
        self.original = self._ctl("eval", probe).stdout.strip()
        assert self.original, f"could not read the broker's {kind} limit"

    def raise_(self):
        if self.kind == "memory":
            self._ctl("set_vm_memory_high_watermark", "absolute", "1")
        else:
            self._ctl("set_disk_free_limit", "1000000GB")

    def raised(self, rabbitmq_admin):
        flag = "mem_alarm" if self.kind == "memory" else "disk_free_alarm"
        return all(node.get(flag) for node in rabbitmq_admin._call("GET", "nodes"))

    def clear(self):
        value = self.original
        if self.kind == "disk":
            self._ctl("set_disk_free_limit", value)
        elif value.startswith("{absolute"):
            self._ctl("set_vm_memory_high_watermark", "absolute", value.split(",")[1].strip(" }"))
        else:
            self._ctl("set_vm_memory_high_watermark", value)


@pytest.mark.fault
@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_a_broker_alarm_never_stalls_the_worker_and_the_backlog_finishes_after_it(
    kind, odoo_admin, clean_queues, amqp, rabbitmq_admin, start_worker, wait_for
):
    retried = record(odoo_admin, "retried under the alarm")
    # At the head of the backlog: an event whose first try fails (its retry must be published)
    uuid_retried = emit(odoo_admin, "testrec.eventually", {"res_ids": [retried], "fail_times": 1})
    res_ids = [record(odoo_admin, f"alarm {i}") for i in range(8)]
    uuids = [emit(odoo_admin, "testrec.flaky", {"res_ids": [res_id], "fail": ""}) for res_id in res_ids]
    wait_for(lambda: amqp.depth(NOTIFY) == 9, timeout=30, message="the backlog never reached the queue")
    alarm = BrokerAlarm(kind)
    alarm.raise_()
    try:
        wait_for(
            lambda: alarm.raised(rabbitmq_admin),
            timeout=30,
            message=f"RabbitMQ did not raise the {kind} alarm",
        )
        worker = start_worker(NOTIFY, env={**FAST_RETRIES, "QSB_WORKER_BATCH_SIZE": "3"})
        # under the alarm: the retry cannot be published, every other message is drained
        wait_for(
            lambda: worker.log_count("could not publish the retry") >= 1,
            timeout=60,
            message="the worker never tried to publish the retry under the alarm",
        )
        wait_for(
            lambda: worker.log_count("event delivered") >= len(uuids),
            timeout=60,
            message=f"the worker stopped draining under the {kind} alarm",
        )
        assert all(odoo_admin.state(uuid, FLAKY) == "done" for uuid in uuids)
    finally:
        alarm.clear()
    wait_for(lambda: not alarm.raised(rabbitmq_admin), timeout=60, message=f"the {kind} alarm did not clear")
    wait_for(
        lambda: odoo_admin.state(uuid_retried, EVENTUALLY) == "done",
        timeout=90,
        message="the retried event did not finish after the alarm cleared",
    )
    wait_for(
        lambda: queue_settled(rabbitmq_admin, amqp, NOTIFY),
        timeout=30,
        message="backlog left after the alarm",
    )
    assert [odoo_admin.runs(FLAKY, res_id) for res_id in res_ids] == [1] * len(res_ids)
    assert odoo_admin.runs(EVENTUALLY, retried) == 1
    assert amqp.depth(NOTIFY_DEAD) == 0
