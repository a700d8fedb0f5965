from odoo.addons.quicksol_event_bus.tests.common import trap_events
from odoo.tests import tagged

from .common import BusCase

ASYNC = "quicksol.test.observer.async"


@tagged("post_install", "-at_install")
class TestTrapEvents(BusCase):
    def test_trap_records_routing_and_runs_async_handlers_once(self):
        with self.async_mode(), trap_events(self.env) as trap:
            record = self.Record.create({"name": "t"})
        event = trap.assert_emitted("testrec.created", count=1, res_ids=record.ids)
        self.assertEqual(event.inline_observers[0], "quicksol.test.observer.inline")
        self.assertEqual(event.async_observers, [ASYNC])
        self.assertTrue(event.uuid)
        self.assertFalse(self.logs(ASYNC))
        results = trap.run_async()
        self.assertEqual([r["status"] for r in results.values()], ["done"])
        self.assertEqual(len(self.logs(ASYNC)), 1)
        self.assertEqual(trap.run_async(), {})
        self.assertEqual(len(self.logs(ASYNC)), 1)

    def test_trap_sees_unobserved_events_and_asserts_clearly(self):
        with trap_events(self.env) as trap:
            self.Bus.emit("nobody.listens", {"x": 1})
        trap.assert_emitted("nobody.listens", x=1)
        trap.assert_not_emitted("testrec.created")
        with self.assertRaisesRegex(AssertionError, "was not emitted; emitted: \\['nobody.listens'\\]"):
            trap.assert_emitted("testrec.created")
        with self.assertRaisesRegex(AssertionError, "emitted 1 times, expected 2"):
            trap.assert_emitted("nobody.listens", count=2)

    def test_trap_is_removed_after_the_block(self):
        with trap_events(self.env):
            pass
        self.assertEqual(getattr(self.registry, "_quicksol_event_traps", ()), ())
