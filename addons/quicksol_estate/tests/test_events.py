"""What the domain emits on the bus, checked with the bus's trap_events helper."""

from odoo.addons.quicksol_event_bus.tests.common import trap_events
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import EstateCase

SPLIT = "commission.split.calculated"


@tagged("post_install", "-at_install")
class TestEstateEvents(EstateCase):
    def _events(self, trap, name):
        return [event for event in trap.events if event.name == name]

    def test_sell_one_property_emits_split(self):
        prop = self.property_a.with_user(self.users["agent_a"])
        with trap_events(self.env) as trap:
            prop.action_sell()
        trap.assert_emitted(SPLIT)
        (event,) = self._events(trap, SPLIT)
        self.assertEqual(event.data["model"], "real.estate.property")
        self.assertEqual(event.data["res_ids"], [self.property_a.id])
        self.assertEqual(
            [(line["type"], line["agent_id"], line["amount"]) for line in event.data["lines"]],
            [
                ("prospector", self.prospector_a.id, 4500.0),
                ("agent", self.agent_a.id, 10500.0),
            ],
        )
        self.assertEqual(self.property_a.state, "sold")
        self.assertTrue(self.property_a.date_sold)

    def test_seed_flow_price_and_state_in_one_write(self):
        # Seed 001: write({state: 'sold', sale_price: 500000}) -> R$ 15,000 of commissions.
        with trap_events(self.env) as trap:
            self.property_a.write({"state": "sold", "sale_price": 500000})
        event = trap.assert_emitted(SPLIT, count=1, res_ids=[self.property_a.id])
        self.assertEqual(sum(line["amount"] for line in event.data["lines"]), 15000.0)

    def test_bulk_sell_emits_one_event(self):
        props = self.property_a | self._new_property(self.company_a, self.agent_a) | self.property_b
        with trap_events(self.env) as trap:
            props.write({"state": "sold"})
        (event,) = self._events(trap, SPLIT)
        self.assertEqual(sorted(event.data["res_ids"]), sorted(props.ids))
        # Two lines for property_a (prospector + agent), one for each of the others.
        self.assertEqual(len(event.data["lines"]), 4)
        self.assertEqual({line["property_id"] for line in event.data["lines"]}, set(props.ids))
        self.assertEqual(
            {line["estate_company_id"] for line in event.data["lines"]},
            {self.company_a.id, self.company_b.id},
        )

    def test_only_newly_sold_properties_are_split(self):
        self.property_b.action_sell()
        with trap_events(self.env) as trap:
            (self.property_a | self.property_b).write({"state": "sold"})
        (event,) = self._events(trap, SPLIT)
        self.assertEqual(event.data["res_ids"], [self.property_a.id])

    def test_no_split_without_sale(self):
        with trap_events(self.env) as trap:
            self.property_a.write({"sale_price": 600000})
            self.property_a.action_sell()
            self.property_a.action_sell()  # already sold: nothing more
        self.assertEqual(len(self._events(trap, SPLIT)), 1)
        self.assertEqual(self._events(trap, SPLIT)[0].data["lines"][1]["amount"], 12600.0)

    def test_huge_sale_is_cut_into_events_under_the_payload_limit(self):
        vals = {
            "name": "Bulk",
            "estate_company_id": self.company_a.id,
            "state": "available",
            "agent_id": self.agent_a.id,
            "prospector_id": self.prospector_a.id,
            "sale_price": 123456.78,
        }
        props = self.env["real.estate.property"].create([dict(vals) for _i in range(501)])
        with trap_events(self.env) as trap:
            props.action_sell()
        events = self._events(trap, SPLIT)
        self.assertEqual([len(event.data["res_ids"]) for event in events], [500, 1])
        self.assertEqual(sum(len(event.data["lines"]) for event in events), 1002)

    def test_sold_is_final(self):
        self.property_a.action_sell()
        with self.assertRaises(UserError):
            self.property_a.state = "available"

    def test_sold_needs_agent_and_price(self):
        with self.assertRaises(ValidationError):
            self._new_property(self.company_a).action_sell()
        with self.assertRaises(ValidationError):
            self._new_property(self.company_a, self.agent_a, price=0).action_sell()

    def test_create_batch_emits_created_once(self):
        vals = [{"name": f"Batch {i}", "estate_company_id": self.company_a.id} for i in range(3)]
        with trap_events(self.env) as trap:
            props = self.env["real.estate.property"].create(vals)
        created = self._events(trap, "property.created")
        self.assertEqual(len(created), 1)
        self.assertEqual(sorted(created[0].data["res_ids"]), sorted(props.ids))
        # The mixin emits before_create only when an observer listens to it.
        self.assertIn(len(self._events(trap, "property.before_create")), (0, 3))

    def test_user_changes_emit_user_events(self):
        with trap_events(self.env) as trap:
            user = self.env["res.users"].create({"name": "Event User", "login": "event_user"})
            user.estate_company_ids = self.company_a
        trap.assert_emitted("user.created", count=1, res_id=user.id)
        before_write = trap.assert_emitted("user.before_write", res_ids=user.ids)
        self.assertIn("estate_company_ids", before_write.data["vals"])
