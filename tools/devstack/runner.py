"""`make run`: the whole stack in the foreground, stopped on Ctrl-C / SIGTERM."""

import ctypes
import os
import signal

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
    """`make stop`: every Odoo, worker and Flower devstack started, then the services."""
    for name in _process_names():
        if name.startswith("odoo"):
            stopped = odoo.stop_server(name)
        elif name.startswith(("worker-", "flower")):
            stopped = workers.stop(name)
        else:
            continue
        if stopped:
            print(f"devstack: {name} stopped")
    for name in reversed(list(devstack.SERVICES)):
        if devstack.stop(name):
            print(f"devstack: {name} stopped")


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
            conf, DEMO_DB, odoo.addon_names(), demo=True, log=config.RUN / "odoo-install-demo.log"
        )
        stack_env = devstack.env()
        odoo_env = dict(os.environ)
        # ---- hook: Celery workers and Flower --------------------------------------------
        if workers.available():
            key = workers.signing_key()
            # Odoo publishes only when there is a worker to consume (else it runs in sync mode).
            odoo_env.update(CELERY_BROKER_URL=stack_env["CELERY_BROKER_URL"], EVENT_BUS_SIGNING_KEY=key)
        else:
            print(
                "devstack: workers/pyproject.toml not there yet: no Celery worker, no Flower; "
                "Odoo runs observers in sync mode",
                flush=True,
            )
        odoo_proc = odoo.start_server(conf, DEMO_DB, config.port("odoo"), ODOO_NAME, env=odoo_env)
        if workers.available():
            worker_env = {
                **stack_env,
                "ODOO_URL": f"http://127.0.0.1:{config.port('odoo')}",
                "ODOO_DB": DEMO_DB,
                "ODOO_USER": "admin",
                "ODOO_PASSWORD": "admin",  # demo database only; real stacks use ODOO_API_KEY
                "EVENT_BUS_SIGNING_KEY": key,
                "FLOWER_BASIC_AUTH": f"{config.AMQP_USER}:{config.AMQP_PASSWORD}",
            }
            for queue, count, concurrency in workers.plan():
                for i in range(1, count + 1):
                    name = f"worker-{queue}-{i}"
                    workers.spawn(name, workers.worker_cmd(queue, concurrency, f"{queue}-{i}"), worker_env)
                    spawned.append(name)
            workers.spawn("flower", workers.flower_cmd(), worker_env)
            spawned.append("flower")
        # ----------------------------------------------------------------------------------
        _banner(spawned)
        odoo_proc.wait()
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
        for name in reversed(spawned):
            workers.stop(name)
        odoo.stop_server(ODOO_NAME)  # also one half-started when the signal came
        for name in reversed(started):
            devstack.stop(name)
            print(f"devstack: {name} stopped", flush=True)


def _banner(spawned):
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
        lines.append(
            f"  Flower      http://127.0.0.1:{config.port('flower')}/   "
            f"{config.AMQP_USER} / {config.AMQP_PASSWORD}"
        )
        lines.append(f"  workers     {', '.join(n for n in spawned if n != 'flower')}")
    lines.append(f"  logs        {config.RUN}/*.log")
    print("\n".join(lines) + "\n", flush=True)
