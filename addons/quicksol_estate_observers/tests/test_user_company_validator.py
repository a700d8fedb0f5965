from odoo import Command
from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import ObserversCase, trap_events

OBSERVER = "quicksol.observer.user.company.validator"


@tagged("post_install", "-at_install")
class TestUserCompanyValidator(ObserversCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Owners who manage users also have Access Rights (see quicksol_estate's CONFIGURE).
        cls.owner = cls.users["owner_a"]
        # (and Contact Creation: a user is also a contact).
        cls.owner.groups_id = [
            Command.link(cls.env.ref("base.group_erp_manager").id),
            Command.link(cls.env.ref("base.group_partner_manager").id),
        ]
        cls.Users = cls.env["res.users"].with_user(cls.owner)
        cls.target = cls.users["agent_a"]

    def forms(self, company):
        return {
            "tuple set": [(6, 0, [company.id])],
            "tuple link": [(4, company.id)],
            "list link": [[4, company.id, 0]],
            "Command.set": [Command.set([company.id])],
            "Command.link": [Command.link(company.id)],
            "plain ids": [company.id],
            "set with own": [Command.set([self.company_a.id, company.id])],
        }

    def test_owner_cannot_create_a_user_in_another_company(self):
        for form, value in self.forms(self.company_b).items():
            login = f"foreign_{form.replace(' ', '_').lower()}"
            with self.subTest(form=form), self.assertRaisesRegex(AccessError, "multi-tenancy"):
                self.Users.create({"name": "Foreign", "login": login, "estate_company_ids": value})
            self.assertFalse(
                self.env["res.users"].with_context(active_test=False).search([("login", "=", login)]),
                "nothing may be written",
            )

    def test_owner_cannot_add_another_company_to_a_user(self):
        for form, value in self.forms(self.company_b).items():
            with self.subTest(form=form), self.assertRaises(AccessError):
                self.Users.browse(self.target.id).write({"estate_company_ids": value})
            self.target.invalidate_recordset()
            self.assertEqual(self.target.estate_company_ids, self.company_a)

    def test_veto_runs_inline_before_the_write(self):
        index = self.env["quicksol.event.bus"]._observer_index()
        for event_name in ("user.before_create", "user.before_write"):
            plan = index.plan(event_name, force_sync=False, sync_mode=False)
            self.assertIn(OBSERVER, [spec.model for spec in plan.inline])
        with trap_events(self.env) as trap, self.assertRaises(AccessError):
            self.Users.browse(self.target.id).write({"estate_company_ids": [Command.link(self.company_b.id)]})
        # The veto raised inside emit(): no after-event, the write never happened.
        trap.assert_not_emitted("user.updated")

    def test_owner_gives_own_company(self):
        for form, value in self.forms(self.company_a).items():
            login = f"own_{form.replace(' ', '_').lower()}"
            with self.subTest(form=form):
                user = self.Users.create({"name": "Own", "login": login, "estate_company_ids": value})
                self.assertEqual(user.sudo().estate_company_ids, self.company_a)

    def test_owner_cannot_create_a_company_through_a_user(self):
        with self.assertRaises(AccessError):
            self.Users.browse(self.target.id).write(
                {"estate_company_ids": [Command.create({"name": "Sneaky", "code": "SN"})]}
            )
        self.assertFalse(self.env["real.estate.company"].search([("code", "=", "SN")]))

    def test_keeping_a_company_the_user_already_has_is_not_giving_it(self):
        both = self.company_a | self.company_b
        self.target.estate_company_ids = both  # set by an administrator
        self.Users.browse(self.target.id).write({"estate_company_ids": [Command.set(both.ids)]})
        self.Users.browse(self.target.id).write({"estate_company_ids": [Command.unlink(self.company_b.id)]})
        self.assertEqual(self.target.estate_company_ids, self.company_a)

    def test_administrators_are_not_restricted(self):
        admin_owner = self.users["owner_b"]
        admin_owner.groups_id = [
            Command.link(self.env.ref("base.group_system").id),
            Command.link(self.env.ref("base.group_partner_manager").id),
        ]
        user = (
            self.env["res.users"]
            .with_user(admin_owner)
            .create(
                {
                    "name": "Cross",
                    "login": "cross_admin",
                    "estate_company_ids": [Command.set(self.company_a.ids)],
                }
            )
        )
        self.assertEqual(user.estate_company_ids, self.company_a)

    def test_other_writes_of_owners_pass(self):
        self.Users.browse(self.target.id).write({"name": "Renamed agent"})
        self.assertEqual(self.target.name, "Renamed agent")
