"""The admin screens in a real headless Chromium: failed events → requeue → done; Observers →
disable one; Broker and workers with the broker stopped. Screenshots in test-artifacts/."""

import socket

from odoo.addons.quicksol_event_bus.tests.browser import BrowserCase
from odoo.tests import tagged

from .common import SIGNING_KEY, bus_environment

FLAKY = "quicksol.test.observer.flaky"
ASYNC = "quicksol.test.observer.async"


@tagged("post_install", "-at_install")
class TestAdminBrowser(BrowserCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Event = cls.env["quicksol.event"]
        cls.worker = cls.env.ref("quicksol_event_bus.user_event_bus_worker")

    def emit(self, name, data):
        with bus_environment(
            CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:9//",
            EVENT_BUS_SIGNING_KEY=SIGNING_KEY,
            EVENT_BUS_SYNC=None,
        ):
            return self.env["quicksol.event.bus"].emit(name, data)

    def test_admin_requeues_a_dead_letter_and_sees_it_done(self):
        failed = self.emit("testrec.flaky", {"fail": "permanent"})
        self.Event.with_user(self.worker).run_async(failed, FLAKY)
        dead = self.emit("testrec.flaky", {"res_ids": [1]})
        self.Event.with_user(self.worker).mark_dead(dead, FLAKY, "retries exhausted: broker maintenance", 1)
        event = self.Event.search([("uuid", "=", dead)])
        self.env.flush_all()

        page = self.open_as("admin")
        self.goto(page, self.action_url("quicksol_event_bus.action_quicksol_event_failed"))
        rows = page.locator(".o_list_view .o_data_row")
        rows.first.wait_for()
        self.assertEqual(rows.count(), 2)
        self.screenshot(page, "admin-failed-events")
        page.locator(".o_data_row", has_text="Dead letter").click()
        page.locator(".o_form_view button[name=action_open_admin_wizard]", has_text="Requeue").click()
        dialog = page.locator(".modal")
        dialog.locator("div[name=reason] textarea").fill("broker maintenance is over")
        self.screenshot(page, "admin-requeue-reason")
        dialog.locator("button[name=action_confirm]").click()
        dialog.wait_for(state="detached")
        page.locator(".o_statusbar_status .o_arrow_button_current", has_text="Pending").wait_for()
        page.locator(".o-mail-Message", has_text="broker maintenance is over").wait_for()
        form_url = page.url
        self.close(page)

        # A worker runs the requeued delivery (what it does over XML-RPC), then the admin looks again.
        self.env.invalidate_all()
        self.assertEqual(event.delivery_ids.state, "pending")
        self.assertEqual(self.Event.with_user(self.worker).run_async(dead, FLAKY)["status"], "done")
        self.env.flush_all()
        page = self.open_as("admin")
        self.goto(page, form_url)
        page.locator(".o_statusbar_status .o_arrow_button_current", has_text="Done").wait_for()
        self.screenshot(page, "admin-event-done")

    def test_admin_opens_observers_and_disables_one(self):
        page = self.open_as("admin")
        self.goto(page, self.action_url("quicksol_event_bus.action_quicksol_event_observer"))
        row = page.locator(".o_data_row", has_text=ASYNC)
        row.wait_for()
        self.screenshot(page, "admin-observers")
        row.locator("td[name=enabled] input").click()
        page.locator(".o_data_row.text-muted", has_text=ASYNC).wait_for()
        self.close(page)
        self.env.invalidate_all()
        observer = self.env["quicksol.event.observer"].search([("name", "=", ASYNC)])
        self.assertFalse(observer.enabled)
        self.assertIn(ASYNC, self.env["quicksol.event.bus"]._disabled_observers())

    def test_admin_opens_broker_and_workers_with_the_broker_stopped(self):
        with socket.socket() as sock:  # a port nobody listens on: the broker is stopped
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with bus_environment(
            CELERY_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{port}//",
            EVENT_BUS_RABBITMQ_MGMT_URL=f"http://guest:guest@127.0.0.1:{port}/",
            EVENT_BUS_FLOWER_URL="http://127.0.0.1:5555/",
            EVENT_BUS_MONITOR_TIMEOUT="0.5",
        ):
            page = self.open_as("admin")
            self.goto(page, self.action_url("quicksol_event_bus.action_quicksol_event_bus_status"))
            alert = page.locator(".o_bus_broker_down")
            alert.wait_for()
            self.assertIn("The broker cannot be reached", alert.inner_text())
            self.assertIn("refused", alert.inner_text().lower())
            self.screenshot(page, "admin-broker-down")
