"""Command line of devstack: `python tools/devstack <command>` (see -h)."""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

if __package__ in (None, ""):  # `python tools/devstack`: make the package importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    __package__ = "devstack"

import devstack
from devstack import config, install, odoo, workers
from devstack.proc import StackError
from devstack.runner import run_foreground, stop_everything

TEST_DB = "qsb_test"


def _names(args_names):
    if not args_names or args_names == ["all"]:
        return list(devstack.SERVICES)
    return args_names


def cmd_start(args):
    started = []
    for name in _names(args.names):
        if devstack.start(name):
            started.append(name)
            print(f"devstack: {name} started")
        else:
            print(f"devstack: {name} already up, reused")
    if args.record:
        with open(args.record, "a") as fh:
            fh.writelines(f"{n}\n" for n in started)


def cmd_stop(args):
    if args.from_file:
        path = Path(args.from_file)
        names = path.read_text().split() if path.exists() else []
        for name in reversed(names):
            if devstack.stop(name):
                print(f"devstack: {name} stopped")
        path.unlink(missing_ok=True)
        return
    if not args.names or args.names == ["all"]:
        stop_everything()
        return
    for name in reversed(args.names):
        if name in devstack.SERVICES:
            stopped = devstack.stop(name)
        elif name.startswith("odoo"):  # a server started under .run/<name>.pid
            stopped = odoo.stop_server(name)
        else:
            stopped = workers.stop(name)
        print(f"devstack: {name} {'stopped' if stopped else 'was not running'}")


def cmd_status(args):
    for name in devstack.SERVICES:
        print(f"{name:10} {'up' if devstack.is_up(name) else 'down'}")
    state = odoo.load_state()
    if state:
        print(f"odoo       {'available ' + state['version'] if state['available'] else 'unavailable'}")


def cmd_env(args):
    values = devstack.env()
    for key, value in values.items():
        print(f"export {key}='{value}'" if args.shell else f"{key}={value}")


def cmd_install(args):
    install.install()


def cmd_odoo_runtime(args):
    state = odoo.resolve(allow_install=not args.no_install)
    if args.json:
        print(json.dumps(state))
    elif state["available"]:
        print(f"devstack: Odoo {state['version']} available ({state['source']}), python {state['python']}")
    else:
        print(f"devstack: ODOO NOT AVAILABLE: {state['reason']}")


def cmd_test_prepare(args):
    """Resolve Odoo, write the test config, create a fresh test database with our addons."""
    state = odoo.resolve()
    env_file = config.RUN / "test.env"
    lines = {"QSB_ODOO_PYTHON": odoo.python(), "QSB_TEST_DB": TEST_DB}
    if state["available"]:
        conf = odoo.write_conf("test", state)
        names = odoo.addon_names()
        odoo.create_database(
            conf, TEST_DB, names, demo=False, log=config.RUN / "odoo-test-install.log", fresh=True
        )
        print(
            f"devstack: database {TEST_DB} ready with {', '.join(names) or 'base (no addon in addons/ yet)'}"
        )
        lines.update(QSB_ODOO_AVAILABLE="1", QSB_ODOO_CONF=str(conf))
    else:
        print(f"devstack: ODOO NOT AVAILABLE, Odoo tests will be skipped: {state['reason']}")
        lines.update(QSB_ODOO_AVAILABLE="0", QSB_ODOO_UNAVAILABLE_REASON=state["reason"].replace("'", ""))
    lines.update(devstack.env())
    env_file.write_text("".join(f"export {k}='{v}'\n" for k, v in lines.items()))


def cmd_run(args):
    return run_foreground()


def _demo_worker_env(need_key):
    """The workers' environment for the `make run` stack (Odoo on QSB_ODOO_PORT, quicksol_demo)."""
    from devstack.runner import DEMO_DB

    url = f"http://127.0.0.1:{config.port('odoo')}"
    if odoo.health(config.port("odoo")):
        key = workers.odoo_api_key(url, DEMO_DB)
    else:
        key = workers.stored_api_key(DEMO_DB)
        if need_key:
            print(
                f"devstack: Odoo does not answer on {url} (start it with `make run`); the worker "
                "will retry its Odoo calls",
                flush=True,
            )
    return workers.worker_env(devstack.env(), url, DEMO_DB, key)


def cmd_worker(args):
    if not workers.available():
        raise StackError("workers/pyproject.toml does not exist: there is no worker to run")
    for name in ("rabbitmq", "redis"):
        devstack.start(name)
    env = {**os.environ, **_demo_worker_env(need_key=True)}
    concurrency = args.concurrency or {q: c for q, _, c in workers.plan()}.get(args.queue, 1)
    cmd = workers.worker_cmd(args.queue, concurrency, f"{args.queue}-manual")
    print(f"devstack: {' '.join(cmd)}", flush=True)
    os.chdir(config.ROOT)
    os.execve(cmd[0], cmd, env)


def cmd_health(args):
    """`make health`: broker, Redis, Odoo and every worker of `make run` (one line per check)."""
    import socket

    env = {**os.environ, **_demo_worker_env(need_key=False)}
    host = socket.gethostname()
    nodes = [f"{q}-{i}@{host}" for q, count, _c in workers.plan() for i in range(1, count + 1)]
    nodes.append(f"{workers.maintenance_queue()}-1@{host}")
    cmd = [odoo.python(), "-m", "quicksol_workers.health", *(f"--worker={n}" for n in nodes)]
    if args.any_worker:
        cmd = [odoo.python(), "-m", "quicksol_workers.health", "--any-worker"]
    res = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, cwd=config.ROOT)
    if res.returncode:
        print("make health: FAILED (the lines marked FAIL say which component)", flush=True)
    return res.returncode


def main(argv=None):
    parser = argparse.ArgumentParser(prog="devstack", description=devstack.__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("start", help="start services (postgres rabbitmq redis, default all)")
    p.add_argument("names", nargs="*")
    p.add_argument("--record", help="append the names this call started to this file")
    p.set_defaults(func=cmd_start)
    p = sub.add_parser("stop", help="stop services; no name: everything devstack started")
    p.add_argument("names", nargs="*")
    p.add_argument("--from", dest="from_file", help="stop only the services listed in this file")
    p.set_defaults(func=cmd_stop)
    sub.add_parser("status", help="which services are up").set_defaults(func=cmd_status)
    p = sub.add_parser("env", help="environment variables of the stack")
    p.add_argument("--shell", action="store_true", help="as `export` lines")
    p.set_defaults(func=cmd_env)
    sub.add_parser("install", help="Debian packages, .venv, pinned packages").set_defaults(func=cmd_install)
    p = sub.add_parser("odoo-runtime", help="find or install Odoo 18 and report it")
    p.add_argument("--no-install", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_odoo_runtime)
    sub.add_parser("test-prepare", help="fresh qsb_test database, .run/test.env").set_defaults(
        func=cmd_test_prepare
    )
    sub.add_parser("run", help="the whole stack in the foreground (make run)").set_defaults(func=cmd_run)
    p = sub.add_parser("worker", help="one Celery worker for QUEUE in the foreground")
    p.add_argument("queue")
    p.add_argument("-c", "--concurrency", type=int)
    p.set_defaults(func=cmd_worker)
    p = sub.add_parser("health", help="health of the `make run` stack: broker, Redis, Odoo, workers")
    p.add_argument("--any-worker", action="store_true", help="one worker answering ping is enough")
    p.set_defaults(func=cmd_health)
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except StackError as exc:
        print(f"devstack: ERROR: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
