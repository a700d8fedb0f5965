"""The status API (/api/v1) over Odoo's real HTTP server: authentication, access, errors,
content, and a foreign company's event."""

import json
import os
import socket
import unittest

from odoo.addons.quicksol_event_bus.tests.http_server import ensure_http_server
from odoo.tests import HttpCase, tagged

from .common import SIGNING_KEY, bus_environment

FLAKY = "quicksol.test.observer.flaky"
BROKER_URL = os.environ.get("CELERY_BROKER_URL")
MGMT_URL = os.environ.get("QSB_RABBITMQ_MGMT_URL")
SERVICES_EXPECTED = bool(os.environ.get("QSB_SERVICES_STARTED_BY"))


@tagged("post_install", "-at_install")
class TestStatusApi(HttpCase):
    @classmethod
    def setUpClass(cls):
        ensure_http_server()
        super().setUpClass()
        cls.Event = cls.env["quicksol.event"]
        cls.Bus = cls.env["quicksol.event.bus"]
        cls.worker = cls.env.ref("quicksol_event_bus.user_event_bus_worker")
        Users = cls.env["res.users"].with_context(quicksol_event_bus_disabled=True, no_reset_password=True)
        ref = cls.env.ref

        def user(login, *groups):
            return Users.create(
                {
                    "name": login,
                    "login": login,
                    "password": login + "-pass-123",
                    "groups_id": [(6, 0, [ref("base.group_user").id] + [ref(g).id for g in groups])],
                }
            )

        cls.admin = user("api_admin", "quicksol_event_bus.group_event_bus_manager")
        cls.auditor = user("api_auditor", "quicksol_event_bus.group_event_bus_auditor")
        cls.plain = user("api_plain")
        cls.keys = {u: cls.api_key(u) for u in (cls.admin, cls.auditor, cls.plain)}

    @classmethod
    def api_key(cls, user):
        return cls.env["res.users.apikeys"].with_user(user).sudo()._generate("rpc", "status api test", None)

    def setUp(self):
        super().setUp()
        patch = bus_environment(
            CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:9//",
            EVENT_BUS_SIGNING_KEY=SIGNING_KEY,
            EVENT_BUS_SYNC=None,
            EVENT_BUS_MONITOR_TIMEOUT="0.5",
            EVENT_BUS_RABBITMQ_MGMT_URL=None,
        )
        patch.__enter__()
        self.addCleanup(patch.__exit__, None, None, None)

    def call(self, path, user=None, method="GET", body=None, headers=None):
        headers = dict(headers or {})
        if user is not None:
            headers["Authorization"] = f"Bearer {self.keys[user]}"
        if method == "POST":
            headers.setdefault("Content-Type", "application/json")
            response = self.opener.post(
                self.base_url() + path, data=json.dumps(body or {}), headers=headers, timeout=15
            )
        else:
            response = self.url_open(path, headers=headers)
        self.assertEqual(response.headers["Content-Type"].split(";")[0], "application/json", response.text)
        return response.status_code, response.json()

    def failed_event(self):
        event_uuid = self.Bus.emit("testrec.flaky", {"fail": "permanent", "res_ids": [1]})
        self.Event.with_user(self.worker).run_async(event_uuid, FLAKY)
        return self.Event.search([("uuid", "=", event_uuid)])

    # ------------------------------------------------------------------ authentication

    def test_no_credentials_bad_key_and_plain_user(self):
        event = self.failed_event()
        status, body = self.call(f"/api/v1/events/{event.uuid}")
        self.assertEqual((status, body["error"]["code"]), (401, "unauthorized"))
        status, body = self.call(f"/api/v1/events/{event.uuid}", headers={"Authorization": "Bearer nope"})
        self.assertEqual((status, body["error"]["message"]), (401, "invalid API key"))
        status, body = self.call(f"/api/v1/events/{event.uuid}", user=self.plain)
        self.assertEqual((status, body["error"]["code"]), (403, "forbidden"))
        status, _body = self.call("/api/v1/stats", user=self.plain)
        self.assertEqual(status, 403)

    def test_a_session_works_too_and_a_post_needs_its_csrf_token(self):
        event = self.failed_event()
        self.authenticate("api_admin", "api_admin-pass-123")
        status, body = self.call(f"/api/v1/events/{event.uuid}")
        self.assertEqual((status, body["uuid"]), (200, event.uuid))
        status, body = self.call(f"/api/v1/events/{event.uuid}/retry", method="POST")
        self.assertEqual((status, body["error"]["code"]), (403, "csrf"))
        self.assertEqual(event.delivery_ids.state, "failed")

    # ------------------------------------------------------------------ content

    def test_event_state_deliveries_errors_and_timings(self):
        event = self.failed_event()
        status, body = self.call(f"/api/v1/events/{event.uuid}", user=self.auditor)
        self.assertEqual(status, 200)
        self.assertEqual((body["name"], body["state"], body["res_ids"]), ("testrec.flaky", "failed", [1]))
        (delivery,) = body["deliveries"]
        self.assertEqual(
            (delivery["observer"], delivery["queue"], delivery["state"]),
            (FLAKY, "notification_events", "failed"),
        )
        self.assertIn("permanent failure asked by the test", body["errors"][0])
        self.assertTrue(body["timings"]["emitted_at"].endswith("Z"))

    def test_unknown_malformed_and_foreign_company_events(self):
        status, body = self.call("/api/v1/events/00000000-0000-4000-8000-000000000000", user=self.auditor)
        self.assertEqual((status, body["error"]["code"]), (404, "not_found"))
        status, body = self.call("/api/v1/events/not-a-uuid", user=self.auditor)
        self.assertEqual((status, body["error"]["code"]), (400, "bad_request"))
        event = self.failed_event()
        other = self.env["res.company"].create({"name": "API Other Company"})
        self.env.cr.execute("UPDATE quicksol_event SET company_id = %s WHERE id = %s", [other.id, event.id])
        status, _body = self.call(f"/api/v1/events/{event.uuid}", user=self.auditor)
        self.assertEqual(status, 404)
        status, _body = self.call(f"/api/v1/events/{event.uuid}/retry", user=self.admin, method="POST")
        self.assertEqual(status, 404)

    def test_stats_counts_by_state_and_queue_outbox_lag_and_failure_rate(self):
        self.failed_event()
        self.Bus.emit("testrec.custom", {})
        status, body = self.call("/api/v1/stats", user=self.auditor)
        self.assertEqual(status, 200)
        self.assertGreaterEqual(body["events_by_state"]["failed"], 1)
        self.assertGreaterEqual(body["deliveries_by_queue"]["notification_events"]["failed"], 1)
        self.assertGreaterEqual(body["outbox"]["pending"], 2)
        self.assertGreaterEqual(body["outbox"]["oldest_pending_seconds"], 0)
        self.assertGreater(body["failure_rate"], 0)

    # ------------------------------------------------------------------ retry

    def test_retry_needs_an_administrator_and_is_logged(self):
        event = self.failed_event()
        status, _body = self.call(f"/api/v1/events/{event.uuid}/retry", user=self.auditor, method="POST")
        self.assertEqual(status, 403)
        event.invalidate_recordset()
        self.assertEqual(event.delivery_ids.state, "failed")
        status, body = self.call(
            f"/api/v1/events/{event.uuid}/retry",
            user=self.admin,
            method="POST",
            body={"reason": "partner fixed"},
        )
        self.assertEqual((status, body["state"], body["deliveries"][0]["state"]), (202, "pending", "pending"))
        event.invalidate_recordset()
        note = event.message_ids[:1]
        self.assertEqual(note.author_id, self.admin.partner_id)
        self.assertIn("partner fixed", note.body)
        # nothing left to retry now: a conflict, said in JSON
        status, body = self.call(f"/api/v1/events/{event.uuid}/retry", user=self.admin, method="POST")
        self.assertEqual((status, body["error"]["code"]), (409, "conflict"))

    def test_retry_refuses_a_body_that_is_not_json(self):
        event = self.failed_event()
        status, body = self.call(
            f"/api/v1/events/{event.uuid}/retry", user=self.admin, method="POST", headers={}, body=None
        )
        self.assertEqual(status, 202)  # an empty body is fine: the default reason is used
        response = self.opener.post(
            self.base_url() + f"/api/v1/events/{self.failed_event().uuid}/retry",
            data="{not json",
            headers={"Authorization": f"Bearer {self.keys[self.admin]}"},
            timeout=15,
        )
        self.assertEqual((response.status_code, response.json()["error"]["code"]), (400, "bad_request"))

    # ------------------------------------------------------------------ queues

    def test_unknown_queue_and_broker_down(self):
        status, body = self.call("/api/v1/queues/nope", user=self.auditor)
        self.assertEqual(status, 404)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with bus_environment(
            EVENT_BUS_RABBITMQ_MGMT_URL=f"http://u:p@127.0.0.1:{port}/", EVENT_BUS_MONITOR_TIMEOUT="0.5"
        ):
            status, body = self.call("/api/v1/queues/audit_events", user=self.auditor)
        self.assertEqual((status, body["broker_reachable"]), (503, False))
        self.assertIn("refused", body["broker_error"].lower())
        self.assertIn("dead", body["recorded"])

    @unittest.skipUnless(
        (BROKER_URL and MGMT_URL) or SERVICES_EXPECTED,
        "CELERY_BROKER_URL / QSB_RABBITMQ_MGMT_URL not set: run through `make test`, which starts RabbitMQ",
    )
    def test_queue_depth_dead_letters_and_consumers_from_the_real_broker(self):
        with bus_environment(CELERY_BROKER_URL=BROKER_URL, EVENT_BUS_RABBITMQ_MGMT_URL=MGMT_URL):
            status, body = self.call("/api/v1/queues/commission_events", user=self.auditor)
        self.assertEqual(status, 200, body)
        self.assertTrue(body["broker_reachable"])
        for key in ("depth", "dead_letters", "consumers", "ready", "unacked"):
            self.assertIsInstance(body[key], int, key)

    # ------------------------------------------------------------------ metrics

    def test_prometheus_gauges_need_an_auditor(self):
        from prometheus_client.parser import text_string_to_metric_families

        self.failed_event()
        status, body = self.call("/api/v1/metrics")
        self.assertEqual((status, body["error"]["code"]), (401, "unauthorized"))
        response = self.url_open(
            "/api/v1/metrics", headers={"Authorization": f"Bearer {self.keys[self.auditor]}"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.headers["Content-Type"].startswith("text/plain"))
        values = {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }
        self.assertGreaterEqual(values[("quicksol_bus_events", (("state", "failed"),))], 1)
        self.assertIn(("quicksol_bus_outbox_oldest_pending_seconds", ()), values)
        self.assertEqual(values[("quicksol_bus_broker_up", ())], 0)  # no management URL in this test
