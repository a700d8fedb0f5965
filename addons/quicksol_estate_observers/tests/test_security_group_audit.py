import json

from odoo import Command
from odoo.tests import tagged

from quicksol_bus.payload import REDACTED

from .common import ObserversCase, async_bus, count_creates, trap_events

AUDIT = "quicksol.observer.security.group.audit"


@tagged("post_install", "-at_install")
class TestSecurityGroupAudit(ObserversCase):
    def created_logs(self, props):
        return self.Log.search([("event_name", "=", "property.created"), ("res_id", "in", props.ids)])

    def test_user_created_is_audited_by_the_worker(self):
        with async_bus(), trap_events(self.env) as trap:
            user = (
                self.env["res.users"]
                .with_user(self.admin)
                .create(
                    {
                        "name": "Audited",
                        "login": "audited",
                        "password": "not-in-the-log-42",
                        "estate_company_ids": [Command.set(self.company_a.ids)],
                    }
                )
            )
        event = trap.assert_emitted("user.created", count=1, res_id=user.id)
        self.assertIn(AUDIT, event.async_observers)
        self.assertFalse(self.logs(event_name="user.created", res_id=user.id))
        trap.run_async()
        log = self.logs(event_name="user.created", res_id=user.id)
        self.assertEqual(len(log), 1)
        self.assertEqual(
            (log.model, log.user_id, log.event_uuid), ("res.users", self.admin, event.data["emission_id"])
        )
        self.assertEqual(log.estate_company_ids, self.company_a)
        self.assertFalse(log.ip_address, "no HTTP request in this test")
        self.assertTrue(log.timestamp)
        self.assertEqual(json.loads(log.data)["res_id"], user.id)

    def test_group_changes_are_flagged_and_secrets_redacted(self):
        user = self.users["agent_a"]
        with async_bus(), trap_events(self.env) as trap:
            user.write(
                {"groups_id": [Command.link(self.env.ref("quicksol_estate.group_real_estate_prospector").id)]}
            )
            user.write({"password": "s3cret-password"})
        trap.run_async()
        logs = self.logs(event_name="user.updated", res_id=user.id)
        # Linking a group writes twice (Odoo adds the implied groups in a second write).
        group_changes = logs.filtered("is_group_change")
        self.assertTrue(group_changes)
        self.assertEqual({tuple(json.loads(log.data)["changed"]) for log in group_changes}, {("groups_id",)})
        password_changes = (logs - group_changes).filtered(
            lambda log: "password" in json.loads(log.data)["changed"]
        )
        self.assertTrue(password_changes)
        for log in logs:
            self.assertNotIn("s3cret-password", log.data)
        self.assertEqual(json.loads(password_changes[0].data)["vals"]["password"], REDACTED)

    def test_a_thousand_properties_give_a_thousand_rows_in_one_create(self):
        vals = [{"name": f"Imported {i}", "estate_company_id": self.company_a.id} for i in range(1000)]
        with async_bus(), trap_events(self.env) as trap:
            props = self.env["real.estate.property"].create(vals)
        created = trap.assert_emitted("property.created", count=1)
        self.assertEqual(len(created.data["res_ids"]), 1000)
        self.assertNotIn("import_id", created.data, "not created by the import wizard")
        with count_creates(self.env, "quicksol.audit.log") as creates:
            trap.run_async()
        self.assertEqual(creates, [1000])
        logs = self.created_logs(props)
        self.assertEqual(sorted(logs.mapped("res_id")), sorted(props.ids))
        self.assertEqual(logs.estate_company_ids, self.company_a)
        self.assertEqual(json.loads(logs[0].data)["batch_size"], 1000)
        self.assertNotIn("res_ids", json.loads(logs[0].data))

    def test_rows_are_written_exactly_once(self):
        with async_bus(), trap_events(self.env) as trap:
            props = self.env["real.estate.property"].create(
                [{"name": f"Once {i}", "estate_company_id": self.company_a.id} for i in range(3)]
            )
        delivery_ids = self.delivery_ids(trap)
        created = trap.assert_emitted("property.created")
        first = trap.run_async()
        self.assertEqual({r["status"] for r in first.values()}, {"done"})
        trap.run_async()  # a second call finds nothing left to run
        second = self.rerun(delivery_ids)  # a redelivered message finds the work done
        self.assertEqual({r["status"] for r in second.values()}, {"already_done"})
        # Even handed the same event again, the observer writes no second row.
        self.env[AUDIT].handle_async_batch([("property.created", created.data)] * 2)
        self.assertEqual(sorted(self.created_logs(props).mapped("res_id")), sorted(props.ids))

    def test_sync_mode_writes_rows_inline(self):
        prop = self._new_property(self.company_b, self.agent_b)
        log = self.logs(event_name="property.created", res_id=prop.id)
        self.assertEqual(len(log), 1)
        self.assertEqual(log.estate_company_ids, self.company_b)

    def test_ip_address_travels_in_the_event_data(self):
        with async_bus(), trap_events(self.env) as trap:
            self._new_property(self.company_a)
        event = trap.assert_emitted("property.created")
        data = dict(event.data, ip_address="203.0.113.7", emission_id="fixed-emission")
        self.env[AUDIT].with_user(self.users["agent_a"]).handle_async_batch([("property.created", data)])
        log = self.logs(event_uuid="fixed-emission")
        self.assertEqual((log.ip_address, log.user_id), ("203.0.113.7", self.users["agent_a"]))
