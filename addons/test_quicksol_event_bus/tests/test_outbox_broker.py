"""The outbox against the real RabbitMQ started by ``make test`` (CELERY_BROKER_URL)."""

import json
import os
import socket
import threading
import unittest

from odoo.addons.quicksol_event_bus.models import event_bus
from odoo.tests import tagged

from quicksol_bus.envelope import verify_envelope
from quicksol_bus.topology import QUEUES, TASK_NAME, kombu_queues

from .common import SIGNING_KEY, BusCase, bus_environment

BROKER_URL = os.environ.get("CELERY_BROKER_URL")
MGMT_URL = os.environ.get("QSB_RABBITMQ_MGMT_URL")
# `make test` starts RabbitMQ and says so: then a missing broker is a failure, not a skip.
SERVICES_EXPECTED = bool(os.environ.get("QSB_SERVICES_STARTED_BY"))
ASYNC = "quicksol.test.observer.async"
COMMISSION = "quicksol.test.observer.commission"


class CountingDeadBroker:
    """A loopback TCP port that accepts and hangs up: a broker that is down, with a count of
    how many times somebody tried it."""

    def __init__(self):
        self.attempts = 0
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self.url = f"amqp://guest:guest@127.0.0.1:{self._socket.getsockname()[1]}//"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while True:
            try:
                connection, _address = self._socket.accept()
            except OSError:
                return
            self.attempts += 1
            connection.close()

    def close(self):
        self._socket.close()


@unittest.skipUnless(
    BROKER_URL or SERVICES_EXPECTED,
    "CELERY_BROKER_URL is not set: run through `make test`, which starts RabbitMQ",
)
@tagged("post_install", "-at_install")
class TestOutboxWithRabbitMQ(BusCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        from kombu import Connection

        # The post-commit publisher opens a cursor of its own; in test mode (as HttpCase does)
        # that cursor shares the test transaction, so it sees the uncommitted outbox rows.
        cls.registry.enter_test_mode(cls.cr)
        cls.addClassCleanup(cls.registry.leave_test_mode)

        cls.connection = Connection(BROKER_URL)
        cls.connection.connect()
        cls.channel = cls.connection.channel()
        for queue in kombu_queues():
            queue(cls.channel).declare()

    @classmethod
    def tearDownClass(cls):
        cls.connection.close()
        super().tearDownClass()

    def setUp(self):
        super().setUp()
        for queue in kombu_queues():
            self.channel.queue_purge(queue.name)
        self.env_patch = bus_environment(
            CELERY_BROKER_URL=BROKER_URL,
            EVENT_BUS_SIGNING_KEY=SIGNING_KEY,
            EVENT_BUS_SYNC=None,
            EVENT_BUS_BROKER_DOWN_POLICY=None,
        )
        self.env_patch.__enter__()
        self.addCleanup(self.env_patch.__exit__, None, None, None)

    def publish_after_commit(self):
        """What a commit does: flush and run the precommit hooks (the outbox rows are written
        there), then (the data being safe) run the post-commit hooks."""
        self.env.cr.flush()
        self.env.cr.postcommit.run()
        self.env.invalidate_all()  # the publisher wrote through a cursor of its own

    def count(self, queue):
        return self.channel.queue_declare(queue, passive=True).message_count

    def get(self, queue):
        message = self.channel.basic_get(queue, no_ack=True)
        self.assertIsNotNone(message, f"no message in {queue}")
        return message

    def test_nothing_before_commit_then_confirmed_messages_after(self):
        event_uuid = self.Bus.emit("testrec.custom", {"res_ids": [4]})
        self.assertEqual((self.count("audit_events"), self.count("commission_events")), (0, 0))
        self.publish_after_commit()
        self.assertEqual((self.count("audit_events"), self.count("commission_events")), (1, 1))
        message = self.get("commission_events")
        headers = message.properties["application_headers"]
        self.assertEqual(headers["task"], TASK_NAME)
        self.assertEqual(headers["id"], f"{event_uuid}:{COMMISSION}")
        self.assertEqual(headers["quicksol_event_id"], event_uuid)
        self.assertEqual(message.properties["delivery_mode"], 2)
        self.assertEqual(message.properties["priority"], 9)
        args, kwargs, _embed = json.loads(message.body)
        envelope = verify_envelope(args[0], SIGNING_KEY)
        self.assertEqual(kwargs, {})
        self.assertEqual(
            {
                k: envelope[k]
                for k in ("event_id", "event_name", "observer", "queue", "res_ids", "db", "uid", "attempt")
            },
            {
                "event_id": event_uuid,
                "event_name": "testrec.custom",
                "observer": COMMISSION,
                "queue": "commission_events",
                "res_ids": [4],
                "db": self.env.cr.dbname,
                "uid": self.env.uid,
                "attempt": 1,
            },
        )
        self.assertNotIn("password", json.dumps(args[0]).lower())
        self.assertEqual(self.get("audit_events").properties["priority"], 5)
        event = self.Event.search([("uuid", "=", event_uuid)])
        self.assertEqual(set(event.delivery_ids.mapped("state")), {"queued"})
        self.assertEqual(event.state, "queued")

    def test_rolled_back_work_publishes_nothing(self):
        with self.assertRaises(ZeroDivisionError), self.env.cr.savepoint():
            self.Bus.emit("testrec.custom", {})
            raise ZeroDivisionError
        self.publish_after_commit()
        self.assertEqual((self.count("audit_events"), self.count("commission_events")), (0, 0))

    def test_one_transaction_publishes_its_events_in_one_batch(self):
        uuids = [self.Bus.emit("testrec.custom", {"n": n}) for n in range(20)]
        self.publish_after_commit()
        self.assertEqual(self.count("audit_events"), 20)
        seen = {json.loads(self.get("audit_events").body)[0][0]["event_id"] for _ in range(20)}
        self.assertEqual(seen, set(uuids))

    def test_queue_arguments_read_back_from_the_broker(self):
        import requests

        if not MGMT_URL:
            if SERVICES_EXPECTED:
                self.fail("make test started RabbitMQ but QSB_RABBITMQ_MGMT_URL is not set")
            self.skipTest("QSB_RABBITMQ_MGMT_URL is not set: run through `make test`")
        self.Bus.emit("testrec.custom", {})
        self.publish_after_commit()
        response = requests.get(f"{MGMT_URL.rstrip('/')}/api/queues/%2F", timeout=10)
        response.raise_for_status()
        queues = {q["name"]: q for q in response.json()}
        for name, spec in QUEUES.items():
            self.assertEqual(queues[name]["arguments"], spec.arguments())
            self.assertTrue(queues[name]["durable"])
            self.assertTrue(queues[spec.dead_queue]["durable"])

    def test_broker_down_save_succeeds_breaker_spares_later_saves_relay_publishes_once(self):
        dead = CountingDeadBroker()
        self.addCleanup(dead.close)
        with bus_environment(CELERY_BROKER_URL=dead.url, EVENT_BUS_SIGNING_KEY=SIGNING_KEY):
            first = self.Record.create({"name": "while down 1"})
            self.publish_after_commit()
            self.assertEqual(dead.attempts, 1)
            breaker = event_bus._breakers[dead.url]
            self.assertEqual(breaker.state, "open")
            second = self.Record.create({"name": "while down 2"})
            self.publish_after_commit()
            self.assertEqual(dead.attempts, 1, "an open breaker must spare later saves")
        self.assertTrue(first.exists() and second.exists())
        pending = self.env["quicksol.event.delivery"].search(
            [("state", "=", "pending"), ("event_id.name", "=", "testrec.created")]
        )
        self.assertEqual(len(pending), 2)
        # The broker is back: the relay publishes each pending delivery exactly once.
        with bus_environment(EVENT_BUS_RELAY_MIN_AGE="0"):
            published = self.env["quicksol.event.delivery"]._relay_once()
            self.assertEqual(published, 2)
            self.assertEqual(self.env["quicksol.event.delivery"]._relay_once(), 0)
        self.assertEqual(self.count("audit_events"), 2)
        self.assertEqual(set(pending.mapped("state")), {"queued"})

    def test_relay_waits_for_the_post_commit_publish_then_takes_orphans(self):
        self.Bus.emit("testrec.custom", {})  # never committed here: no post-commit publish
        Delivery = self.env["quicksol.event.delivery"]
        with bus_environment(EVENT_BUS_RELAY_MIN_AGE="3600"):
            self.assertEqual(Delivery._relay_once(), 0, "too young: its own commit publishes it")
        with bus_environment(EVENT_BUS_RELAY_MIN_AGE="0"):
            self.assertEqual(Delivery._relay_once(), 2)
        self.assertEqual((self.count("audit_events"), self.count("commission_events")), (1, 1))

    def test_relay_republishes_deliveries_queued_for_too_long(self):
        event_uuid = self.Bus.emit("testrec.custom", {})
        self.publish_after_commit()
        self.get("audit_events")  # a message lost outside the broker's care
        self.get("commission_events")
        Delivery = self.env["quicksol.event.delivery"]
        with bus_environment(EVENT_BUS_REPUBLISH_QUEUED_AFTER="60"):
            self.assertEqual(Delivery._cron_relay_stale(), 0)
            # Past the commission queue's TTL (1 h) plus the margin; not the audit one's (24 h):
            # before its TTL a message may just be waiting in a backlog.
            self._age_published(hours=2)
            self.assertEqual(Delivery._cron_relay_stale(), 1)
            self.assertEqual((self.count("audit_events"), self.count("commission_events")), (0, 1))
            self._age_published(hours=24)  # now both are past their queue's TTL
            self.assertEqual(Delivery._cron_relay_stale(), 2)
        message = self.get("audit_events")
        self.assertEqual(message.properties["application_headers"]["quicksol_event_id"], event_uuid)

    def _age_published(self, hours):
        self.env.cr.execute(
            "UPDATE quicksol_event_delivery SET published_at = published_at - %s::interval",
            [f"{hours} hours"],
        )

    def test_inline_fallback_policy_runs_async_observers_here_while_the_broker_is_down(self):
        dead = CountingDeadBroker()
        self.addCleanup(dead.close)
        with bus_environment(
            CELERY_BROKER_URL=dead.url,
            EVENT_BUS_SIGNING_KEY=SIGNING_KEY,
            EVENT_BUS_BROKER_DOWN_POLICY="inline",
        ):
            self.Record.create({"name": "opens the breaker"})
            self.publish_after_commit()
            self.assertFalse(self.logs(ASYNC))
            self.Record.create({"name": "runs inline"})
            self.publish_after_commit()
        self.assertEqual(len(self.logs(ASYNC, "testrec.created")), 1)
        events = self.Event.search([("name", "=", "testrec.created")], order="id")
        self.assertEqual(events.mapped("state"), ["pending", "done"])
        self.assertEqual(events[1].delivery_ids.run_mode, "inline_fallback")
        # The relay republishes only the first (pending) one: never both paths for one event.
        with bus_environment(EVENT_BUS_RELAY_MIN_AGE="0"):
            self.assertEqual(self.env["quicksol.event.delivery"]._relay_once(), 1)
        self.assertEqual(self.count("audit_events"), 1)
