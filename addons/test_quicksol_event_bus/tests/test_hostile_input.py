"""Bad input and hostile callers on the bus models: clear refusals, nothing written."""

import os
from unittest.mock import patch

from odoo.addons.quicksol_event_bus.client_address import client_address, outside_request, serving_address
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import BusCase

ASYNC = "quicksol.test.observer.async"


@tagged("post_install", "-at_install")
class TestHostileInput(BusCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Company = cls.env["res.company"]
        cls.company_a = Company.create({"name": "Bus Company A"})
        cls.company_b = Company.create({"name": "Bus Company B"})
        Users = cls.env["res.users"].with_context(quicksol_event_bus_disabled=True)
        manager = cls.env.ref("quicksol_event_bus.group_event_bus_manager")
        cls.manager_a, cls.manager_b = (
            Users.create(
                {
                    "name": f"Bus Manager {company.name}",
                    "login": f"bus_manager_{company.id}",
                    "company_id": company.id,
                    "company_ids": [(6, 0, company.ids)],
                    "groups_id": [(6, 0, [cls.env.ref("base.group_user").id, manager.id])],
                }
            )
            for company in (cls.company_a, cls.company_b)
        )

    def emit(self, name, data, user=None):
        with self.async_mode():
            bus = self.Bus.with_user(user) if user else self.Bus
            return bus.emit(name, data)

    # ------------------------------------------------------------------ purge_done(days)

    def test_purge_done_refuses_zero_negative_and_non_integer_days(self):
        done_uuid = self.emit("testrec.custom", {})
        self.Event.with_user(self.worker).run_async_batch(
            [[done_uuid, ASYNC], [done_uuid, "quicksol.test.observer.commission"]]
        )
        for days in (0, -1, -30, 1.5, "7", True, [30]):
            with self.assertRaises(UserError, msg=f"days={days!r}") as caught:
                self.Event.sudo().purge_done(days)
            self.assertIn("days", str(caught.exception))
        self.assertTrue(self.Event.search([("uuid", "=", done_uuid)]), "nothing may be purged")
        self.assertEqual(self.Event.sudo().purge_done(1), 0)  # a valid value still works
        self.env["res.lang"]._activate_lang("pt_BR")
        self.env["ir.module.module"]._load_module_terms(["quicksol_event_bus"], ["pt_BR"])
        with self.assertRaises(UserError) as caught:
            self.Event.sudo().with_context(lang="pt_BR").purge_done(0)
        self.assertIn("deve ser um número inteiro de dias", str(caught.exception))

    # ------------------------------------------------------------------ secret masking

    def test_secret_looking_values_never_reach_the_outbox(self):
        data = {
            "res_ids": [1],
            "pin": "1234",
            "Authorization": "Bearer x",
            "lines": [{"apiKey": "k", "n": 1}, {"client_secret": "c"}],
            "cpf": "123.456.789-00",  # declared by the async observer (_secret_keys)
            "name": "kept",
        }
        event_uuid = self.emit("testrec.custom", data)
        event = self.Event.search([("uuid", "=", event_uuid)])
        self.assertEqual(
            event.payload,
            {
                "res_ids": [1],
                "pin": "***",
                "Authorization": "***",
                "lines": [{"apiKey": "***", "n": 1}, {"client_secret": "***"}],
                "cpf": "***",
                "name": "kept",
            },
        )

    # ------------------------------------------------------------------ company isolation

    def test_a_manager_sees_only_the_events_of_his_companies(self):
        uuid_a = self.emit("testrec.custom", {"of": "A"}, user=self.manager_a)
        uuid_b = self.emit("testrec.custom", {"of": "B"}, user=self.manager_b)
        Event = self.Event.with_user(self.manager_a)
        seen = Event.search([("uuid", "in", [uuid_a, uuid_b])])
        self.assertEqual(seen.mapped("uuid"), [uuid_a])
        event_b = self.Event.search([("uuid", "=", uuid_b)])
        with self.assertRaises(AccessError):
            event_b.with_user(self.manager_a).read(["payload"])
        Delivery = self.env["quicksol.event.delivery"].with_user(self.manager_a)
        self.assertFalse(Delivery.search([("event_id.uuid", "=", uuid_b)]))
        self.assertTrue(Delivery.search([("event_id.uuid", "=", uuid_a)]))
        with self.assertRaises(AccessError):
            event_b.delivery_ids.with_user(self.manager_a).read(["state"])
        self.assertEqual([row["payload"] for row in Event.search_read([], ["payload"])], [{"of": "A"}])

    # ------------------------------------------------------------------ fixture RPC method

    def test_fixture_emit_method_is_refused_outside_a_test_stack(self):
        with patch.dict(os.environ, {"QSB_TEST_FIXTURES": ""}), self.assertRaises(AccessError):
            self.Record.emit_for_test("testrec.custom", {})
        before = self.Event.search_count([])
        with patch.dict(os.environ, {"QSB_TEST_FIXTURES": "1"}), self.assertRaises(AccessError):
            self.Record.with_user(self.user).emit_for_test("testrec.custom", {})  # not an admin
        self.assertEqual(self.Event.search_count([]), before)

    # ------------------------------------------------------------------ client address

    def test_no_request_means_no_address_and_workers_act_for_no_client(self):
        self.assertIsNone(client_address())  # a test, like a cron or the shell: no request
        with serving_address("203.0.113.7"):
            self.assertEqual(client_address(), "203.0.113.7")
            with outside_request():
                self.assertIsNone(client_address())
            self.assertEqual(client_address(), "203.0.113.7")
            self.Bus.with_context(quicksol_event_bus_sync=True).emit("testrec.custom", {"res_ids": [5]})
            self.assertEqual(self.logs(ASYNC, "testrec.custom").client_address, "203.0.113.7")
            event_uuid = self.emit("testrec.custom", {"res_ids": [6]})
            # the worker's XML-RPC call has an address (its host): observers must not see it
            self.Event.with_user(self.worker).run_async(event_uuid, ASYNC)
        ran = self.logs(ASYNC, "testrec.custom").filtered(lambda log: log.res_ids == "6")
        self.assertEqual(len(ran), 1)
        self.assertFalse(ran.client_address)
        self.assertIsNone(client_address())

    # ------------------------------------------------------------------ dead-letter reconciliation

    def test_a_dead_letter_is_confirmed_only_when_no_live_message_can_remain(self):
        event_uuid = self.emit("testrec.custom", {"res_ids": [7]})
        delivery = self.env["quicksol.event.delivery"].search(
            [("event_id.uuid", "=", event_uuid), ("observer", "=", ASYNC)]
        )
        delivery._set({"state": "queued", "published_at": "2999-01-01 00:00:00"})
        worker = self.Event.with_user(self.worker)
        attempt = delivery.publish_attempt
        # a genuine envelope copied into <queue>.dead while its live message is still queued
        self.assertEqual(
            worker.confirm_dead_letter(event_uuid, ASYNC, "forged reason", attempt), "unconfirmed"
        )
        self.assertEqual(delivery.state, "queued")
        self.assertEqual(worker.confirm_dead_letter(event_uuid, ASYNC, "x", attempt - 1), "stale")
        self.assertEqual(worker.confirm_dead_letter(event_uuid, ASYNC, "x", attempt + 1), "stale")
        self.assertEqual(worker.confirm_dead_letter("no-such-uuid", ASYNC, "x", 1), "unknown")
        for odd in (None, "1", 1.0, True):
            with self.assertRaises(UserError, msg=repr(odd)):
                worker.confirm_dead_letter(event_uuid, ASYNC, "x", odd)
        self.assertEqual(delivery.state, "queued")
        # past the queue's message TTL RabbitMQ holds no live copy: the letter is believed
        self.env.cr.execute(
            "UPDATE quicksol_event_delivery SET published_at = now() - interval '30 days' WHERE id = %s",
            [delivery.id],
        )
        delivery.invalidate_recordset()
        self.assertEqual(worker.confirm_dead_letter(event_uuid, ASYNC, "expired", attempt), "dead")
        self.assertEqual(delivery.state, "dead")
        self.assertIn("expired", delivery.last_error)
        self.assertEqual(worker.confirm_dead_letter(event_uuid, ASYNC, "again", attempt), "dead")
        with self.assertRaises(AccessError):
            self.Event.with_user(self.manager_a).confirm_dead_letter(event_uuid, ASYNC, "x", attempt)
