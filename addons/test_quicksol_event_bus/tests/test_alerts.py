"""Alerts: one incident per signal (one activity, one e-mail), updated while it lasts, closed
when it clears; the Prometheus gauges of the same signals."""

from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import BusCase

HEALTHY_BROKER = {
    "reachable": True,
    "error": "",
    "queues": [
        {
            "name": "audit_events",
            "messages": 0,
            "ready": 0,
            "unacked": 0,
            "consumers": 1,
            "dead_letters": 0,
            "exists": True,
        }
    ],
}


@tagged("post_install", "-at_install")
class TestAlerts(BusCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Incident = cls.env["quicksol.event.bus.incident"]
        cls.Incident.search([]).unlink()
        Users = cls.env["res.users"].with_context(quicksol_event_bus_disabled=True, no_reset_password=True)
        ref = cls.env.ref
        cls.admins = Users.create(
            [
                {
                    "name": f"Alert Admin {i}",
                    "login": f"alert_admin_{i}",
                    "email": f"alert_admin_{i}@example.com",
                    "groups_id": [
                        (
                            6,
                            0,
                            [ref("base.group_user").id, ref("quicksol_event_bus.group_event_bus_manager").id],
                        )
                    ],
                }
                for i in (1, 2)
            ]
        )

    def snapshot(self, **overrides):
        data = self.env["quicksol.event.bus.monitor"].snapshot(with_remote=False)
        data.update(
            broker=dict(HEALTHY_BROKER), workers={"reachable": True, "error": "", "workers": ["celery@w1"]}
        )
        data["failure_rate"] = 0.0
        data["outbox"] = {"pending": 0, "oldest_pending_seconds": 0.0}
        data["deliveries_by_queue"] = {}
        data.update(overrides)
        return data

    def mails(self, incident):
        return self.env["mail.mail"].search([("model", "=", incident._name), ("res_id", "=", incident.id)])

    def test_a_lasting_signal_is_one_incident_one_activity_one_mail_then_closed(self):
        lagging = self.snapshot(outbox={"pending": 4, "oldest_pending_seconds": 900.0})
        self.Incident._check_alerts(lagging)
        incident = self.Incident.search([("key", "=", "outbox_lag"), ("state", "=", "open")])
        self.assertEqual(len(incident), 1)
        self.assertEqual(incident.kind, "outbox_lag")
        self.assertEqual(len(incident.activity_ids), 1)
        self.assertIn(incident.activity_ids.user_id, self.Incident._admins())
        mail = self.mails(incident)
        self.assertEqual(len(mail), 1)
        self.assertLessEqual(self.admins.partner_id, mail.recipient_ids)
        # the next minutes: still lagging, the same incident, no new activity or mail
        for age in (960.0, 1020.0):
            self.Incident._check_alerts(self.snapshot(outbox={"pending": 4, "oldest_pending_seconds": age}))
        self.assertEqual(self.Incident.search([("key", "=", "outbox_lag")]), incident)
        self.assertEqual(
            (incident.value, len(self.mails(incident)), len(incident.activity_ids)), (1020.0, 1, 1)
        )
        # cleared: closed, its activity done
        self.Incident._check_alerts(self.snapshot())
        self.assertEqual(incident.state, "closed")
        self.assertTrue(incident.closed_at)
        self.assertFalse(incident.activity_ids)
        # back again: a new incident
        self.Incident._check_alerts(lagging)
        self.assertEqual(self.Incident.search_count([("key", "=", "outbox_lag")]), 2)

    def test_every_kind_of_signal_opens_its_incident(self):
        broker = {
            **HEALTHY_BROKER,
            "queues": [{**HEALTHY_BROKER["queues"][0], "messages": 5000, "dead_letters": 3}],
        }
        self.Incident._check_alerts(
            self.snapshot(
                broker=broker, workers={"reachable": True, "error": "", "workers": []}, failure_rate=0.5
            )
        )
        keys = set(self.Incident.search([("state", "=", "open")]).mapped("key"))
        self.assertEqual(
            keys, {"queue_depth:audit_events", "dead_letters:audit_events", "workers_offline", "failure_rate"}
        )
        self.Incident._check_alerts(
            self.snapshot(
                broker={"reachable": False, "error": "connection refused", "queues": []},
                workers={"reachable": False, "error": "connection refused", "workers": []},
            )
        )
        self.assertEqual(self.Incident.search([("state", "=", "open")]).mapped("key"), ["broker_down"])

    def test_thresholds_are_settings(self):
        self.env["ir.config_parameter"].set_param("quicksol_event_bus.alert_outbox_lag", "2000")
        self.Incident._check_alerts(self.snapshot(outbox={"pending": 4, "oldest_pending_seconds": 900.0}))
        self.assertFalse(self.Incident.search([("state", "=", "open")]))

    def test_the_cron_checks_a_real_snapshot(self):
        cron = self.env.ref("quicksol_event_bus.ir_cron_check_alerts")
        self.assertEqual((cron.interval_number, cron.interval_type, cron.active), (1, "minutes", True))
        signals = self.Incident._check_alerts()  # this process's real settings: no broker is configured
        self.assertEqual(set(self.Incident.search([("state", "=", "open")]).mapped("key")), set(signals))

    def test_a_plain_user_sees_no_incident(self):
        with self.assertRaises(AccessError):
            self.Incident.with_user(self.user).search([])
