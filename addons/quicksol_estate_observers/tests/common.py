"""Shared set-up: the estate fixtures of quicksol_estate, plus the bus in async mode."""

import os
from contextlib import contextmanager
from unittest.mock import patch

from odoo.addons.quicksol_estate.tests.common import EstateCase
from odoo.addons.quicksol_event_bus.models import event_bus
from odoo.addons.quicksol_event_bus.tests.common import trap_events

__all__ = ["ObserversCase", "async_bus", "count_creates", "trap_events"]

# Never contacted: while a trap is active the bus writes the outbox and publishes nothing.
UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:9//"


@contextmanager
def async_bus():
    """Run with a broker configured, so async-capable observers go to the outbox.

    Without a broker the bus is in sync mode (every observer inline), which is what the
    tests outside this context check as the fallback.
    """
    with patch.dict(
        os.environ, {"CELERY_BROKER_URL": UNREACHABLE_BROKER, "EVENT_BUS_SIGNING_KEY": "test-key"}
    ):
        saved = os.environ.pop("EVENT_BUS_SYNC", None)
        event_bus._breakers.clear()
        try:
            yield
        finally:
            if saved is not None:
                os.environ["EVENT_BUS_SYNC"] = saved
            event_bus._breakers.clear()


@contextmanager
def count_creates(env, model):
    """Record the size of every ``create()`` call on ``model`` (a spy: the real create runs)."""
    model_class = type(env[model])
    original = model_class.create
    calls = []

    def spy(self, vals_list):
        calls.append(len(vals_list) if isinstance(vals_list, list) else 1)
        return original(self, vals_list)

    with patch.object(model_class, "create", spy):
        yield calls


class ObserversCase(EstateCase):
    @classmethod
    def setUpClass(cls):
        # Sync mode unless a test asks for async_bus(): the machine's environment (make test
        # exports CELERY_BROKER_URL) must not decide which path a test checks.
        saved = {
            name: os.environ.pop(name)
            for name in ("CELERY_BROKER_URL", "EVENT_BUS_SYNC")
            if name in os.environ
        }
        cls.addClassCleanup(os.environ.update, saved)
        super().setUpClass()
        cls.Log = cls.env["quicksol.audit.log"]
        cls.Line = cls.env["real.estate.commission.transaction"]
        cls.Delivery = cls.env["quicksol.event.delivery"]
        cls.admin = cls.env.ref("base.user_admin")
        cls.agent_a.creci = "12345-F"

    def logs(self, **domain):
        return self.Log.search([(key, "=", value) for key, value in domain.items()])

    def rerun(self, trap_or_ids):
        """Run already-run deliveries again, exactly like a redelivered message would."""
        ids = trap_or_ids
        Delivery = self.Delivery.sudo()
        pairs = [(d.event_id.uuid, d.observer) for d in Delivery.browse(ids)]
        found = Delivery._lock_pairs(pairs)
        return Delivery.browse(list(found.values()))._run_locked()

    @staticmethod
    def delivery_ids(trap):
        return [i for event in trap.events for i in event.delivery_ids]
