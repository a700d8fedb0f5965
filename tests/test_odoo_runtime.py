"""Says loudly, as a skipped test with the reason, when the Odoo tests did not run."""

import os

import pytest

from devstack import odoo


def test_odoo_tests_ran(request):
    reason = odoo.unavailable_reason()
    if reason:
        pytest.skip(f"ODOO NOT AVAILABLE: all Odoo tests were skipped ({reason})")
    if not request.config.pluginmanager.hasplugin("pytest_odoo"):
        pytest.skip(
            "ODOO TESTS NOT RUN: pytest was started without `-p pytest_odoo "
            "--odoo-database qsb_test --odoo-config .run/odoo-test.conf` (use `make test`)"
        )
    import odoo as odoo_pkg  # imported only once pytest-odoo has configured it

    db = odoo_pkg.tools.config["db_name"]
    assert db == os.environ.get("QSB_TEST_DB", db)
    with odoo_pkg.modules.registry.Registry(db).cursor() as cr:
        cr.execute("SELECT name FROM ir_module_module WHERE state = 'installed'")
        installed = {row[0] for row in cr.fetchall()}
    missing = set(odoo.addon_names()) - installed
    assert not missing, f"addons not installed in {db}: {sorted(missing)}"
