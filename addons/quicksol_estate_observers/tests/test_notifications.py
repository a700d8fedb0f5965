import json

from odoo.tests import tagged

from .common import ObserversCase, async_bus, trap_events

NOTIFY = "quicksol.observer.commission.notify"
EVENT = "commission.split.calculated"
LINES_CREATED = "commission.lines.created"


@tagged("post_install", "-at_install")
class TestCommissionNotify(ObserversCase):
    def mails_to(self, user):
        # By name: test users share a generated e-mail address.
        return self.env["mail.mail"].search(
            [("email_to", "ilike", user.name), ("subject", "=", "Your commissions are ready")]
        )

    def bus_notifications(self, user):
        self.env.cr.precommit.run()  # bus.bus rows are written just before commit
        channel = [self.env.cr.dbname, "res.partner", user.partner_id.id]
        messages = [
            json.loads(n.message) for n in self.env["bus.bus"].search([]) if json.loads(n.channel) == channel
        ]
        return [m for m in messages if m["type"] == "simple_notification"]

    def test_one_sale_tells_both_agents_at_once(self):
        self.property_a.with_user(self.users["agent_a"]).action_sell()
        for user in (self.users["agent_a"], self.users["prospector_a"]):
            mail = self.mails_to(user)
            self.assertEqual(len(mail), 1, user.login)
            self.assertEqual(mail.state, "outgoing", "queued for the mail cron")
            self.assertEqual(mail.subject, "Your commissions are ready")
        self.assertIn("10,500.00", self.mails_to(self.users["agent_a"]).body_html)
        notes = self.bus_notifications(self.users["agent_a"])
        self.assertEqual(len(notes), 1)
        self.assertEqual(notes[0]["payload"]["title"], "Your commissions are ready")

    def test_one_sale_with_a_broker_tells_both_agents_when_the_save_returns(self):
        with async_bus(), trap_events(self.env) as trap:
            self.property_a.with_user(self.users["agent_a"]).action_sell()
        self.assertIn(NOTIFY, trap.assert_emitted(LINES_CREATED).inline_observers)
        for user in (self.users["agent_a"], self.users["prospector_a"]):
            self.assertEqual(len(self.mails_to(user)), 1, user.login)

    def test_bulk_sale_notifies_from_the_worker_after_the_split(self):
        props = self.property_a | self._new_property(self.company_a, self.agent_a)
        with async_bus(), trap_events(self.env) as trap:
            props.action_sell()
            self.assertNotIn(NOTIFY, trap.assert_emitted(EVENT).async_observers, "not told about the sale")
            trap.run_async()  # the split: lines, then commission.lines.created
            self.assertFalse(self.mails_to(self.users["agent_a"]))
            announced = trap.assert_emitted(LINES_CREATED, count=1)
            self.assertEqual(announced.async_observers, [NOTIFY])
            results = trap.run_async()  # the notification, once, first try
        self.assertEqual([r["status"] for r in results.values()], ["done"])
        mail = self.mails_to(self.users["agent_a"])
        self.assertEqual(len(mail), 1)
        self.assertIn("2 commission line(s)", mail.body_html)
        self.assertEqual(len(self.mails_to(self.users["prospector_a"])), 1)

    def test_lines_that_no_longer_exist_are_not_told_about(self):
        props = self.property_a | self._new_property(self.company_a, self.agent_a)
        with async_bus(), trap_events(self.env) as trap:
            props.action_sell()
            trap.run_async()
            announced = trap.assert_emitted(LINES_CREATED)
        # Only lines that still exist are told about (read by id when the notifier runs).
        self.env[NOTIFY].handle_async(LINES_CREATED, dict(announced.data, res_ids=[0]))
        self.assertFalse(self.mails_to(self.users["agent_a"]))
