import base64

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .. import audit_rules
from .common import ObserversCase, async_bus, count_creates, trap_events

HEADER = "name,street,city,zip,country,federal_state,state,sale_price,agent,estate_company"
AUDIT = "quicksol.observer.security.group.audit"
NOTIFY = "quicksol.observer.property.import.notify"


def csv_file(rows, header=HEADER):
    return base64.b64encode("\n".join([header, *rows]).encode())


@tagged("post_install", "-at_install")
class TestPropertyImport(ObserversCase):
    def wizard(self, rows, user=None, header=HEADER):
        Wizard = self.env["quicksol.property.import.wizard"].with_user(user or self.users["owner_a"])
        return Wizard.create({"file": csv_file(rows, header), "filename": "listings.csv"})

    def good_rows(self, count):
        return [
            f"Listing {i},Rua {i},São Paulo,01000-{i % 1000:03d},BR,SP,available,"
            f'"450.000,{i % 100:02d}",12345-F,TA'
            for i in range(count)
        ]

    def import_mails(self, user):
        return self.env["mail.mail"].search(
            [("subject", "=", "Property import processed"), ("email_to", "ilike", user.name)]
        )

    def imported(self):
        return self.env["real.estate.property"].search([("name", "=like", "Listing %")])

    def test_every_bad_row_is_reported_and_nothing_is_created(self):
        rows = self.good_rows(1000)
        rows[3] = "Listing x,,,,,,available,cheap,12345-F,TA"  # line 5
        rows[498] = ",,,,,,sold,1000,Nobody,TA"  # line 500: three errors
        rows[998] = "Listing y,,,,,,available,1000,,TB"  # line 1000: another agency
        rows[999] = "Listing z,,,,XX,,available,1000,,Test Estate A"  # line 1001
        wizard = self.wizard(rows)
        with trap_events(self.env) as trap:
            wizard.action_import()
        self.assertEqual(wizard.state, "error")
        self.assertEqual((wizard.row_count, wizard.error_count), (1000, 6))
        report = wizard.error_report.splitlines()
        self.assertEqual(
            report,
            [
                'Line 5, column sale_price: "cheap" is not a price (e.g. 450000.00 or 450.000,00).',
                'Line 500, column name: "name" is required.',
                'Line 500, column agent: No agent "Nobody" (name or CRECI) in this estate company.',
                'Line 500, column state: Sold properties cannot be imported ("sold"): import them '
                "as available and sell them, so that the commission is split.",
                'Line 1000, column estate_company: Unknown estate company "TB" (give its code or name).',
                'Line 1001, column country: Unknown country "XX" (give its code, e.g. BR).',
            ],
        )
        self.assertFalse(self.imported())
        self.assertFalse(trap.events, "nothing created, nothing emitted")

    def test_header_problems_stop_before_the_rows(self):
        wizard = self.wizard(["A,TA"], header="title,estate_company")
        wizard.action_check()
        self.assertEqual(
            wizard.error_report.splitlines(),
            [
                'Line 1: The required column "name" is missing.',
                'Line 1: Unknown column "title". Expected columns: name, street, street2, zip, city, '
                "federal_state, country, state, sale_price, agent, estate_company.",
            ],
        )

    def test_check_only_creates_nothing(self):
        wizard = self.wizard(self.good_rows(5))
        wizard.action_check()
        self.assertEqual((wizard.state, wizard.row_count), ("checked", 5))
        self.assertFalse(self.imported())

    def test_a_thousand_rows_in_one_create_audited_and_notified_in_the_background(self):
        owner = self.users["owner_a"]
        wizard = self.wizard(self.good_rows(1000))
        with async_bus(), trap_events(self.env) as trap:
            with count_creates(self.env, "real.estate.property") as creates:
                wizard.action_import()
            self.assertEqual(creates, [1000])
            self.assertEqual((wizard.state, wizard.created_count, wizard.batch_count), ("done", 1000, 1))
            props = self.imported()
            self.assertEqual(len(props), 1000)
            self.assertEqual(wizard.property_ids, props)
            first = props.filtered(lambda p: p.name == "Listing 7")
            self.assertEqual(
                (
                    first.agent_id,
                    first.estate_company_id,
                    first.state,
                    first.sale_price,
                    first.state_id.code,
                    first.country_id.code,
                ),
                (self.agent_a, self.company_a, "available", 450000.07, "SP", "BR"),
            )
            created = trap.assert_emitted("property.created", count=1)
            self.assertIn(AUDIT, created.async_observers)
            completed = trap.assert_emitted("property.import.completed", count=1)
            self.assertEqual(completed.data["count"], 1000)
            self.assertEqual(completed.data["id_ranges"], audit_rules.id_ranges(props.ids))
            self.assertEqual(completed.async_observers, [AUDIT])
            self.assertEqual(created.data["import_id"], completed.data["emission_id"])
            self.assertEqual(wizard.event_uuid, completed.uuid)
            audit = self.Log.search([("event_name", "=", "property.created"), ("res_id", "in", props.ids)])
            self.assertFalse(audit, "the audit runs on a worker, not in the import")
            with count_creates(self.env, "quicksol.audit.log") as audit_creates:
                trap.run_async()
            self.assertEqual(audit_creates, [1000])
            audit = self.Log.search([("event_name", "=", "property.created"), ("res_id", "in", props.ids)])
            self.assertEqual(len(audit), 1000)
            self.assertEqual(audit.user_id, owner)
            self.assertEqual(set(audit.mapped("event_uuid")), {completed.data["emission_id"]})
            self.assertFalse(self.import_mails(owner), "told after the audit, by the next event")
            audited = trap.assert_emitted("property.import.audited", count=1)
            self.assertEqual(audited.async_observers, [NOTIFY])
            results = trap.run_async()
        self.assertEqual([r["status"] for r in results.values()], ["done"])
        mail = self.import_mails(owner)
        self.assertEqual(len(mail), 1)
        self.assertIn(
            "1000 properties imported from listings.csv; audit trail recorded for 1000 of them.",
            mail.body_html,
        )

    def test_notification_follows_the_audit_exactly_once(self):
        owner = self.users["owner_a"]
        wizard = self.wizard(self.good_rows(3))
        with async_bus(), trap_events(self.env) as trap:
            wizard.action_import()
            self.assertNotIn(NOTIFY, trap.assert_emitted("property.import.completed").async_observers)
            trap.assert_not_emitted("property.import.audited")
            audit_runs = self.delivery_ids(trap)
            trap.run_async()
            audited = trap.assert_emitted("property.import.audited", count=1)
            self.assertEqual(
                {key: audited.data[key] for key in ("count", "audited", "filename")},
                {"count": 3, "audited": 3, "filename": "listings.csv"},
            )
            notify_runs = self.delivery_ids(trap)
            trap.run_async()
            # Redelivered messages of the audit and of the notification: already done.
            results = self.rerun(audit_runs + notify_runs)
        self.assertEqual({r["status"] for r in results.values()}, {"already_done"})
        trap.assert_emitted("property.import.audited", count=1)
        self.assertEqual(len(self.import_mails(owner)), 1)
        self.assertEqual(
            self.Log.search_count(
                [("event_name", "=", "property.created"), ("res_id", "in", wizard.property_ids.ids)]
            ),
            3,
        )

    def test_an_imported_wizard_never_imports_again(self):
        wizard = self.wizard(self.good_rows(2))
        wizard.action_import()
        self.assertEqual((wizard.state, len(self.imported())), ("done", 2))
        # state is read-only in the form only; over RPC a user could write it back.
        for vals in ({"state": "draft"}, {"property_ids": [Command.clear()]}, {"created_count": 0}):
            with self.assertRaises(AccessError), self.env.cr.savepoint():
                wizard.write(vals)
        with self.assertRaises(AccessError):
            self.env["quicksol.property.import.wizard"].with_user(self.users["owner_a"]).create(
                {"file": csv_file(self.good_rows(1)), "state": "checked"}
            )
        with self.assertRaisesRegex(UserError, "already imported"):
            wizard.action_import()
        with self.assertRaisesRegex(UserError, "already imported"):
            wizard.action_check()  # would set the state back to "checked"
        self.assertEqual((wizard.state, len(self.imported())), ("done", 2))

    def test_sync_mode_imports_audits_and_notifies_inline(self):
        wizard = self.wizard(self.good_rows(4))
        wizard.action_import()
        props = self.imported()
        self.assertEqual(len(props), 4)
        self.assertEqual(
            self.Log.search_count([("event_name", "=", "property.created"), ("res_id", "in", props.ids)]), 4
        )
        self.assertTrue(self.env["mail.mail"].search([("subject", "=", "Property import processed")]))

    def test_prospectors_importing_become_the_prospector(self):
        rows = ["Captured 1,,,,,,draft,,,TA", "Captured 2,,,,,,,,Agent A,Test Estate A"]
        wizard = self.wizard(rows, user=self.users["prospector_a"])
        wizard.action_import()
        props = self.env["real.estate.property"].search([("name", "like", "Captured")])
        self.assertEqual(len(props), 2)
        self.assertEqual(props.prospector_id, self.prospector_a)

    def test_semicolon_files_in_latin1(self):
        content = ("name;estate_company;sale_price\nCasa Açaí;ta;1.500.000,00\n").encode("latin-1")
        wizard = (
            self.env["quicksol.property.import.wizard"]
            .with_user(self.users["owner_a"])
            .create({"file": base64.b64encode(content), "filename": "latin.csv"})
        )
        wizard.action_import()
        prop = self.env["real.estate.property"].search([("name", "=", "Casa Açaí")])
        self.assertEqual((wizard.state, prop.sale_price), ("done", 1500000.0))
