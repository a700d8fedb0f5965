from odoo.exceptions import ValidationError
from odoo.tests import tagged

from quicksol_bus.errors import InvalidEventName, PayloadNotSerializable, PayloadTooLarge

from .common import BusCase, bus_environment

INLINE = "quicksol.test.observer.inline"
ASYNC = "quicksol.test.observer.async"


@tagged("post_install", "-at_install")
class TestEmitRouting(BusCase):
    def test_sync_mode_when_no_broker_is_configured(self):
        with bus_environment(CELERY_BROKER_URL=None, EVENT_BUS_SYNC=None):
            result = self.Bus.emit("testrec.custom", {"res_ids": [1]})
        self.assertIsNone(result)
        self.assertEqual(len(self.logs(ASYNC, "testrec.custom")), 1)
        self.assertFalse(self.Event.search([("name", "=", "testrec.custom")]))

    def test_async_capable_observers_go_to_the_outbox(self):
        with self.async_mode():
            event_uuid = self.Bus.emit("testrec.custom", {"res_ids": [7]})
        self.assertTrue(event_uuid)
        self.assertFalse(self.logs(ASYNC), "async observers must not run inline")
        event = self.Event.search([("uuid", "=", event_uuid)])
        self.assertEqual(event.state, "pending")
        self.assertEqual(event.res_ids, [7])
        self.assertEqual(
            {(d.observer, d.queue, d.priority, d.state) for d in event.delivery_ids},
            {
                (ASYNC, "audit_events", 5, "pending"),
                ("quicksol.test.observer.commission", "commission_events", 9, "pending"),
            },
        )

    def test_inline_and_async_observers_of_one_event(self):
        with self.async_mode():
            record = self.Record.create({"name": "one"})
        self.assertEqual(len(self.logs(INLINE, "testrec.created")), 1)
        self.assertFalse(self.logs(ASYNC))
        event = self.Event.search([("name", "=", "testrec.created")])
        self.assertEqual(event.res_ids, record.ids)
        self.assertEqual(event.delivery_ids.observer, ASYNC)

    def test_inline_runs_are_recorded_only_when_an_administrator_asks(self):
        record = self.Record.create({"name": "inline only"})
        with self.async_mode():
            record.write({"value": 1})  # testrec.updated: one inline observer, no async one
        self.assertFalse(self.Event.search([("name", "=", "testrec.updated")]), "off by default")
        with self.async_mode(), bus_environment(EVENT_BUS_LOG_INLINE_EVENTS="1"):
            record.write({"value": 2})
        event = self.Event.search([("name", "=", "testrec.updated")])
        self.assertEqual(event.state, "done")
        self.assertEqual(
            [(d.observer, d.state, d.run_mode) for d in event.delivery_ids], [(INLINE, "done", "inline")]
        )
        self.assertEqual(event.payload["vals"], {"value": 2})

    def test_force_sync_runs_everything_inline_and_returns_none(self):
        with self.async_mode():
            self.assertIsNone(self.Bus.emit("testrec.custom", {"res_ids": []}, force_sync=True))
        self.assertEqual(len(self.logs(event_name="testrec.custom")), 2)
        self.assertFalse(self.Event.search([("name", "=", "testrec.custom")]))

    def test_sync_mode_by_context_and_by_environment(self):
        with self.async_mode():
            self.Bus.with_context(quicksol_event_bus_sync=True).emit("testrec.custom", {})
        with bus_environment(CELERY_BROKER_URL="amqp://x@127.0.0.1:9//", EVENT_BUS_SYNC="1"):
            self.Bus.emit("testrec.custom", {})
        self.assertEqual(len(self.logs(ASYNC, "testrec.custom")), 2)
        self.assertFalse(self.Event.search([("name", "=", "testrec.custom")]))

    def test_unobserved_event_returns_none_and_stores_nothing(self):
        with self.async_mode():
            self.assertIsNone(self.Bus.emit("nobody.listens", {"x": 1}))
        self.assertFalse(self.Event.search([("name", "=", "nobody.listens")]))

    def test_event_keeps_user_company_and_context(self):
        with self.async_mode():
            event_uuid = (
                self.Bus.with_user(self.user)
                .with_context(lang="en_US", tz="Europe/Lisbon", secret="x")
                .emit("testrec.custom", {})
            )
        event = self.Event.search([("uuid", "=", event_uuid)])
        self.assertEqual(event.user_id, self.user)
        self.assertEqual(event.company_id, self.user.company_id)
        self.assertEqual(event.context_snapshot, {"lang": "en_US", "tz": "Europe/Lisbon"})


@tagged("post_install", "-at_install")
class TestBeforeEvents(BusCase):
    def test_veto_prevents_the_write(self):
        count = self.Record.search_count([])
        with self.async_mode(), self.assertRaisesRegex(ValidationError, "vetoed"):
            self.Record.create({"name": "forbidden"})
        self.assertEqual(self.Record.search_count([]), count)
        self.assertFalse(self.logs(INLINE))

    def test_veto_on_write_keeps_the_old_value(self):
        record = self.Record.create({"name": "kept"})
        with self.assertRaises(ValidationError):
            record.write({"name": "forbidden"})
        self.assertEqual(record.name, "kept")

    def test_observers_change_vals_in_place(self):
        record = self.Record.create({"name": "shout"})
        self.assertEqual(record.name, "SHOUT")

    def test_before_events_run_inline_even_for_async_capable_observers(self):
        with self.async_mode():
            self.assertIsNone(self.Bus.emit("testrec.before_create", {"vals": {"name": "a"}}))
        self.assertFalse(self.Event.search([("name", "=", "testrec.before_create")]))


@tagged("post_install", "-at_install")
class TestEmitterMixin(BusCase):
    def test_batch_create_emits_one_created_event(self):
        with self.async_mode():
            records = self.Record.create([{"name": f"r{i}"} for i in range(50)])
        logs = self.logs(INLINE, "testrec.created")
        self.assertEqual(len(logs), 1)
        self.assertEqual(logs.res_ids, ",".join(map(str, records.ids)))
        events = self.Event.search([("name", "=", "testrec.created")])
        self.assertEqual(len(events), 1)
        self.assertEqual(events.res_ids, records.ids)

    def test_large_batches_are_split_into_events_within_the_payload_limit(self):
        from odoo.addons.quicksol_event_bus.tests.common import trap_events

        cls = self.registry["quicksol.test.record"]
        cls._event_ids_per_event = 3
        try:
            with trap_events(self.env) as trap:
                records = self.Record.create([{"name": f"r{i}"} for i in range(7)])
                records.write({"value": 1})
        finally:
            del cls._event_ids_per_event
        created = trap.assert_emitted("testrec.created", count=3)
        self.assertEqual(
            [e.data["res_ids"] for e in created], [records.ids[:3], records.ids[3:6], records.ids[6:]]
        )
        updated = trap.assert_emitted("testrec.updated", count=3)
        self.assertTrue(all(e.data["vals"] == {"value": 1} for e in updated))

    def test_write_and_unlink_events_carry_ids_and_changes(self):
        from odoo.addons.quicksol_event_bus.tests.common import trap_events

        records = self.Record.create([{"name": "a"}, {"name": "b"}])
        with trap_events(self.env) as trap:
            records.write({"value": 3, "when": "2026-01-02"})
            records.unlink()
        updated = trap.assert_emitted("testrec.updated", count=1)
        self.assertEqual(updated.data["res_ids"], records.ids)
        self.assertEqual(updated.data["changed"], ["value", "when"])
        self.assertEqual(updated.data["vals"], {"value": 3, "when": "2026-01-02"})
        self.assertNotIn("res_id", updated.data)
        trap.assert_emitted("testrec.before_write", count=1)
        trap.assert_emitted("testrec.before_unlink", count=1, res_ids=records.ids)
        trap.assert_emitted("testrec.deleted", count=1, res_ids=records.ids)

    def test_secret_values_never_reach_the_outbox(self):
        from odoo.addons.quicksol_event_bus.tests.common import trap_events

        record = self.Record.create({"name": "s"})
        with trap_events(self.env) as trap:
            record.write({"access_token": "do-not-store", "value": 2})
        updated = trap.assert_emitted("testrec.updated")
        self.assertEqual(updated.data["vals"], {"access_token": "***", "value": 2})
        self.assertEqual(record.access_token, "do-not-store")

    def test_binary_and_oversized_values_stay_out_of_the_event_and_never_fail_the_save(self):
        import base64

        from odoo.addons.quicksol_event_bus.tests.common import trap_events

        record = self.Record.create({"name": "big"})
        avatar = base64.b64encode(b"\x89PNG" + b"\0" * 200 * 1024)  # a 200 KB image
        notes = "n" * 300 * 1024  # over the whole payload limit on its own
        with trap_events(self.env) as trap:
            record.write({"document": avatar, "value": 4})
            record.write({"notes": notes, "name": "still small"})
        first, second = trap.assert_emitted("testrec.updated", count=2)
        self.assertEqual(first.data["changed"], ["document", "value"])
        self.assertEqual((first.data["vals"], first.data["omitted"]), ({"value": 4}, ["document"]))
        self.assertEqual(second.data["vals"], {"name": "still small"})
        self.assertEqual(second.data["omitted"], ["notes"])
        self.assertEqual((record.document, record.notes), (avatar, notes))  # the save happened

    def test_an_empty_create_emits_nothing(self):
        from odoo.addons.quicksol_event_bus.tests.common import trap_events

        with trap_events(self.env) as trap:
            self.Record.create([])
        self.assertEqual(trap.events, [])

    def test_single_record_events_carry_res_id(self):
        from odoo.addons.quicksol_event_bus.tests.common import trap_events

        with trap_events(self.env) as trap:
            record = self.Record.create({"name": "solo"})
        self.assertEqual(trap.assert_emitted("testrec.created").data["res_id"], record.id)

    def test_dates_in_vals_are_made_json_safe(self):
        import datetime

        record = self.Record.create({"name": "d"})
        record.write({"when": datetime.date(2026, 5, 1)})
        self.assertEqual(record.when, datetime.date(2026, 5, 1))

    def test_disabled_context_emits_nothing(self):
        from odoo.addons.quicksol_event_bus.tests.common import trap_events

        with trap_events(self.env) as trap:
            self.Record.with_context(quicksol_event_bus_disabled=True).create({"name": "q"})
        self.assertEqual(trap.events, [])
        self.assertFalse(self.logs(INLINE))


@tagged("post_install", "-at_install")
class TestBadInput(BusCase):
    def test_recordset_in_data_names_the_field_and_writes_nothing(self):
        with self.async_mode(), self.assertRaises(PayloadNotSerializable) as info:
            self.Bus.emit("testrec.custom", {"partner": self.env.user.partner_id})
        self.assertIn("data['partner']", str(info.exception))
        self.assertIn("pass ids", str(info.exception))
        self.assertFalse(self.Event.search([("name", "=", "testrec.custom")]))
        self.assertFalse(self.logs())

    def test_payload_over_the_limit_is_refused(self):
        self.env["ir.config_parameter"].set_param("quicksol_event_bus.payload_limit", "64")
        with (
            self.async_mode(),
            bus_environment(EVENT_BUS_PAYLOAD_LIMIT=None),
            self.assertRaisesRegex(PayloadTooLarge, "over the limit of 64 bytes"),
        ):
            self.Bus.emit("testrec.custom", {"text": "x" * 100})
        self.assertFalse(self.Event.search([("name", "=", "testrec.custom")]))

    def test_default_payload_limit_is_256_kib(self):
        with (
            self.async_mode(),
            bus_environment(EVENT_BUS_PAYLOAD_LIMIT=None),
            self.assertRaisesRegex(PayloadTooLarge, "limit of 262144 bytes"),
        ):
            self.Bus.emit("testrec.custom", {"text": "x" * 262144})

    def test_bad_event_names_are_refused(self):
        for name in ("created", "TestRec.Created", "testrec..created", 42):
            with self.subTest(name=name), self.assertRaises(InvalidEventName):
                self.Bus.emit(name, {})

    def test_non_dict_data_is_refused(self):
        with self.assertRaisesRegex(PayloadNotSerializable, "must be a dict"):
            self.Bus.emit("testrec.custom", [1, 2])
