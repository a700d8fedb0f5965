"""Owners add users to their own estate companies: only estate roles, only their companies."""

from odoo.addons.mail.tests.common import MockEmail
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import ESTATE_GROUPS, EstateCase


@tagged("post_install", "-at_install")
class TestOwnerCreatesUsers(EstateCase, MockEmail):
    def create_as(self, user, **values):
        values.setdefault("name", "New Agent")
        values.setdefault("login", "new_agent_a")
        return self.env["res.users"].with_user(user).create_estate_user(values)

    def test_plain_create_is_still_refused_to_owners(self):
        with self.assertRaises(AccessError):
            self.env["res.users"].with_user(self.users["owner_a"]).create({"name": "X", "login": "x_plain"})

    def test_owner_creates_an_agent_of_his_company(self):
        owner = self.users["owner_a"]
        with self.mock_mail_gateway():
            user_id = self.create_as(
                owner,
                estate_company_ids=self.company_a.ids,
                roles=["agent", "prospector"],
                email="n@example.com",
            )
        user = self.env["res.users"].browse(user_id)
        self.assertEqual(user.estate_company_ids, self.company_a)
        self.assertTrue(user.has_group(f"{ESTATE_GROUPS}agent"))
        self.assertTrue(user.has_group(f"{ESTATE_GROUPS}prospector"))
        self.assertTrue(user.has_group("base.group_user"))
        for xmlid in ("base.group_erp_manager", "base.group_system", f"{ESTATE_GROUPS}owner"):
            self.assertFalse(user.has_group(xmlid), xmlid)
        self.assertFalse(owner.has_group("base.group_erp_manager"))
        self.assertEqual(user.company_id, owner.company_id)
        # invited: Odoo's signup module e-mails the link to choose a password
        invitations = [mail for mail in self._mails if "n@example.com" in " ".join(mail["email_to"])]
        self.assertEqual(len(invitations), 1, self._mails)
        # the new user sees his company's property, not the other one
        Property = self.env["real.estate.property"].with_user(user)
        self.assertEqual(
            Property.search([("id", "in", (self.property_a | self.property_b).ids)]), self.property_a
        )

    def test_owner_cannot_give_a_foreign_company(self):
        count = self.env["res.users"].search_count([])
        for companies in (self.company_b.ids, (self.company_a | self.company_b).ids):
            with self.assertRaises(AccessError) as caught:
                self.create_as(self.users["owner_a"], estate_company_ids=companies, roles=["agent"])
            self.assertIn("estate companies you belong to", str(caught.exception))
        self.assertEqual(self.env["res.users"].search_count([]), count)

    def test_owner_cannot_grant_administration_or_other_groups(self):
        owner = self.users["owner_a"]
        count = self.env["res.users"].search_count([])
        for roles in (["admin"], ["owner"], ["base.group_system"], [self.env.ref("base.group_system").id]):
            with self.assertRaises(UserError, msg=str(roles)):
                self.create_as(owner, estate_company_ids=self.company_a.ids, roles=roles)
        forbidden = (
            {"groups_id": [(4, self.env.ref("base.group_system").id)]},
            {"sel_groups_1_2_3": 3},
            {"in_group_2": True},
            {"company_ids": [(6, 0, [1])]},
            {"password": "x"},
            {"share": False},
        )
        for extra in forbidden:
            with self.assertRaises(UserError, msg=str(extra)):
                self.create_as(owner, estate_company_ids=self.company_a.ids, roles=["agent"], **extra)
        self.assertEqual(self.env["res.users"].search_count([]), count)

    def test_only_owners_may_call_it(self):
        for role in ("agent_a", "prospector_a", "auditor_a"):
            with self.assertRaises(AccessError, msg=role):
                self.create_as(self.users[role], estate_company_ids=self.company_a.ids, roles=["agent"])

    def test_a_company_is_required(self):
        with self.assertRaises(UserError):
            self.create_as(self.users["owner_a"], estate_company_ids=[], roles=["agent"])

    def test_refusals_are_translated_to_brazilian_portuguese(self):
        self.env["res.lang"]._activate_lang("pt_BR")
        self.env["ir.module.module"]._load_module_terms(["quicksol_estate"], ["pt_BR"])
        Users = self.env["res.users"].with_user(self.users["owner_a"]).with_context(lang="pt_BR")
        values = {"name": "X", "login": "x_pt", "roles": ["agent"]}
        with self.assertRaises(AccessError) as caught:
            Users.create_estate_user(dict(values, estate_company_ids=self.company_b.ids))
        self.assertIn("imobiliárias às quais pertence", str(caught.exception))
        with self.assertRaises(UserError) as caught:
            Users.create_estate_user(dict(values, estate_company_ids=[]))
        self.assertIn("Não é possível criar este usuário", str(caught.exception))
        with self.assertRaises(AccessError) as caught:
            Users.with_user(self.users["agent_a"]).create_estate_user(
                dict(values, estate_company_ids=self.company_a.ids)
            )
        self.assertIn("Somente proprietários", str(caught.exception))
