"""Open an Odoo registry in this process for benchmarks (config from .run/test.env)."""

import os
import signal
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

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


def stop_process(proc, log_handle):
    """Stop a process the bench started in a session of its own: SIGTERM (a Celery worker's
    warm shutdown), then kill, then the whole group so no pool child is left; close its log."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    log_handle.close()


ROOT = Path(__file__).resolve().parents[2]


def start_worker(queue, node, env, log):
    """One real Celery worker process (concurrency 1) for ``queue`` in a session of its own,
    logging to ``log``; returns (process, log handle) for :func:`stop_process`."""
    venv_python = ROOT / ".venv/bin/python"
    handle = open(log, "wb")
    proc = subprocess.Popen(
        [
            str(venv_python) if venv_python.exists() else sys.executable,
            "-m",
            "celery",
            "-A",
            "quicksol_workers",
            "worker",
            "-Q",
            queue,
            "-c",
            "1",
            "-n",
            f"{node}@%h",
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
        start_new_session=True,
    )
    return proc, handle
