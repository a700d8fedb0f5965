"""The Deliverer under the faults of the worker side (docs/adr/0005-workers-delivery.md):
poison messages in a pulled batch, an error nobody classified, the envelope of another
database, a credential refused by Odoo, a retry RabbitMQ does not confirm.

Plain Python: doubles stand for Odoo's connector and the broker link (their real
counterparts are exercised end to end in tests/workers/test_worker_faults.py).
"""

import json
import xmlrpc.client

import pytest
from kombu.exceptions import ContentDisallowed, DecodeError

from quicksol_bus.envelope import build_envelope, sign_envelope
from quicksol_bus.topology import TASK_NAME
from quicksol_workers.broker import PublishFailed
from quicksol_workers.config import WorkerConfig
from quicksol_workers.delivery import SETTLE, Deliverer, HeadRequeued
from quicksol_workers.messages import HOLDS_HEADER, Delivery
from quicksol_workers.outcome import (
    ACK,
    DEAD,
    HOLD,
    REASON_OTHER_DATABASE,
    REASON_UNDECODABLE,
    REASON_UNEXPECTED,
    RETRY,
)

KEY = "secret"
QUEUE = "audit_events"
DB = "prod"


def signed(event_id, observer="x.obs", db=DB, **extra):
    env = build_envelope(
        event_id=event_id,
        event_name="testrec.custom",
        observer=observer,
        queue=QUEUE,
        db=db,
        model=None,
        res_ids=[1],
        payload={},
        uid=2,
        company_id=1,
        context={},
        **extra,
    )
    return sign_envelope(env, KEY)


def config(**env):
    base = {"EVENT_BUS_SIGNING_KEY": KEY, "ODOO_DB": DB, "QSB_WORKER_BATCH_SIZE": "10"}
    return WorkerConfig.from_env({**base, **env})


class Message:
    """What the Deliverer reads from a pulled kombu message, and how it is settled."""

    def __init__(self, body, headers=None, decode_error=None, content_type="application/json"):
        self.body = body
        self.headers = headers
        self.decode_error = decode_error
        self.content_type = content_type
        self.content_encoding = "utf-8"
        self.properties = {}
        self.delivery_info = {}
        self.settled = []

    @classmethod
    def task(cls, envelope, **headers):
        task_id = f"{envelope['event_id']}:{envelope['observer']}"
        return cls([[envelope], {}, {}], {"task": TASK_NAME, "id": task_id, **headers})

    def decode(self):
        if self.decode_error:
            raise self.decode_error
        return self.body

    def ack(self):
        self.settled.append("ack")

    def reject(self, requeue):
        self.settled.append("requeue" if requeue else "reject")


class Broker:
    def __init__(self, pulled=(), refuse_publish_for=()):
        self.pulled = list(pulled)
        self.refuse = set(refuse_publish_for)
        self.republished, self.dead, self.raw_dead = [], [], []

    def pull(self, queue, limit):
        batch, self.pulled = self.pulled[:limit], self.pulled[limit:]
        return batch

    def republish(self, delivery, countdown, count_retry=True, extra_headers=None):
        if delivery.event_id in self.refuse:
            raise PublishFailed("not confirmed")
        self.republished.append((delivery.event_id, count_retry, dict(extra_headers or {})))

    def dead_letter(self, delivery, reason, marked):
        if delivery.event_id in self.refuse:
            raise PublishFailed("not confirmed")
        self.dead.append((delivery.event_id, reason, marked))

    def dead_letter_raw(self, message, queue, reason):
        self.raw_dead.append((message, queue, reason))


class Odoo:
    """``run_async[_batch]`` answering done, or raising what ``fail`` maps an event id to."""

    def __init__(self, fail=None, batch_error=None):
        self.fail = fail or {}
        self.batch_error = batch_error
        self.calls, self.marked_dead = [], []

    def _one(self, event_id):
        if event_id in self.fail:
            raise self.fail[event_id]
        return {"status": "done"}

    def run_async(self, event_id, observer):
        self.calls.append([event_id])
        return self._one(event_id)

    def run_async_batch(self, items):
        self.calls.append([event_id for event_id, _ in items])
        if self.batch_error:
            raise self.batch_error
        return [self._one(event_id) for event_id, _ in items]

    def mark_dead(self, *args):
        self.marked_dead.append(args)


def head_of(envelope, retries=0, headers=None):
    return Delivery(
        task_id=f"{envelope['event_id']}:{envelope['observer']}",
        args=(envelope,),
        kwargs={},
        retries=retries,
        queue=QUEUE,
        headers=dict(headers or {}),
    )


def actions(settled):
    return {delivery.event_id or "?": decision.action for delivery, decision in settled}


# ------------------------------------------------------------------------------ item 3


# A signed envelope whose payload got a NaN on the way (JSON decoders accept it; the canonical
# form that is signed does not).
NAN_ENVELOPE = dict(signed("nan"), payload=json.loads('{"v": NaN}'))
POISON = {
    "wrong content type": Message(b"x", {"task": TASK_NAME, "id": "p1"}, ContentDisallowed("text/plain")),
    "not json": Message(b"{nope", {"task": TASK_NAME, "id": "p2"}, DecodeError("Expecting value")),
    "unknown task": Message([[], {}, {}], {"task": "someone.else", "id": "p3"}),
    "not protocol 2": Message({"args": []}, {"task": TASK_NAME, "id": "p4"}),
    "no headers": Message([[], {}, {}], None),
    "bad retries": Message([[{}], {}, {}], {"task": TASK_NAME, "id": "p5", "retries": "many"}),
}


def test_every_poison_kind_in_a_pulled_batch_is_dead_lettered_with_its_reason_and_acked():
    genuine = [Message.task(signed(f"g{i}")) for i in range(3)]
    pulled = [genuine[0], *POISON.values(), genuine[1], genuine[2]]
    broker, odoo = Broker(pulled), Odoo()
    deliverer = Deliverer(config(), odoo, broker)

    settled = deliverer.process(head_of(signed("head")))

    assert actions(settled) == {"head": ACK, "g0": ACK, "g1": ACK, "g2": ACK}
    assert odoo.calls == [["head", "g0", "g1", "g2"]]
    assert [message for message, _q, _r in broker.raw_dead] == list(POISON.values())
    assert all(
        queue == QUEUE and reason.startswith(REASON_UNDECODABLE) for _m, queue, reason in broker.raw_dead
    )
    assert "ContentDisallowed" in broker.raw_dead[0][2] and "DecodeError" in broker.raw_dead[1][2]
    assert all(message.settled == ["ack"] for message in pulled), [m.settled for m in pulled]


def test_nan_and_wrongly_typed_envelopes_are_dead_at_once_and_never_reach_odoo():
    nan = Message.task(NAN_ENVELOPE)
    listed = Message([[["not", "a", "dict"]], {}, {}], {"task": TASK_NAME, "id": "l:x.obs"})
    broker, odoo = Broker([nan, listed]), Odoo()

    settled = Deliverer(config(), odoo, broker).process(head_of(signed("head")))

    assert [d.action for _d, d in settled] == [ACK, DEAD, DEAD]
    assert odoo.calls == [["head"]] and odoo.marked_dead == []
    assert nan.settled == ["ack"] and listed.settled == ["ack"]
    assert [reason.startswith(REASON_UNDECODABLE) for _e, reason, _m in broker.dead] == [True, False]


def test_an_unexpected_error_is_isolated_counted_and_dead_after_the_poison_limit():
    genuine = Message.task(signed("g"))
    poison = Message.task(signed("p", attempt=1), retries=0)
    broker = Broker([genuine, poison])
    odoo = Odoo(fail={"p": KeyError("bug for this event")}, batch_error=KeyError("bug in the batch"))

    settled = Deliverer(config(), odoo, broker).process(head_of(signed("head")))

    # the batch call failed as a whole: each event was then called alone
    assert odoo.calls == [["head", "g", "p"], ["head"], ["g"], ["p"]]
    assert actions(settled) == {"head": ACK, "g": ACK, "p": RETRY}
    assert broker.republished == [("p", True, {})]  # a counted retry: it carries retries + 1
    assert genuine.settled == ["ack"] and poison.settled == ["ack"]

    # its last allowed delivery (retries = max - 1) dead-letters it, Odoo told
    last = head_of(signed("p"), retries=2)
    (pair,) = Deliverer(config(QSB_WORKER_POISON_MAX_DELIVERIES="3"), Odoo(fail=odoo.fail), Broker()).process(
        last
    )
    assert pair[1].action == DEAD and pair[1].mark_dead
    assert REASON_UNEXPECTED in pair[1].reason and "after 3 deliveries" in pair[1].reason


def test_a_retry_rabbitmq_does_not_confirm_requeues_that_message_only():
    ok, blocked = Message.task(signed("ok")), Message.task(signed("blocked"))
    broker = Broker([ok, blocked], refuse_publish_for={"blocked", "head"})
    odoo = Odoo(fail={"blocked": ConnectionRefusedError(111, "x"), "head": ConnectionRefusedError(111, "x")})

    with pytest.raises(HeadRequeued):
        Deliverer(config(), odoo, broker).process(head_of(signed("head")))

    assert ok.settled == ["ack"] and blocked.settled == ["requeue"]


def test_every_action_has_a_way_to_settle():
    from quicksol_workers import guards, outcome

    names = {outcome.ACK, outcome.FAILED, outcome.RETRY, outcome.HOLD, outcome.DEAD}
    names |= {guards.COALESCED, guards.DEFER, guards.THROTTLED}
    assert set(SETTLE) == names


# ------------------------------------------------------------------------------ item 12


def test_an_envelope_of_another_database_is_dead_lettered_without_calling_odoo():
    other = Message.task(signed("other", db="staging"))
    broker, odoo = Broker([other]), Odoo()

    settled = Deliverer(config(), odoo, broker).process(head_of(signed("head")))

    assert actions(settled) == {"head": ACK, "other": DEAD}
    (_event, reason, marked) = broker.dead[0]
    assert reason.startswith(REASON_OTHER_DATABASE) and "'staging'" in reason and "'prod'" in reason
    assert marked == "n/a" and odoo.marked_dead == []
    assert odoo.calls == [["head"]]
    assert other.settled == ["ack"]


# ------------------------------------------------------------------------------ item 9


@pytest.mark.parametrize(
    "refusal",
    [
        xmlrpc.client.Fault(4, "You are not allowed to access 'Event' (quicksol.event) records."),
        xmlrpc.client.Fault(3, "Access Denied"),
    ],
)
def test_a_refused_worker_credential_holds_messages_without_using_their_retries(refusal, caplog):
    pulled = Message.task(signed("pulled"), retries=3, **{HOLDS_HEADER: 4})
    broker = Broker([pulled])
    odoo = Odoo(batch_error=refusal)

    with caplog.at_level("ERROR"):
        settled = Deliverer(config(QSB_WORKER_MAX_RETRIES="3"), odoo, broker).process(
            head_of(signed("head"), retries=3)
        )

    # both had used every retry: a message fault would dead-letter them now
    assert actions(settled) == {"head": HOLD, "pulled": HOLD}
    assert broker.dead == [] and odoo.marked_dead == []
    assert broker.republished == [
        ("head", False, {HOLDS_HEADER: 1}),
        ("pulled", False, {HOLDS_HEADER: 5}),
    ]
    assert pulled.settled == ["ack"]
    alarms = [r for r in caplog.records if "ALARM" in r.getMessage()]
    assert len(alarms) == 2 and "worker" in alarms[0].getMessage()
