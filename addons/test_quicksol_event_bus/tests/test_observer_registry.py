from odoo.tests import tagged

from quicksol_bus.errors import ObserverDeclarationError

from .common import BusCase

TEST_OBSERVERS = {
    "quicksol.test.observer.inline",
    "quicksol.test.observer.async",
    "quicksol.test.observer.commission",
    "quicksol.test.observer.before",
    "quicksol.test.observer.flaky",
    "quicksol.test.observer.batch",
    "quicksol.bench.observer.inline",
    "quicksol.bench.observer.async",
}


@tagged("post_install", "-at_install")
class TestObserverRegistry(BusCase):
    def test_observers_are_discovered_from_the_registry(self):
        index = self.Bus._observer_index()
        self.assertTrue(TEST_OBSERVERS <= {spec.model for spec in index.specs})
        self.assertNotIn("quicksol.abstract.observer", {spec.model for spec in index.specs})

    def test_index_is_cached_per_registry(self):
        self.assertIs(self.Bus._observer_index(), self.registry._quicksol_observer_index)
        self.assertIs(self.Bus._observer_index(), self.Bus._observer_index())

    def test_order_is_sequence_then_name(self):
        observers = [s.model for s in self.Bus._observer_index().observers("testrec.created")]
        self.assertEqual(observers[:2], ["quicksol.test.observer.inline", "quicksol.test.observer.async"])
        custom = [s.model for s in self.Bus._observer_index().observers("testrec.custom")]
        self.assertEqual(custom, ["quicksol.test.observer.async", "quicksol.test.observer.commission"])

    def test_declarations_are_read(self):
        spec = self.Bus._observer_index().get("quicksol.test.observer.commission")
        self.assertTrue(spec.async_capable)
        self.assertEqual(spec.queue, "commission_events")
        self.assertEqual(spec.effective_priority, 9)
        self.assertEqual(self.Bus._observer_index().get("quicksol.test.observer.async").queue, "audit_events")

    def _assert_bad_declaration(self, attribute, value, message):
        cls = self.registry["quicksol.test.observer.async"]
        saved = cls.__dict__.get(attribute, AttributeError)
        setattr(cls, attribute, value)
        try:
            with self.assertRaisesRegex(ObserverDeclarationError, message):
                self.Bus._build_observer_index()
        finally:
            if saved is AttributeError:
                delattr(cls, attribute)
            else:
                setattr(cls, attribute, saved)
        self.Bus._build_observer_index()  # healthy again

    def test_no_events_fails_loudly(self):
        self._assert_bad_declaration("_observe_events", [], "quicksol.test.observer.async.*no events")

    def test_unknown_queue_fails_loudly(self):
        self._assert_bad_declaration("_async_queue", "express", "unknown queue 'express'")

    def test_ill_formed_event_name_fails_loudly(self):
        self._assert_bad_declaration("_observe_events", ["TestRec Created"], "invalid event name")

    def test_register_hook_rebuilds_and_checks_the_index(self):
        cls = self.registry["quicksol.test.observer.async"]
        cls._async_queue = "nowhere"
        try:
            with self.assertRaisesRegex(ObserverDeclarationError, "nowhere"):
                self.Bus._register_hook()
        finally:
            del cls._async_queue
        self.Bus._register_hook()
        self.assertIn(
            "quicksol.test.observer.async", {s.model for s in self.registry._quicksol_observer_index.specs}
        )

    def test_handle_is_not_callable_over_rpc(self):
        from odoo.exceptions import AccessError
        from odoo.service.model import get_public_method

        for method in ("handle", "handle_async", "handle_async_batch"):
            with self.assertRaises(AccessError):
                get_public_method(self.env["quicksol.test.observer.inline"], method)
        with self.assertRaises(AccessError):  # nobody forges events over RPC
            get_public_method(self.Bus, "emit")
