"""The Broker and workers screen and the monitor snapshot behind it."""

import os
import socket
import unittest

from odoo.exceptions import AccessError
from odoo.tests import tagged

from quicksol_bus.topology import QUEUES

from .common import SIGNING_KEY, BusCase, bus_environment

BROKER_URL = os.environ.get("CELERY_BROKER_URL")
MGMT_URL = os.environ.get("QSB_RABBITMQ_MGMT_URL")
SERVICES_EXPECTED = bool(os.environ.get("QSB_SERVICES_STARTED_BY"))


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@tagged("post_install", "-at_install")
class TestBusStatus(BusCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Users = cls.env["res.users"].with_context(quicksol_event_bus_disabled=True)
        cls.auditor = Users.create(
            {
                "name": "Status Auditor",
                "login": "status_auditor",
                "groups_id": [(6, 0, [cls.env.ref("quicksol_event_bus.group_event_bus_auditor").id])],
            }
        )

    def test_broker_down_is_said_with_the_outbox_figures(self):
        port = closed_port()
        with bus_environment(
            CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{port}//",
            EVENT_BUS_RABBITMQ_MGMT_URL=f"http://guest:guest@127.0.0.1:{port}/",
            EVENT_BUS_SIGNING_KEY=SIGNING_KEY,
            EVENT_BUS_MONITOR_TIMEOUT="0.5",
            EVENT_BUS_FLOWER_URL="http://127.0.0.1:5555/",
            EVENT_BUS_SYNC=None,
        ):
            self.Bus.emit("testrec.custom", {})
            action = self.env["quicksol.event.bus.status"].with_user(self.auditor).action_open()
        status = self.env["quicksol.event.bus.status"].browse(action["res_id"])
        self.assertFalse(status.broker_reachable)
        self.assertIn("refused", status.broker_error.lower())
        self.assertFalse(status.workers_reachable)
        self.assertEqual(status.workers_online, 0)
        self.assertGreaterEqual(status.outbox_pending, 2)
        self.assertEqual(status.circuit_state, "closed")  # nothing tried to publish yet
        self.assertEqual(status.flower_url, "http://127.0.0.1:5555/")
        self.assertEqual(status.rabbitmq_management_url, f"http://127.0.0.1:{port}/")  # no password

    def test_the_menu_opens_a_fresh_snapshot(self):
        with bus_environment(CELERY_BROKER_URL=None, EVENT_BUS_RABBITMQ_MGMT_URL=None):
            values = (
                self.env["quicksol.event.bus.status"]
                .with_user(self.auditor)
                .default_get(["checked_at", "broker_reachable", "broker_error", "circuit_state"])
            )
        self.assertEqual((values["broker_reachable"], values["circuit_state"]), (False, "sync"))
        self.assertIn("not configured", values["broker_error"])

    def test_sync_mode_and_no_management_url_are_said(self):
        with bus_environment(CELERY_BROKER_URL=None, EVENT_BUS_RABBITMQ_MGMT_URL=None):
            snapshot = self.env["quicksol.event.bus.monitor"].snapshot()
        self.assertEqual(snapshot["circuit_state"], "sync")
        self.assertIn("not configured", snapshot["broker"]["error"])
        self.assertIn("sync mode", snapshot["workers"]["error"])

    def test_counts_by_state_and_queue_and_failure_rate(self):
        with self.async_mode():
            ok = self.Bus.emit("testrec.flaky", {})
            bad = self.Bus.emit("testrec.flaky", {"fail": "permanent"})
        worker = self.Event.with_user(self.worker)
        worker.run_async(ok, "quicksol.test.observer.flaky")
        worker.run_async(bad, "quicksol.test.observer.flaky")
        before = self.env["quicksol.event.bus.monitor"].snapshot(with_remote=False)
        self.assertGreaterEqual(before["events_by_state"]["failed"], 1)
        self.assertGreaterEqual(before["deliveries_by_queue"]["notification_events"]["done"], 1)
        self.assertGreater(before["failure_rate"], 0)
        self.assertEqual(set(before["deliveries_by_queue"]), set(QUEUES))

    def test_a_plain_user_cannot_see_the_bus_health(self):
        with self.assertRaises(AccessError):
            self.env["quicksol.event.bus.monitor"].with_user(self.user).snapshot()
        with self.assertRaises(AccessError):
            self.env["quicksol.event.bus.status"].with_user(self.user).action_open()

    @unittest.skipUnless(
        (BROKER_URL and MGMT_URL) or SERVICES_EXPECTED,
        "CELERY_BROKER_URL / QSB_RABBITMQ_MGMT_URL not set: run through `make test`, which starts RabbitMQ",
    )
    def test_the_real_broker_is_reachable_with_every_queue(self):
        with bus_environment(
            CELERY_BROKER_URL=BROKER_URL,
            EVENT_BUS_RABBITMQ_MGMT_URL=MGMT_URL,
            EVENT_BUS_SIGNING_KEY=SIGNING_KEY,
        ):
            action = self.env["quicksol.event.bus.status"].action_open()
        status = self.env["quicksol.event.bus.status"].browse(action["res_id"])
        self.assertTrue(status.broker_reachable, status.broker_error)
        self.assertEqual(set(status.queue_ids.mapped("name")), set(QUEUES))
        self.assertTrue(status.workers_reachable, status.workers_error)


@unittest.skipUnless(
    (BROKER_URL and MGMT_URL) or SERVICES_EXPECTED,
    "CELERY_BROKER_URL / QSB_RABBITMQ_MGMT_URL not set: run through `make test`, which starts RabbitMQ",
)
@tagged("post_install", "-at_install")
class TestDeadLetterQueues(BusCase):
    """Dead-letter queues stay bounded: the policy, and the purge of recorded dead letters."""

    def setUp(self):
        super().setUp()
        from kombu import Connection

        from quicksol_bus.topology import kombu_queues

        self.connection = Connection(BROKER_URL)
        self.addCleanup(self.connection.release)
        self.channel = self.connection.channel()
        for queue in kombu_queues():
            queue(self.channel).declare()
        self.channel.queue_purge("audit_events.dead")
        self.addCleanup(self.channel.queue_purge, "audit_events.dead")
        patch = bus_environment(
            CELERY_BROKER_URL=BROKER_URL,
            EVENT_BUS_RABBITMQ_MGMT_URL=MGMT_URL,
            EVENT_BUS_SIGNING_KEY=SIGNING_KEY,
        )
        patch.__enter__()
        self.addCleanup(patch.__exit__, None, None, None)

    def dead_letter(self, event_uuid, observer):
        from kombu import Exchange, Producer

        Producer(self.channel).publish(
            {"dead": True},
            exchange=Exchange("dlx.audit_events", type="direct"),
            routing_key="audit_events.dead",
            headers={"quicksol_event_id": event_uuid, "quicksol_observer": observer},
        )

    def test_recorded_dead_letters_are_purged_the_others_kept(self):
        async_observer = "quicksol.test.observer.async"
        recorded = self.Bus.emit("testrec.custom", {})
        self.Event.with_user(self.worker).mark_dead(recorded, async_observer, "gave up", 1)
        unknown_to_odoo = self.Bus.emit("testrec.custom", {})  # still pending: reconciliation decides
        self.dead_letter(recorded, async_observer)
        self.dead_letter(unknown_to_odoo, async_observer)
        self.dead_letter("not-ours", "nobody")
        admin = self.env.ref("base.user_admin")
        counts = (
            self.env["quicksol.event.bus.monitor"]
            .with_user(admin)
            .purge_recorded_dead_letters("audit_events")
        )
        self.assertEqual(counts, {"removed": 1, "kept": 2})
        self.assertEqual(self.channel.queue_declare("audit_events.dead", passive=True).message_count, 2)
        kept = [
            self.channel.basic_get("audit_events.dead", no_ack=True).headers["quicksol_event_id"]
            for _ in range(2)
        ]
        self.assertEqual(sorted(kept), sorted([unknown_to_odoo, "not-ours"]))

    def test_the_policy_bounds_every_dead_letter_queue_and_only_admins_apply_it(self):
        from quicksol_bus.monitoring import _management_get
        from quicksol_bus.topology import DEAD_LETTER_POLICY

        auditor = self.env["res.users"].create(
            {
                "name": "DLQ Auditor",
                "login": "dlq_auditor",
                "groups_id": [(6, 0, [self.env.ref("quicksol_event_bus.group_event_bus_auditor").id])],
            }
        )
        with self.assertRaises(AccessError):
            self.env["quicksol.event.bus.monitor"].with_user(auditor).apply_dead_letter_policy()
        with self.assertRaises(AccessError):
            self.env["quicksol.event.bus.monitor"].with_user(auditor).purge_recorded_dead_letters(
                "audit_events"
            )
        policy = self.env["quicksol.event.bus.monitor"].apply_dead_letter_policy()
        stored = _management_get(MGMT_URL, f"/api/policies/%2F/{DEAD_LETTER_POLICY}", 5)
        self.assertEqual(stored["definition"], policy["definition"])
        self.assertEqual(stored["definition"]["overflow"], "drop-head")
        for name in QUEUES:
            self.assertRegex(f"{name}.dead", stored["pattern"])
            self.assertNotRegex(name, stored["pattern"])
