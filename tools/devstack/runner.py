"""`make run`: the whole stack in the foreground, stopped on Ctrl-C / SIGTERM."""

import ctypes
import os
import signal
import subprocess

import devstack

from . import config, odoo, workers
from .proc import StackError

__all__ = ["DEMO_DB", "run_foreground", "stop_everything"]

DEMO_DB = "quicksol_demo"
ODOO_NAME = "odoo-run"


class _Stop(Exception):
    """Raised by the signal handler to leave the foreground wait."""


def _on_signal(signum, frame):
    raise _Stop(signal.Signals(signum).name)


def _die_with_parent():
    """Ask the kernel to SIGTERM us when our parent dies (make does not forward SIGTERM)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _process_names():
    """Names of the background programs devstack runs from .run/<name>.pid."""
    return sorted(p.stem for p in config.RUN.glob("*.pid"))


def stop_everything():
    """`make stop`: every worker, beat, Flower and Odoo devstack started, then the services."""
    names = _process_names()
    celery = [n for n in names if n.startswith(("worker-", "flower", "beat"))]
    for name in workers.stop_many(celery):
        print(f"devstack: {name} stopped")
    for name in names:
        if name.startswith("odoo") and odoo.stop_server(name):
            print(f"devstack: {name} stopped")
    for name in reversed(list(devstack.SERVICES)):
        if devstack.stop(name):
            print(f"devstack: {name} stopped")


def demo_addons():
    """Addons of addons/ for the demo database: never the test fixtures addons (test_*)."""
    return [name for name in odoo.addon_names() if not name.startswith("test_")]


def start_workers(env, spawned):
    """Spawn the event workers (topology), the maintenance worker, beat and Flower, adding their
    names to `spawned` as they start (so a Ctrl-C meanwhile stops them); wait until the workers
    are ready."""
    commands = [
        (f"worker-{queue}-{i}", workers.worker_cmd(queue, concurrency, f"{queue}-{i}"))
        for queue, count, concurrency in workers.plan()
        for i in range(1, count + 1)
    ]
    maintenance = workers.maintenance_queue()
    commands += [
        (f"worker-{maintenance}-1", workers.worker_cmd(maintenance, 1, f"{maintenance}-1")),
        ("beat", workers.beat_cmd()),
        ("flower", workers.flower_cmd()),
    ]
    procs = []
    for name, cmd in commands:
        procs.append(workers.spawn(name, cmd, env))
        spawned.append(name)
    workers.wait_ready(procs)


def run_foreground():
    _die_with_parent()
    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    started, spawned, odoo_proc = [], [], None
    try:
        for name in devstack.SERVICES:
            if devstack.start(name):
                started.append(name)
            print(f"devstack: {name} up", flush=True)
        state = odoo.resolve()
        if not state["available"]:
            raise StackError(
                f"Odoo is not available, nothing to run: {state['reason']}\n"
                "Set ODOO_SRC to an Odoo 18 source tree (see README.md)."
            )
        conf = odoo.write_conf("run", state)
        odoo.create_database(
            conf, DEMO_DB, demo_addons(), demo=True, log=config.RUN / "odoo-install-demo.log"
        )
        stack_env = devstack.env()
        odoo_env = dict(os.environ)
        with_workers = workers.available()
        if with_workers:
            # Odoo publishes to the broker (else it runs every observer inline: sync mode).
            odoo_env.update(
                CELERY_BROKER_URL=stack_env["CELERY_BROKER_URL"], EVENT_BUS_SIGNING_KEY=workers.signing_key()
            )
            # The admin's Broker and workers screen reads the management API and links Flower.
            odoo_env.setdefault("EVENT_BUS_RABBITMQ_MGMT_URL", stack_env["QSB_RABBITMQ_MGMT_URL"])
            odoo_env.setdefault("EVENT_BUS_FLOWER_URL", f"http://127.0.0.1:{config.port('flower')}/")
        else:
            print(
                "devstack: workers/pyproject.toml not there: no Celery worker, no Flower; "
                "Odoo runs observers in sync mode",
                flush=True,
            )
        odoo_url = f"http://127.0.0.1:{config.port('odoo')}"
        odoo_proc = odoo.start_server(conf, DEMO_DB, config.port("odoo"), ODOO_NAME, env=odoo_env)
        worker_env = None
        if with_workers:
            api_key = workers.odoo_api_key(odoo_url, DEMO_DB)
            worker_env = workers.worker_env(stack_env, odoo_url, DEMO_DB, api_key)
            start_workers(worker_env, spawned)
        _banner(spawned, worker_env)
        while odoo_proc.poll() is None:
            dead = [n for n in spawned if not workers.running(n)]
            if dead:
                raise StackError(
                    f"{', '.join(dead)} exited; see {', '.join(str(config.RUN / (n + '.log')) for n in dead)}"
                )
            try:  # a supervisor's poll: SIGINT/SIGTERM interrupt it through _on_signal
                odoo_proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
        print(f"devstack: Odoo exited with {odoo_proc.returncode}; see {config.RUN / (ODOO_NAME + '.log')}")
        return odoo_proc.returncode or 1
    except _Stop as sig:
        print(f"\ndevstack: {sig}: stopping", flush=True)
        return 0
    except StackError as exc:
        print(f"devstack: ERROR: {exc}", flush=True)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for name in workers.stop_many(spawned):
            print(f"devstack: {name} stopped", flush=True)
        if odoo.stop_server(ODOO_NAME):  # also one half-started when the signal came
            print(f"devstack: {ODOO_NAME} stopped", flush=True)
        for name in reversed(started):
            devstack.stop(name)
            print(f"devstack: {name} stopped", flush=True)


def _banner(spawned, worker_env):
    env = devstack.env()
    mgmt = config.port("rabbitmq_mgmt")
    lines = [
        "",
        "quicksol event bus is running (Ctrl-C stops everything started here)",
        f"  Odoo        http://127.0.0.1:{config.port('odoo')}/web   login admin / admin, database {DEMO_DB}",
        f"  RabbitMQ    http://127.0.0.1:{mgmt}/   {config.AMQP_USER} / {config.AMQP_PASSWORD}"
        f"   (AMQP {env['CELERY_BROKER_URL']})",
        f"  Redis       {env['CELERY_RESULT_BACKEND']}",
        f"  PostgreSQL  127.0.0.1:{config.port('pg')}   {config.PG_USER} / {config.PG_PASSWORD}",
    ]
    if "flower" in spawned:
        user, _, password = worker_env["FLOWER_BASIC_AUTH"].partition(":")
        source = "FLOWER_BASIC_AUTH" if os.environ.get("FLOWER_BASIC_AUTH") else config.RUN / "flower.auth"
        lines += [
            f"  Flower      http://127.0.0.1:{config.port('flower')}/   {user} / {password}   (from {source});"
            " Prometheus: /metrics, same credentials",
            f"  workers     {', '.join(n for n in spawned if n.startswith('worker-'))}, beat",
            f"              as {worker_env['ODOO_USER']} (API key in {config.RUN / 'worker-api-key.json'})",
            "  health      make health",
        ]
    lines.append(f"  logs        {config.RUN}/*.log")
    print("\n".join(lines) + "\n", flush=True)
