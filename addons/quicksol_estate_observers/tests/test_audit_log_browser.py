"""An auditor opens the audit log in a real headless Chromium and filters it."""

from odoo.addons.quicksol_event_bus.tests.browser import BrowserCase
from odoo.tests import tagged

from .common import ObserversCase


@tagged("post_install", "-at_install")
class TestAuditLogBrowser(BrowserCase, ObserversCase):
    def test_auditor_opens_the_audit_log_and_filters_it(self):
        auditor = self.users["auditor_a"]
        visible = self.Log.with_user(auditor).search([])
        properties = visible.filtered(lambda log: log.model == "real.estate.property")
        self.assertTrue(properties)
        self.assertLess(len(properties), len(visible))  # the filter has something to remove
        self.assertNotIn(self.property_b.id, properties.mapped("res_id"))  # not their company
        self.env.flush_all()

        page = self.open_as(auditor.login)
        self.goto(page, self.action_url("quicksol_estate_observers.quicksol_audit_log_action"))
        rows = page.locator(".o_list_view .o_data_row")
        rows.first.wait_for()
        self.screenshot(page, "auditor-audit-log")
        page.locator(".o_searchview_dropdown_toggler").click()
        page.locator(".o_filter_menu .o_menu_item", has_text="Property Events").click()
        page.locator(".o_searchview_facet", has_text="Property Events").wait_for()
        page.wait_for_function(
            "(count) => document.querySelectorAll('.o_list_view .o_data_row').length === count",
            arg=len(properties),
        )
        page.keyboard.press("Escape")
        self.screenshot(page, "auditor-audit-log-filtered")
        # reading only: no create button, no edit of a row
        self.assertEqual(page.locator(".o_list_button_add").count(), 0)
