"""The Observers screen: the live registry with last-day figures, enable and disable."""

from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import BusCase

ASYNC = "quicksol.test.observer.async"
INLINE = "quicksol.test.observer.inline"
COMMISSION = "quicksol.test.observer.commission"
FLAKY = "quicksol.test.observer.flaky"


@tagged("post_install", "-at_install")
class TestObserverAdmin(BusCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Observer = cls.env["quicksol.event.observer"]
        cls.Observer._sync_registry()
        Users = cls.env["res.users"].with_context(quicksol_event_bus_disabled=True)
        cls.auditor = Users.create(
            {
                "name": "Observer Auditor",
                "login": "observer_auditor",
                "groups_id": [(6, 0, [cls.env.ref("quicksol_event_bus.group_event_bus_auditor").id])],
            }
        )

    def observer(self, name):
        return self.Observer.search([("name", "=", name)])

    def emit(self, name, data):
        with self.async_mode():
            return self.Bus.emit(name, data)

    def test_every_registered_observer_has_a_row_with_its_declaration(self):
        names = set(self.Observer.search([]).mapped("name"))
        registry = {spec.model for spec in self.Bus._observer_index().specs}
        self.assertLessEqual(registry, names)
        row = self.observer(COMMISSION)
        self.assertEqual(
            (row.run_mode, row.queue, row.events, row.installed, row.enabled),
            ("async", "commission_events", "testrec.custom", True, True),
        )
        self.assertEqual(self.observer(INLINE).run_mode, "sync")
        self.assertFalse(self.observer(INLINE).queue)
        self.assertTrue(self.observer("quicksol.test.observer.batch").async_batch)

    def test_opening_the_screen_adds_observers_installed_since(self):
        self.observer(ASYNC).unlink()
        result = self.Observer.web_search_read([], {"name": {}, "p95_ms": {}})
        self.assertIn(ASYNC, [row["name"] for row in result["records"]])
        self.assertTrue(self.observer(ASYNC))

    def test_last_day_counts_percentiles_and_failure_rate(self):
        worker = self.Event.with_user(self.worker)
        ok = [self.emit("testrec.flaky", {}) for _ in range(3)]
        bad = self.emit("testrec.flaky", {"fail": "permanent"})
        for event_uuid in [*ok, bad]:
            worker.run_async(event_uuid, FLAKY)
        self.emit("testrec.flaky", {})  # still pending
        row = self.observer(FLAKY)
        row.invalidate_recordset()
        self.assertEqual((row.day_count, row.day_done, row.day_failed, row.day_pending), (5, 3, 1, 1))
        self.assertAlmostEqual(row.failure_rate, 20.0)
        self.assertGreater(row.p95_ms, 0)
        self.assertGreaterEqual(row.p95_ms, row.p50_ms)

    def test_a_disabled_async_observer_is_skipped_and_the_event_says_so(self):
        self.observer(ASYNC).action_disable()
        event_uuid = self.emit("testrec.custom", {"res_ids": [7]})
        event = self.Event.search([("uuid", "=", event_uuid)])
        by_observer = {d.observer: d for d in event.delivery_ids}
        self.assertEqual((by_observer[ASYNC].state, by_observer[ASYNC].run_mode), ("done", "disabled"))
        self.assertEqual(by_observer[COMMISSION].state, "pending")
        self.Event.with_user(self.worker).run_async(event_uuid, ASYNC)
        self.assertFalse(self.logs(ASYNC, "testrec.custom"))
        # enabled again: the next event reaches it, with no restart
        self.observer(ASYNC).action_enable()
        event_uuid = self.emit("testrec.custom", {})
        self.assertEqual(self.Event.with_user(self.worker).run_async(event_uuid, ASYNC)["status"], "done")
        self.assertTrue(self.logs(ASYNC, "testrec.custom"))

    def test_a_disabled_inline_observer_is_skipped_and_recorded(self):
        self.observer(INLINE).action_disable()
        record = self.Record.create({"name": "no inline log"})
        self.assertFalse(self.logs(INLINE, "testrec.created"))
        event = self.Event.search([("name", "=", "testrec.created")], limit=1)  # the newest
        self.assertIn(record.id, event.res_ids)
        self.assertEqual(event.delivery_ids.filtered(lambda d: d.observer == INLINE).run_mode, "disabled")

    def test_an_auditor_reads_the_registry_but_cannot_disable(self):
        row = self.observer(ASYNC).with_user(self.auditor)
        self.assertTrue(row.read(["name", "events", "p95_ms", "failure_rate"]))
        with self.assertRaises(AccessError):
            row.action_disable()
        self.assertTrue(self.observer(ASYNC).enabled)

    def test_a_plain_user_sees_no_observer(self):
        with self.assertRaises(AccessError):
            self.Observer.with_user(self.user).search([])
