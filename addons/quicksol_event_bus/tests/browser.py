"""Browser tests in a real headless Chromium (Debian's ``chromium``) driven by Playwright,
against Odoo's real HTTP server in test mode (HttpCase: the server shares the test's
transaction, so what the test writes the browser sees, and nothing stays in the database).

    from odoo.addons.quicksol_event_bus.tests.browser import BrowserCase

    class TestScreens(BrowserCase):
        def test_events(self):
            page = self.open_as("admin")
            page.goto(self.action_url("quicksol_event_bus.action_quicksol_event"))
            page.wait_for_selector(".o_list_view .o_data_row")
            self.screenshot(page, "events")

Screenshots go to ``test-artifacts/`` at the repository root (``QSB_TEST_ARTIFACTS``
elsewhere); git ignores it. Without Chromium or Playwright the tests are skipped, saying why.
"""

import logging
import os
import resource
import shutil
import unittest
from contextlib import contextmanager
from pathlib import Path

from odoo import SUPERUSER_ID, api
from odoo.modules.registry import Registry
from odoo.tests import HttpCase, get_db_name

from .http_server import ensure_http_server

_logger = logging.getLogger(__name__)

CHROMIUM = os.environ.get("QSB_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(
    os.environ.get("QSB_TEST_ARTIFACTS") or Path(__file__).resolve().parents[3] / "test-artifacts"
)
TIMEOUT_MS = 60000  # generous: the machine may be busy; nothing waits this long when all is well

try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - said by the skip below
    sync_playwright = PlaywrightTimeout = None


def _missing():
    if sync_playwright is None:
        return "Playwright is not installed (pip install -r requirements-dev.txt)"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set QSB_CHROMIUM)"
    return None


_warmed = set()


def _warm_assets():
    """Build the web client's bundles once, committed, before the first browser test.

    In test mode the bundles a page asks for are built inside the test transaction and rolled
    back with it, so every test class would build them again (tens of seconds each)."""
    dbname = get_db_name()
    if dbname in _warmed:
        return
    with Registry(dbname).cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        for name in ("web.assets_web",):  # the web client's only bundle
            bundle = env["ir.qweb"]._get_asset_bundle(name)
            bundle.js()
            bundle.css()
    _warmed.add(dbname)


@contextmanager
def _unlimited_address_space():
    """Odoo caps this process's address space (``limit_memory_hard``); Chromium reserves far
    more virtual memory than it uses and dies under that cap. Its processes, started here,
    inherit the raised soft limit; this process gets its own back at once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


class BrowserCase(HttpCase):
    """HttpCase with one headless Chromium per class; see the module docstring."""

    @classmethod
    def setUpClass(cls):
        missing = _missing()
        if missing:
            raise unittest.SkipTest(missing)
        ensure_http_server()
        _warm_assets()
        super().setUpClass()
        with _unlimited_address_space():
            cls._playwright = sync_playwright().start()
            cls.addClassCleanup(cls._playwright.stop)
            cls._chromium = cls._playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
            )
        cls.addClassCleanup(cls._chromium.close)

    def open_as(self, login, password=None):
        """A new page logged in as ``login`` (HttpCase's session, as its cookie)."""
        self.authenticate(login, password or login)
        context = self._chromium.new_context(
            viewport={"width": 1440, "height": 900}, base_url=self.base_url()
        )
        self.addCleanup(context.close)
        context.add_cookies(
            [{"name": "session_id", "value": self.session.sid, "domain": "127.0.0.1", "path": "/"}]
        )
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.on("pageerror", lambda error: _logger.error("browser page error: %s", error))
        page.on(
            "console",
            lambda message: message.type == "error" and _logger.error("browser console: %s", message.text),
        )
        page.on("requestfailed", lambda request: _logger.warning("browser request failed: %s", request.url))
        # What the page showed at the end of the test (the first thing to look at on a failure).
        self.addCleanup(self._last_screenshot, page)
        return page

    def close(self, page):
        """Close ``page`` and its context: no request of it runs while the test reads the
        database (the server shares the test's cursor)."""
        self._last_screenshot(page)
        page.context.close()

    def _last_screenshot(self, page):
        if not page.is_closed():
            self.screenshot(page, f"last-{type(self).__name__}.{self._testMethodName}")

    def goto(self, page, url):
        """Open ``url`` and wait until the web client's stylesheets apply (screenshots)."""
        page.goto(url, wait_until="domcontentloaded")
        styled = """() => [...document.styleSheets].some(
            (sheet) => (sheet.href || "").includes("/web/assets/") && sheet.cssRules.length > 0)"""
        try:
            page.wait_for_function(styled, timeout=TIMEOUT_MS)
        except PlaywrightTimeout:
            # The first request of a run may have found the bundle still being generated.
            page.reload()
            page.wait_for_function(styled, timeout=TIMEOUT_MS)

    def action_url(self, xmlid, res_id=None):
        action = self.env.ref(xmlid)
        return f"/odoo/action-{action.id}" + (f"/{res_id}" if res_id else "")

    def screenshot(self, page, name):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path
