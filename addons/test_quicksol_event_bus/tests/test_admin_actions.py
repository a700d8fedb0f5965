"""Admin actions on events (retry, requeue, cancel, mark done), their chatter log, the
readable labels and filters, and who may do what."""

from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged

from .common import BusCase

FLAKY = "quicksol.test.observer.flaky"
ASYNC = "quicksol.test.observer.async"


@tagged("post_install", "-at_install")
class TestAdminActions(BusCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Users = cls.env["res.users"].with_context(quicksol_event_bus_disabled=True)
        group = cls.env.ref
        cls.admin = Users.create(
            {
                "name": "Bus Admin",
                "login": "bus_admin_actions",
                "groups_id": [
                    (
                        6,
                        0,
                        [group("base.group_user").id, group("quicksol_event_bus.group_event_bus_manager").id],
                    )
                ],
            }
        )
        cls.auditor = Users.create(
            {
                "name": "Bus Auditor",
                "login": "bus_auditor_actions",
                "groups_id": [(6, 0, [group("quicksol_event_bus.group_event_bus_auditor").id])],
            }
        )

    def emit(self, name, data):
        with self.async_mode():
            return self.Bus.emit(name, data)

    def event(self, event_uuid):
        return self.Event.search([("uuid", "=", event_uuid)])

    def failed_event(self):
        event_uuid = self.emit("testrec.flaky", {"fail": "permanent"})
        self.Event.with_user(self.worker).run_async(event_uuid, FLAKY)
        event = self.event(event_uuid)
        self.assertEqual(event.state, "failed")
        return event

    def dead_event(self):
        # Its observer succeeds now: as after a fixed outage, retries ran out earlier.
        event_uuid = self.emit("testrec.flaky", {})
        self.Event.with_user(self.worker).mark_dead(event_uuid, FLAKY, "retries exhausted", 1)
        event = self.event(event_uuid)
        self.assertEqual(event.state, "dead")
        return event

    def last_note(self, event):
        return event.message_ids.filtered(lambda m: m.message_type == "comment")[:1]

    # ------------------------------------------------------------------ actions

    def test_retry_puts_a_failed_delivery_back_in_the_outbox_and_logs_who_and_why(self):
        event = self.failed_event()
        changed = event.with_user(self.admin).admin_action("retry", "fixed the validation rule")
        self.assertEqual(changed, 1)
        delivery = event.delivery_ids
        self.assertEqual((delivery.state, delivery.publish_attempt, event.state), ("pending", 2, "pending"))
        note = self.last_note(event)
        self.assertEqual(note.author_id, self.admin.partner_id)
        self.assertIn("fixed the validation rule", note.body)
        self.assertIn("Retry", note.body)
        self.assertIn(FLAKY, note.body)

    def test_requeue_a_dead_letter_runs_it_again_and_it_ends_done(self):
        event = self.dead_event()
        event.with_user(self.admin).admin_action("requeue", "broker maintenance is over")
        self.assertEqual(event.delivery_ids.state, "pending")
        self.assertIn("broker maintenance is over", self.last_note(event).body)
        result = self.Event.with_user(self.worker).run_async(event.uuid, FLAKY)
        self.assertEqual(result["status"], "done")
        self.assertEqual(event.state, "done")

    def test_requeue_applies_to_dead_letters_only(self):
        event = self.failed_event()
        with self.assertRaises(UserError):
            event.with_user(self.admin).admin_action("requeue", "wrong button")
        self.assertEqual(event.delivery_ids.state, "failed")
        self.assertFalse(self.last_note(event))

    def test_cancel_finishes_pending_deliveries_without_running_them(self):
        event = self.event(self.emit("testrec.custom", {"res_ids": [1]}))
        self.assertEqual(set(event.delivery_ids.mapped("state")), {"pending"})
        event.with_user(self.admin).admin_action("cancel", "sent by mistake")
        self.assertEqual(set(event.delivery_ids.mapped("state")), {"done"})
        self.assertEqual(set(event.delivery_ids.mapped("run_mode")), {"cancelled"})
        self.assertEqual(event.state, "done")
        # a message still on its way finds the work done and does not run the observer
        result = self.Event.with_user(self.worker).run_async(event.uuid, ASYNC)
        self.assertEqual(result["status"], "already_done")
        self.assertFalse(self.logs(ASYNC, "testrec.custom"))

    def test_mark_done_closes_a_dead_letter_fixed_by_hand(self):
        event = self.dead_event()
        event.with_user(self.admin).admin_action("mark_done", "applied the change manually")
        self.assertEqual((event.delivery_ids.state, event.delivery_ids.run_mode), ("done", "marked_done"))
        self.assertFalse(event.delivery_ids.last_error)
        self.assertEqual(event.state, "done")
        self.assertIn("applied the change manually", self.last_note(event).body)

    def test_bulk_action_changes_and_logs_only_the_events_it_applies_to(self):
        failed, dead = self.failed_event(), self.dead_event()
        both = failed | dead
        changed = both.with_user(self.admin).admin_action("mark_done", "bulk clean-up")
        self.assertEqual(changed, 2)
        self.assertEqual(set(both.mapped("state")), {"done"})
        retried = (self.failed_event() | self.dead_event()).with_user(self.admin)
        self.assertEqual(retried.admin_action("retry", "only the failed one"), 1)
        self.assertEqual(sorted(retried.mapped("state")), ["dead", "pending"])
        dead_one = retried.filtered(lambda e: e.state == "dead")
        self.assertFalse(self.last_note(dead_one))

    def test_a_reason_is_required(self):
        event = self.failed_event()
        with self.assertRaises(UserError):
            event.with_user(self.admin).admin_action("retry", "   ")
        self.assertEqual(event.delivery_ids.state, "failed")

    def test_the_wizard_asks_the_reason_and_applies_the_action(self):
        event = self.failed_event()
        action = event.with_user(self.admin).with_context(admin_action="mark_done").action_open_admin_wizard()
        self.assertEqual(action["res_model"], "quicksol.event.admin.wizard")
        wizard_form = Form(
            self.env["quicksol.event.admin.wizard"].with_user(self.admin).with_context(**action["context"])
        )
        wizard_form.reason = "done in the other system"
        wizard_form.save().action_confirm()
        self.assertEqual(event.state, "done")
        self.assertIn("done in the other system", self.last_note(event).body)

    # ------------------------------------------------------------------ access

    def test_an_auditor_reads_events_and_their_log_but_cannot_act(self):
        event = self.failed_event()
        event.with_user(self.admin).admin_action("retry", "first try")
        as_auditor = event.with_user(self.auditor)
        self.assertEqual(as_auditor.search([("id", "=", event.id)]), event)
        self.assertTrue(as_auditor.message_ids)
        self.assertTrue(as_auditor.delivery_ids.read(["state"]))
        self.assertTrue(self.env["quicksol.event.report"].with_user(self.auditor).search_count([]))
        self.env.flush_all()
        for action in ("retry", "requeue", "cancel", "mark_done"):
            with self.assertRaises(AccessError, msg=action):
                as_auditor.admin_action(action, "not allowed")
        with self.assertRaises(AccessError):
            as_auditor.with_context(admin_action="cancel").action_open_admin_wizard()
        with self.assertRaises(AccessError):
            self.env["quicksol.event.admin.wizard"].with_user(self.auditor).create(
                {"action": "cancel", "event_ids": [(6, 0, event.ids)], "reason": "x"}
            )
        with self.assertRaises(AccessError):
            as_auditor.action_requeue()
        with self.assertRaises(AccessError):
            as_auditor.unlink()

    def test_a_plain_user_sees_no_event_delivery_or_analysis(self):
        self.failed_event()
        for model in ("quicksol.event", "quicksol.event.delivery", "quicksol.event.report"):
            with self.assertRaises(AccessError, msg=model):
                self.env[model].with_user(self.user).search([])
        menu = self.env.ref("quicksol_event_bus.menu_event_bus_app")
        visible = self.env["ir.ui.menu"].with_user(self.user)._visible_menu_ids()
        self.assertNotIn(menu.id, visible)
        self.assertIn(menu.id, self.env["ir.ui.menu"].with_user(self.auditor)._visible_menu_ids())

    def test_events_of_another_company_are_hidden(self):
        other = self.env["res.company"].create({"name": "Other Bus Company"})
        event = self.failed_event()
        self.env.cr.execute("UPDATE quicksol_event SET company_id = %s WHERE id = %s", [other.id, event.id])
        event.invalidate_recordset(["company_id"])
        self.assertFalse(self.Event.with_user(self.admin).search([("id", "=", event.id)]))
        with self.assertRaises(AccessError):
            event.with_user(self.admin).admin_action("retry", "not my company")

    # ------------------------------------------------------------------ readability

    def test_model_and_records_are_readable_and_one_click_away(self):
        record = self.Record.with_context(quicksol_event_bus_disabled=True).create({"name": "Readable one"})
        event = self.event(self.emit("testrec.custom", {"model": record._name, "res_ids": [record.id]}))
        self.assertEqual(event.model_label, self.env["ir.model"]._get(record._name).name)
        self.assertEqual(event.record_names, "Readable one")
        action = event.action_open_record()
        self.assertEqual((action["res_model"], action["res_id"]), (record._name, record.id))

    def test_pending_for_minutes_filter(self):
        event = self.event(self.emit("testrec.custom", {}))
        self.assertIn(event, self.Event.search([("pending_minutes", ">=", 0)]))
        self.assertNotIn(event, self.Event.search([("pending_minutes", ">=", 10)]))
        self.env.cr.execute(
            "UPDATE quicksol_event SET create_date = create_date - interval '11 minutes' WHERE id = %s",
            [event.id],
        )
        event.invalidate_recordset(["create_date"])
        self.assertIn(event, self.Event.search([("pending_minutes", ">=", 10)]))
        self.assertEqual(event.pending_minutes, 11)


@tagged("post_install", "-at_install")
class TestAdminTranslations(BusCase):
    def test_the_admin_screens_speak_brazilian_portuguese(self):
        self.env["res.lang"]._activate_lang("pt_BR")
        self.env["ir.module.module"]._load_module_terms(["quicksol_event_bus"], ["pt_BR"])
        menu = self.env.ref("quicksol_event_bus.menu_event_bus_app_observers").with_context(lang="pt_BR")
        self.assertEqual(menu.name, "Observadores")
        pt = self.env(context={"lang": "pt_BR"})
        run_modes = dict(self.env["quicksol.event.delivery"]._fields["run_mode"]._description_selection(pt))
        self.assertEqual(run_modes["disabled"], "Ignorado: observador desativado")
        actions = dict(self.env["quicksol.event.admin.wizard"]._fields["action"]._description_selection(pt))
        self.assertEqual(actions["requeue"], "Reenfileirar mensagens mortas")
        field = self.env["ir.model.fields"]._get("quicksol.event.bus.status", "outbox_pending")
        self.assertEqual(field.with_context(lang="pt_BR").field_description, "Entregas não publicadas")
        with self.assertRaisesRegex(UserError, "Diga o porquê"):
            self.Event.with_context(lang="pt_BR").browse().admin_action("retry", "")
