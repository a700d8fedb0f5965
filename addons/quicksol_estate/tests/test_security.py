"""Multi-tenancy and role rights: each user reaches only their estate companies."""

from odoo.exceptions import AccessError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import EstateCase


@tagged("post_install", "-at_install")
class TestEstateSecurity(EstateCase):
    def _as(self, login, record):
        return record.with_user(self.users[login])

    def test_users_see_only_their_companies(self):
        for role in ("owner", "agent", "prospector", "auditor"):
            Property = self.env["real.estate.property"].with_user(self.users[f"{role}_a"])
            found = Property.search([("id", "in", (self.property_a | self.property_b).ids)])
            self.assertEqual(found, self.property_a, role)
            companies = (
                self.env["real.estate.company"]
                .with_user(self.users[f"{role}_a"])
                .search([("id", "in", (self.company_a | self.company_b).ids)])
            )
            self.assertEqual(companies, self.company_a, role)

    @mute_logger("odoo.addons.base.models.ir_rule", "odoo.models")
    def test_cannot_touch_other_company(self):
        for role in ("owner", "agent", "prospector", "auditor"):
            prop_b = self._as(f"{role}_a", self.property_b)
            with self.assertRaises(AccessError, msg=role):
                prop_b.read(["name"])
            with self.assertRaises(AccessError, msg=role):
                prop_b.write({"name": "Hijacked"})
            with self.assertRaises(AccessError, msg=role):
                self._as(f"{role}_a", self.agent_b).read(["name"])
        with self.assertRaises(AccessError):
            self._as("agent_a", self.env["real.estate.property"]).create(
                {"name": "Wrong company", "estate_company_id": self.company_b.id}
            )
        with self.assertRaises(AccessError):
            self._as("owner_a", self.company_b).write({"commission_rate": 10})

    @mute_logger("odoo.addons.base.models.ir_rule", "odoo.models")
    def test_nobody_moves_records_into_another_company(self):
        for role in ("owner", "agent"):
            with self.subTest(role=role), self.assertRaises(AccessError):
                self._as(f"{role}_a", self.property_a).write(
                    {"estate_company_id": self.company_b.id, "agent_id": False, "prospector_id": False}
                )
        self.assertEqual(self.property_a.estate_company_id, self.company_a)
        with self.assertRaises(AccessError):
            self.env["real.estate.property"].with_user(self.users["owner_a"]).create(
                {"name": "Smuggled", "estate_company_id": self.company_b.id}
            )
        with self.assertRaises(AccessError):
            self.env["real.estate.agent"].with_user(self.users["owner_a"]).create(
                {"name": "Smuggled agent", "estate_company_id": self.company_b.id}
            )

    def test_agent_and_prospector_rights(self):
        for role in ("agent", "prospector"):
            Property = self._as(f"{role}_a", self.env["real.estate.property"])
            prop = Property.create({"name": f"By {role}", "estate_company_id": self.company_a.id})
            prop.write({"sale_price": 100000})
            with self.assertRaises(AccessError, msg=role):
                prop.unlink()
            with self.assertRaises(AccessError, msg=role):
                self._as(f"{role}_a", self.agent_a).write({"name": "Renamed"})
            with self.assertRaises(AccessError, msg=role):
                self._as(f"{role}_a", self.company_a).write({"commission_rate": 10})

    def test_only_agents_and_owners_sell(self):
        for role in ("prospector", "auditor"):
            with self.assertRaises(AccessError, msg=role):
                self._as(f"{role}_a", self.property_a).write({"state": "sold"})
        self.assertEqual(self.property_a.state, "available")
        self._as("owner_a", self.property_a).action_sell()
        self.assertEqual(self.property_a.state, "sold")

    def test_nobody_but_owner_creates_commissions(self):
        vals = {
            "property_id": self.property_a.id,
            "agent_id": self.agent_a.id,
            "amount": 1.0,
        }
        for role in ("agent", "prospector", "auditor"):
            Transaction = self._as(f"{role}_a", self.env["real.estate.commission.transaction"])
            with self.assertRaises(AccessError, msg=role):
                Transaction.create(dict(vals))
        line = self._as("owner_a", self.env["real.estate.commission.transaction"]).create(vals)
        self.assertEqual(line.estate_company_id, self.company_a)
        self.assertEqual(self._as("auditor_a", line).amount, 1.0)
        with self.assertRaises(AccessError):
            self._as("auditor_b", line).read(["amount"])

    def test_auditor_is_read_only(self):
        for record in (self.property_a, self.agent_a, self.company_a):
            as_auditor = self._as("auditor_a", record)
            self.assertTrue(as_auditor.read(["name"]))
            with self.assertRaises(AccessError):
                as_auditor.write({"name": "Changed"})
            with self.assertRaises(AccessError):
                as_auditor.unlink()
        with self.assertRaises(AccessError):
            self._as("auditor_a", self.env["real.estate.property"]).create(
                {"name": "No", "estate_company_id": self.company_a.id}
            )

    def test_owner_runs_own_company(self):
        self._as("owner_a", self.company_a).write({"commission_rate": 5.0})
        self.assertEqual(self.company_a.commission_rate, 5.0)
        agent = self._as("owner_a", self.env["real.estate.agent"]).create(
            {"name": "New agent", "estate_company_id": self.company_a.id}
        )
        self._as("owner_a", self._new_property(self.company_a, agent)).unlink()

    def test_member_of_both_sees_both(self):
        user = self.users["agent_a"]
        user.estate_company_ids = self.company_a | self.company_b
        found = (
            self.env["real.estate.property"]
            .with_user(user)
            .search([("id", "in", (self.property_a | self.property_b).ids)])
        )
        self.assertEqual(found, self.property_a | self.property_b)

    def test_admin_sees_all(self):
        admin = self.env.ref("base.user_admin")
        self.assertFalse(admin.estate_company_ids & (self.company_a | self.company_b))
        found = (
            self.env["real.estate.property"]
            .with_user(admin)
            .search([("id", "in", (self.property_a | self.property_b).ids)])
        )
        self.assertEqual(found, self.property_a | self.property_b)

    def test_internal_user_without_role_can_read_user_form_fields(self):
        # estate_company_ids is on every user's record: plain internal users must
        # still be able to read users without an AccessError on the comodel.
        plain = self.env["res.users"].create({"name": "Plain", "login": "plain_internal"})
        self.assertFalse(plain.with_user(plain).read(["estate_company_ids"])[0]["estate_company_ids"])
