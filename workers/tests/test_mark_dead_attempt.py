"""Every ``mark_dead`` caller passes the envelope's publish attempt (an int, never None).

Odoo ignores the dead letter of an earlier publish than the delivery's current one (ADR 0002
§5), so the dead-lettering worker (``Deliverer``) and the beat reconciliation (reading the
dead letter's envelope) both send the attempt they verified. Test doubles stand for Odoo and
the broker; the real connector is checked against a local XML-RPC server.
"""

import threading
import xmlrpc.client
from types import SimpleNamespace
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest

from quicksol_bus.envelope import build_envelope, sign_envelope
from quicksol_bus.topology import QUEUES, TASK_NAME
from quicksol_workers.config import WorkerConfig
from quicksol_workers.connector import OdooConnector
from quicksol_workers.delivery import Deliverer
from quicksol_workers.maintenance import reconcile_dead_letters
from quicksol_workers.messages import Delivery, verify

KEY = "secret"
QUEUE = "notification_events"


def signed(attempt=1, event_id="e1", observer="x.obs"):
    env = build_envelope(
        event_id=event_id,
        event_name="testrec.flaky",
        observer=observer,
        queue=QUEUE,
        db="db",
        model=None,
        res_ids=[1],
        payload={},
        uid=2,
        company_id=1,
        context={},
        attempt=attempt,
    )
    return sign_envelope(env, KEY)


class FakeConnector:
    def __init__(self, fail_with=None, verdict="dead"):
        self.calls = []
        self.fail_with = fail_with
        self.verdict = verdict

    def mark_dead(self, *args):
        self.calls.append(args)
        if self.fail_with:
            raise self.fail_with
        return True

    def execute(self, method, *args):
        """Odoo's ``confirm_dead_letter`` (reconciliation asks Odoo, never just tells it), or
        ``mark_expired`` for a letter RabbitMQ expired (answered "republished")."""
        assert method in ("confirm_dead_letter", "mark_expired")
        self.calls.append((method, *args))
        if method == "mark_expired":
            return "republished"
        if self.fail_with:
            raise self.fail_with
        return self.verdict(args) if callable(self.verdict) else self.verdict


class FakeMessage:
    """What ``from_kombu_message`` reads from a kombu message, and its settling."""

    def __init__(self, envelope, headers=None):
        self.headers = {
            "task": TASK_NAME,
            "id": f"{envelope.get('event_id')}:{envelope.get('observer')}",
            **(headers or {}),
        }
        self.body = [[envelope], {}, {}]
        self.properties = {}
        self.delivery_info = {}
        self.acked = False

    def decode(self):
        return self.body

    def ack(self):
        self.acked = True

    def reject(self, requeue):
        raise AssertionError("a dead letter of ours is never rejected")


class FakeBroker:
    def __init__(self, dead):
        self.dead = {QUEUES[QUEUE].dead_queue: list(dead)}
        self.republished = []

    def queue_depth(self, name):
        return len(self.dead.get(name, []))

    def pull(self, name, limit):
        messages, self.dead[name] = self.dead.get(name, [])[:limit], self.dead.get(name, [])[limit:]
        return messages

    def dead_letter(self, delivery, reason, marked):
        self.republished.append((delivery.event_id, reason, marked))

    def close(self):
        pass


def _delivery(envelope):
    return Delivery(
        task_id=f"{envelope['event_id']}:{envelope['observer']}",
        args=(envelope,),
        kwargs={},
        retries=3,
        queue=QUEUE,
    )


def test_attempt_comes_from_the_verified_envelope_only():
    delivery = _delivery(signed(attempt=4))
    assert delivery.attempt is None  # not verified yet: nothing to trust
    verify(delivery, KEY)
    assert delivery.attempt == 4 and isinstance(delivery.attempt, int)
    for odd in (None, "x", True):
        assert Delivery("t", (), {}, 0, QUEUE, envelope={"attempt": odd}).attempt is None


def test_dead_lettering_worker_sends_the_attempt():
    connector = FakeConnector()
    deliverer = Deliverer(WorkerConfig.from_env({}), connector, broker=None)
    delivery = _delivery(signed(attempt=3))
    verify(delivery, KEY)
    assert deliverer._mark_dead(delivery, "gave up after 4 tries") is True
    assert connector.calls == [("e1", "x.obs", "gave up after 4 tries", 3)]
    assert all(arg is not None for arg in connector.calls[0])


def test_dead_lettering_worker_reports_unreachable_odoo():
    connector = FakeConnector(fail_with=ConnectionRefusedError(111, "refused"))
    deliverer = Deliverer(WorkerConfig.from_env({}), connector, broker=None)
    delivery = _delivery(signed(attempt=2))
    verify(delivery, KEY)
    assert deliverer._mark_dead(delivery, "boom") is False
    assert connector.calls[0][3] == 2


def test_reconciliation_sends_the_dead_letters_attempt():
    unmarked = FakeMessage(signed(attempt=2, event_id="e1"), {"quicksol_dead_reason": "gave up"})
    by_rabbitmq = FakeMessage(
        signed(attempt=1, event_id="e2"),
        {"x-death": [{"reason": "expired", "queue": QUEUE}]},
    )
    already = FakeMessage(signed(attempt=5, event_id="e3"), {"quicksol_dead_marked": True})
    forged = FakeMessage(dict(signed(event_id="e4"), signature="0" * 64), {"quicksol_dead_marked": False})
    broker = FakeBroker([unmarked, by_rabbitmq, already, forged])
    connector = FakeConnector()
    app = SimpleNamespace(quicksol_config=WorkerConfig.from_env({"EVENT_BUS_SIGNING_KEY": KEY}))

    marked = reconcile_dead_letters(app, broker=broker, connector=connector)

    assert marked[QUEUE] == 1  # the expired one is published again, not dead (ADR 0006)
    assert connector.calls == [
        ("confirm_dead_letter", "e1", "x.obs", "gave up", 2),
        ("mark_expired", "e2", "x.obs", 1),
    ]
    assert [(event, marked) for event, _reason, marked in broker.republished] == [
        ("e1", True),
        ("e2", True),
        ("e3", True),
        ("e4", "n/a"),
    ]
    assert all(m.acked for m in (unmarked, by_rabbitmq, already, forged))


class _Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/xmlrpc/2/common", "/xmlrpc/2/object")


@pytest.fixture
def odoo_double():
    """A local XML-RPC server that records ``execute_kw`` arguments (no None allowed)."""
    server = SimpleXMLRPCServer(
        ("127.0.0.1", 0), requestHandler=_Handler, logRequests=False, allow_none=False
    )
    calls = []
    server.register_function(lambda db, login, key, ctx: 7, "authenticate")

    def execute_kw(db, uid, key, model, method, args, kwargs):
        calls.append((model, method, args))
        return True

    server.register_function(execute_kw, "execute_kw")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls
    server.shutdown()
    server.server_close()


def test_connector_sends_the_attempt_as_an_int_and_never_none(odoo_double):
    url, calls = odoo_double
    connector = OdooConnector(url, "db", "event_bus_worker", "key", timeout=5)
    assert connector.mark_dead("e1", "x.obs", "gave up", 2) is True
    assert connector.mark_dead("e1", "x.obs", ValueError("x" * 3000)) is True  # attempt unknown
    assert calls[0] == ("quicksol.event", "mark_dead", ["e1", "x.obs", "gave up", 2])
    assert calls[1][2][:2] == ["e1", "x.obs"] and len(calls[1][2]) == 3
    assert len(calls[1][2][2]) == 2000
    with pytest.raises(TypeError):
        xmlrpc.client.dumps((None,))  # what sending None would do


def test_a_refused_coalescing_runs_the_event():
    """``mark_coalesced`` answering False (the first event failed) is no coalescing."""
    from quicksol_workers.guards import Guards

    class Coalescer:
        def __init__(self, answer):
            self.answer = answer

        def execute(self, method, *args):
            assert method == "mark_coalesced"
            return self.answer

    delivery = _delivery(signed(event_id="e2"))
    verify(delivery, KEY)
    config = WorkerConfig.from_env({})
    assert Guards(config, None, Coalescer(False), info=object())._mark_coalesced(delivery, "e1") is False
    assert Guards(config, None, Coalescer(True), info=object())._mark_coalesced(delivery, "e1") is True


def test_reconciliation_marks_nothing_odoo_cannot_confirm():
    """A genuine envelope copied into the dead queue without our headers while its live
    message is still queued: Odoo answers ``unconfirmed``, nothing is marked, and the letter
    goes back unmarked for a later run (when its queue's TTL has passed)."""
    copied = FakeMessage(signed(attempt=1, event_id="live"), {})
    stale = FakeMessage(signed(attempt=1, event_id="old"), {"quicksol_dead_reason": "gave up"})
    broker = FakeBroker([copied, stale])
    connector = FakeConnector(verdict=lambda args: {"live": "unconfirmed", "old": "stale"}[args[0]])
    app = SimpleNamespace(quicksol_config=WorkerConfig.from_env({"EVENT_BUS_SIGNING_KEY": KEY}))

    marked = reconcile_dead_letters(app, broker=broker, connector=connector)

    assert marked[QUEUE] == 0
    assert [(event, marked) for event, _reason, marked in broker.republished] == [
        ("live", False),
        ("old", "n/a"),
    ]
