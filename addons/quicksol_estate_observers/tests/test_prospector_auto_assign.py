from odoo.tests import tagged

from .common import ObserversCase, trap_events

OBSERVER = "quicksol.observer.prospector.auto.assign"


@tagged("post_install", "-at_install")
class TestProspectorAutoAssign(ObserversCase):
    def create_as(self, user, **vals):
        return (
            self.env["real.estate.property"]
            .with_user(user)
            .create({"name": "New listing", "estate_company_id": self.company_a.id, **vals})
        )

    def test_prospector_becomes_the_prospector_inline(self):
        with trap_events(self.env) as trap:
            prop = self.create_as(self.users["prospector_a"])
        before = trap.assert_emitted("property.before_create", count=1)
        self.assertIn(OBSERVER, before.inline_observers)
        self.assertEqual(before.data["vals"]["prospector_id"], self.prospector_a.id)
        self.assertEqual(prop.prospector_id, self.prospector_a)

    def test_company_default_is_used_when_vals_name_none(self):
        prop = (
            self.env["real.estate.property"]
            .with_user(self.users["prospector_a"])
            .create({"name": "No company given"})
        )
        self.assertEqual(prop.estate_company_id, self.company_a)
        self.assertEqual(prop.prospector_id, self.prospector_a)

    def test_every_record_of_a_batch(self):
        props = (
            self.env["real.estate.property"]
            .with_user(self.users["prospector_a"])
            .create([{"name": f"Batch {i}", "estate_company_id": self.company_a.id} for i in range(3)])
        )
        self.assertEqual(props.prospector_id, self.prospector_a)
        self.assertEqual(len(props), 3)

    def test_given_prospector_is_kept(self):
        prop = self.create_as(self.users["prospector_a"], prospector_id=self.agent_a.id)
        self.assertEqual(prop.prospector_id, self.agent_a)

    def test_non_prospectors_are_left_alone(self):
        for role in ("agent_a", "owner_a"):
            with self.subTest(role=role):
                self.assertFalse(self.create_as(self.users[role]).prospector_id)

    def test_prospector_without_agent_record_in_the_company(self):
        # prospector_b has no real.estate.agent record: nothing to assign, no error.
        prop = (
            self.env["real.estate.property"]
            .with_user(self.users["prospector_b"])
            .create({"name": "B listing", "estate_company_id": self.company_b.id})
        )
        self.assertFalse(prop.prospector_id)
        self.assertEqual(prop.estate_company_id, self.company_b)
