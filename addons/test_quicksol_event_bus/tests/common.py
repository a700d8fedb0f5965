"""Shared set-up for the bus's Odoo tests."""

import os
from contextlib import contextmanager
from unittest.mock import patch

from odoo.addons.quicksol_event_bus.models import event_bus
from odoo.tests import TransactionCase

from quicksol_bus.publisher import drop_publishers

SIGNING_KEY = "test-signing-key"


@contextmanager
def bus_environment(**variables):
    """Run with these bus environment variables (None removes one); resets breakers."""
    changes = {key: value for key, value in variables.items() if value is not None}
    removed = [key for key, value in variables.items() if value is None]
    with patch.dict(os.environ, changes):
        saved = {key: os.environ.pop(key) for key in removed if key in os.environ}
        event_bus._breakers.clear()
        drop_publishers()
        try:
            yield
        finally:
            os.environ.update(saved)
            event_bus._breakers.clear()
            drop_publishers()


class BusCase(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Record = cls.env["quicksol.test.record"]
        cls.Log = cls.env["quicksol.test.log"]
        cls.Bus = cls.env["quicksol.event.bus"]
        cls.Event = cls.env["quicksol.event"]
        cls.worker = cls.env.ref("quicksol_event_bus.user_event_bus_worker")
        # Without events: other installed addons observe user.created, and their outbox rows
        # would show up in these tests' counts.
        cls.user = (
            cls.env["res.users"]
            .with_context(quicksol_event_bus_disabled=True)
            .create(
                {
                    "name": "Bus Tester",
                    "login": "bus_tester",
                    "lang": "en_US",
                    "groups_id": [(6, 0, [cls.env.ref("base.group_user").id])],
                }
            )
        )

    def logs(self, observer=None, event_name=None):
        domain = []
        if observer:
            domain.append(("observer", "=", observer))
        if event_name:
            domain.append(("event_name", "=", event_name))
        return self.Log.search(domain)

    @contextmanager
    def async_mode(self):
        """A broker URL that is never contacted (nothing commits in these tests)."""
        with bus_environment(
            CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:9//",
            EVENT_BUS_SIGNING_KEY=SIGNING_KEY,
            EVENT_BUS_SYNC=None,
        ):
            yield
