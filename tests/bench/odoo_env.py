"""Open an Odoo registry in this process for benchmarks (config from .run/test.env)."""

import os
import subprocess
from contextlib import contextmanager

_loaded = {}


def registry_for(database_template, database):
    """A fresh copy ``database`` of ``database_template`` and its registry."""
    import odoo
    from odoo.tools import config

    if "config" not in _loaded:
        config.parse_config(
            ["-c", os.environ["QSB_ODOO_CONF"], "--workers=0", "--log-level=warn", "--max-cron-threads=0"]
        )
        _loaded["config"] = True
    env = dict(os.environ, PGPASSWORD=config["db_password"] or "")
    base = ["-h", config["db_host"], "-p", str(config["db_port"]), "-U", config["db_user"]]
    subprocess.run(["dropdb", "--if-exists", *base, database], check=True, env=env)
    subprocess.run(["createdb", *base, "-T", database_template, database], check=True, env=env)
    return odoo.modules.registry.Registry(database)


@contextmanager
def environment(registry, commit=False):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        try:
            yield env
        finally:
            if not commit:
                cr.rollback()


def drop(database):
    import odoo
    from odoo.tools import config

    odoo.modules.registry.Registry.delete(database)
    odoo.sql_db.close_db(database)  # the pool's idle connections would block dropdb
    env = dict(os.environ, PGPASSWORD=config["db_password"] or "")
    base = ["-h", config["db_host"], "-p", str(config["db_port"]), "-U", config["db_user"]]
    subprocess.run(["dropdb", "--if-exists", *base, database], check=False, env=env)
