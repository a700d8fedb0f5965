import json

from odoo.tests import tagged

from .common import ObserversCase, async_bus, trap_events

NOTIFY = "quicksol.observer.commission.notify"
EVENT = "commission.split.calculated"


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

    def test_bulk_sale_notifies_from_the_worker_after_the_split(self):
        props = self.property_a | self._new_property(self.company_a, self.agent_a)
        with async_bus(), trap_events(self.env) as trap:
            props.action_sell()
        self.assertIn(NOTIFY, trap.assert_emitted(EVENT).async_observers)
        self.assertFalse(self.mails_to(self.users["agent_a"]))
        trap.run_async()
        mail = self.mails_to(self.users["agent_a"])
        self.assertEqual(len(mail), 1)
        self.assertIn("2 commission line(s)", mail.body_html)

    def test_waits_for_the_split_running_on_another_queue(self):
        props = self.property_a | self._new_property(self.company_a, self.agent_a)
        with async_bus(), trap_events(self.env) as trap:
            props.action_sell()
        event = trap.assert_emitted(EVENT)
        Delivery = self.Delivery.sudo()
        found = Delivery._lock_pairs([(event.uuid, NOTIFY)])
        (result,) = Delivery.browse(list(found.values()))._run_locked().values()
        self.assertEqual(result["status"], "retry", "transient: the worker retries later")
        self.assertIn("BackgroundWorkPending", result["error"])
        self.assertFalse(self.mails_to(self.users["agent_a"]))
        trap.run_async()  # the split, then the notification again
        self.assertEqual(len(self.mails_to(self.users["agent_a"])), 1)
