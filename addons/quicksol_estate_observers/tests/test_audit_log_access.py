from datetime import timedelta

from odoo import fields
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import ObserversCase


@tagged("post_install", "-at_install")
class TestAuditLogAccess(ObserversCase):
    """Sync mode (no broker in tests): creating a property writes its row inline."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.log_a = cls.Log.search(
            [("event_name", "=", "property.created"), ("res_id", "=", cls.property_a.id)]
        )
        cls.log_b = cls.Log.search(
            [("event_name", "=", "property.created"), ("res_id", "=", cls.property_b.id)]
        )

    def test_fixture_rows_exist(self):
        self.assertEqual(len(self.log_a), 1)
        self.assertEqual(len(self.log_b), 1)

    def test_nobody_edits_or_deletes_not_even_administrators(self):
        for env in (self.env(user=self.admin), self.env):  # administrator, then superuser
            log = self.log_a.with_env(env)
            with self.subTest(su=env.su), self.assertRaises(AccessError):
                log.write({"event_name": "tampered"})
            with self.subTest(su=env.su), self.assertRaises(AccessError):
                log.unlink()
        self.assertEqual(self.log_a.event_name, "property.created")

    def test_only_the_observer_creates_rows(self):
        for user in (self.admin, self.users["auditor_a"], self.users["owner_a"]):
            with self.subTest(user=user.login), self.assertRaises(AccessError):
                self.Log.with_user(user).create({"event_name": "fake", "timestamp": fields.Datetime.now()})

    def test_auditors_read_their_estate_companies_only(self):
        visible = self.Log.with_user(self.users["auditor_a"]).search([])
        self.assertIn(self.log_a, visible)
        self.assertNotIn(self.log_b, visible)
        self.assertTrue(all(self.company_a in log.estate_company_ids for log in visible.sudo()))

    def test_administrators_read_everything(self):
        visible = self.Log.with_user(self.admin).search([])
        self.assertIn(self.log_a, visible)
        self.assertIn(self.log_b, visible)

    def test_other_roles_cannot_read(self):
        for role in ("agent_a", "owner_a", "prospector_a"):
            with self.subTest(role=role), self.assertRaises(AccessError):
                self.Log.with_user(self.users[role]).search([])

    # ------------------------------------------------------------------ retention

    def _aged_rows(self, days_list, tag="aged"):
        now = fields.Datetime.now()
        # sudo - the observer's way of writing rows, with timestamps in the past.
        return self.Log.sudo().create(
            [
                {
                    "event_name": "user.updated",
                    "model": "res.users",
                    "res_id": self.admin.id,
                    "event_uuid": f"{tag}-{index}",
                    "timestamp": now - timedelta(days=days),
                }
                for index, days in enumerate(days_list)
            ]
        )

    def test_retention_deletes_in_chunks_and_reports_progress(self):
        old = self._aged_rows([2000, 1900, 1830])
        recent = self._aged_rows([1800], tag="recent")
        cron = self.env.ref("quicksol_estate_observers.ir_cron_audit_log_retention")
        progress = self.env["ir.cron.progress"].create({"cron_id": cron.id, "done": 0, "remaining": 0})
        model = self.Log.with_context(ir_cron_progress_id=progress.id)
        self.assertEqual(model._purge_expired(chunk=2), (2, 1))
        self.assertEqual(model._cron_purge_expired(), 1)
        self.assertEqual((progress.done, progress.remaining), (1, 0))
        self.assertFalse(old.exists())
        self.assertTrue(recent.exists())
        self.assertTrue(self.log_a.exists())

    def test_retention_is_a_system_parameter(self):
        rows = self._aged_rows([20, 5])
        self.env["ir.config_parameter"].set_param("quicksol_estate_observers.audit_retention_days", "10")
        self.assertEqual(self.Log._purge_expired(), (1, 0))
        self.assertEqual(rows.exists(), rows[1])

    def test_default_retention_is_five_years(self):
        self.assertEqual(self.Log._retention_days(), 1825)
        self.env["ir.config_parameter"].set_param("quicksol_estate_observers.audit_retention_days", "oops")
        self.assertEqual(self.Log._retention_days(), 1825)


@tagged("post_install", "-at_install")
class TestAuditLogCompanies(ObserversCase):
    """Rows belong to the (Odoo) company the acting user worked in: isolated like events."""

    def test_a_manager_of_company_a_reads_none_of_company_b_rows(self):
        companies = self.env["res.company"].create([{"name": "Audit Co A"}, {"name": "Audit Co B"}])
        system = self.env.ref("base.group_system")
        admins = [
            self.env["res.users"]
            .with_context(quicksol_event_bus_disabled=True)
            .create(
                {
                    "name": f"Admin {company.name}",
                    "login": f"audit_admin_{company.id}",
                    "company_id": company.id,
                    "company_ids": [(6, 0, company.ids)],
                    "estate_company_ids": [(6, 0, (self.company_a | self.company_b).ids)],
                    "groups_id": [(6, 0, [system.id])],
                }
            )
            for company in companies
        ]
        Property = self.env["real.estate.property"]
        prop_a = Property.with_user(admins[0]).create(
            {"name": "Row A", "estate_company_id": self.company_a.id}
        )
        prop_b = Property.with_user(admins[1]).create(
            {"name": "Row B", "estate_company_id": self.company_a.id}
        )
        row_a, row_b = (
            self.Log.search([("event_name", "=", "property.created"), ("res_id", "=", prop.id)])
            for prop in (prop_a, prop_b)
        )
        self.assertEqual((row_a.company_id, row_b.company_id), (companies[0], companies[1]))
        visible = self.Log.with_user(admins[0]).search([("id", "in", (row_a | row_b).ids)])
        self.assertEqual(visible, row_a)
        with self.assertRaises(AccessError):
            row_b.with_user(admins[0]).read(["data"])
