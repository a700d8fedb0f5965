import psycopg2
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import ObserversCase, async_bus, count_creates, trap_events

SPLIT = "quicksol.observer.commission.split"
NOTIFY = "quicksol.observer.commission.notify"
EVENT = "commission.split.calculated"
LINES_CREATED = "commission.lines.created"


@tagged("post_install", "-at_install")
class TestCommissionSplit(ObserversCase):
    def lines_of(self, props):
        return self.Line.search([("property_id", "in", props.ids)])

    def new_props(self, count, company=None, agent=None):
        company = company or self.company_a
        return self.env["real.estate.property"].create(
            [
                {
                    "name": f"Bulk {i}",
                    "estate_company_id": company.id,
                    "state": "available",
                    "agent_id": (agent or self.agent_a).id,
                    "sale_price": 100000 + i,
                }
                for i in range(count)
            ]
        )

    def test_one_sale_runs_inline_even_with_a_broker(self):
        with async_bus(), trap_events(self.env) as trap:
            self.property_a.with_user(self.users["agent_a"]).action_sell()
        event = trap.assert_emitted(EVENT, count=1)
        self.assertIn(SPLIT, event.inline_observers)
        self.assertNotIn(SPLIT, event.async_observers)
        lines = self.lines_of(self.property_a)
        self.assertEqual(
            sorted((line.type, line.agent_id.id, line.amount) for line in lines),
            [("agent", self.agent_a.id, 10500.0), ("prospector", self.prospector_a.id, 4500.0)],
        )

    def test_agents_read_lines_but_cannot_create_them(self):
        agent = self.users["agent_a"]
        self.property_a.with_user(agent).action_sell()
        self.assertEqual(
            len(self.Line.with_user(agent).search([("property_id", "=", self.property_a.id)])), 2
        )
        with self.assertRaises(AccessError):
            self.Line.with_user(agent).create(
                {
                    "property_id": self.property_a.id,
                    "agent_id": self.agent_a.id,
                    "type": "agent",
                    "amount": 1.0,
                }
            )

    def test_bulk_sale_runs_on_a_worker_with_one_batched_create(self):
        first, second = self.new_props(3), self.new_props(2)
        with async_bus(), trap_events(self.env) as trap:
            first.action_sell()
            second.action_sell()
        events = trap.assert_emitted(EVENT, count=2)
        self.assertTrue(all(SPLIT in event.async_observers for event in events))
        self.assertFalse(self.lines_of(first | second), "nothing before the worker runs")
        with count_creates(self.env, "real.estate.commission.transaction") as creates:
            trap.run_async()
        # Both events' deliveries went to one handle_async_batch call: one create of 5 lines.
        self.assertEqual(creates, [5])
        self.assertEqual(len(self.lines_of(first | second)), 5)
        self.assertEqual(
            sum(self.lines_of(first).mapped("amount")), sum(round(p.sale_price * 0.03, 2) for p in first)
        )

    def test_sync_mode_runs_bulk_sales_inline(self):
        # No broker configured (the tests' default): the bus is in sync mode.
        props = self.new_props(3)
        with trap_events(self.env) as trap:
            props.action_sell()
        self.assertIn(SPLIT, trap.assert_emitted(EVENT).inline_observers)
        self.assertEqual(len(self.lines_of(props)), 3)

    def test_sync_context_key_runs_bulk_sales_inline(self):
        props = self.new_props(2)
        with async_bus():
            props.with_context(quicksol_event_bus_sync=True).action_sell()
        self.assertEqual(len(self.lines_of(props)), 2)

    def test_a_property_is_never_split_twice(self):
        props = self.new_props(2)
        with async_bus(), trap_events(self.env) as trap:
            props.action_sell()
        delivery_ids = self.delivery_ids(trap)
        event = trap.assert_emitted(EVENT)
        trap.run_async()
        self.assertEqual(len(self.lines_of(props)), 2)
        # A redelivered message: the bus finds the delivery done.
        results = self.rerun(delivery_ids)
        self.assertIn("already_done", [r["status"] for r in results.values()])
        # The same event handed to the observer again (e.g. emitted twice): nothing new.
        self.env[SPLIT].handle_async_batch([(EVENT, event.data), (EVENT, event.data)])
        self.assertEqual(len(self.lines_of(props)), 2)

    @mute_logger("odoo.sql_db")
    def test_database_refuses_a_second_line_of_a_role(self):
        self.property_a.action_sell()
        with self.assertRaises(psycopg2.IntegrityError), self.env.cr.savepoint():
            self.Line.create(
                {
                    "property_id": self.property_a.id,
                    "agent_id": self.agent_a.id,
                    "type": "agent",
                    "amount": 1.0,
                }
            )

    def test_lines_come_from_the_sale_even_if_the_rate_or_agent_changed_since(self):
        # The split is the one computed at the sale; what the owner changes before the
        # worker runs applies to later sales only (emit() is Python-only: the event's
        # lines come from the sale itself).
        props = self.new_props(2)
        expected = sorted((p.id, "agent", self.agent_a.id, round(p.sale_price * 0.03, 2)) for p in props)
        with async_bus(), trap_events(self.env) as trap:
            props.action_sell()
            other_agent = self.env["real.estate.agent"].create(
                {"name": "Agent A2", "estate_company_id": self.company_a.id}
            )
            self.company_a.commission_rate = 10.0
            props.agent_id = other_agent
            results = trap.run_async()
        self.assertEqual({r["status"] for r in results.values()}, {"done"})
        lines = self.lines_of(props)
        self.assertEqual(
            sorted((line.property_id.id, line.type, line.agent_id.id, line.amount) for line in lines),
            expected,
        )

    def test_lines_are_announced_once_created(self):
        props = self.new_props(3)
        with async_bus(), trap_events(self.env) as trap:
            props.action_sell()
            trap.assert_not_emitted(LINES_CREATED)
            trap.run_async()
            # Emitted from the worker's run, in the transaction that created the lines.
            announced = trap.assert_emitted(LINES_CREATED, count=1)
            trap.run_async()  # the notifier
            # Handed the same sale again: nothing created, nothing announced.
            self.env[SPLIT].handle_async(EVENT, trap.assert_emitted(EVENT).data)
        trap.assert_emitted(LINES_CREATED, count=1)
        lines = self.lines_of(props)
        self.assertEqual(
            announced.data,
            {
                "model": "real.estate.commission.transaction",
                "res_ids": lines.sorted("id").ids,
                "property_ids": sorted(props.ids),
                "agent_ids": [self.agent_a.id],
            },
        )
        self.assertEqual(announced.async_observers, [NOTIFY])

    def test_one_sale_announces_its_lines_inline(self):
        with async_bus(), trap_events(self.env) as trap:
            self.property_a.action_sell()
        announced = trap.assert_emitted(LINES_CREATED, count=1)
        self.assertEqual(announced.inline_observers, [NOTIFY])
        self.assertEqual(sorted(announced.data["res_ids"]), sorted(self.lines_of(self.property_a).ids))

    def test_lines_of_an_unsold_property_are_refused(self):
        unsold = self.new_props(1)
        lines = unsold._commission_split_lines()
        with async_bus(), trap_events(self.env) as trap:
            with self.assertRaisesRegex(ValidationError, "is not sold"):
                self.env[SPLIT].handle_async(
                    EVENT, {"model": unsold._name, "res_ids": unsold.ids, "lines": lines}
                )
        self.assertFalse(self.lines_of(unsold))
        trap.assert_not_emitted(LINES_CREATED)
