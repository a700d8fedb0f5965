"""Health check: broker, Redis and Odoo reachable, and (optionally) workers answer ping.

``python -m quicksol_workers.health [--worker NAME ...|--any-worker] [--skip odoo] [--json]``
exits 0 when every check passes, 1 otherwise, printing one line per check (``ok  broker:
...`` / ``FAIL broker: ...``, or JSON). It reads the workers' environment (``CELERY_*``,
``ODOO_*``). Used by docker compose healthchecks and by ``make health``.
"""

import argparse
import json
import sys
import time

__all__ = ["check_broker", "check_redis", "check_odoo", "check_worker", "run_checks", "main"]


def check_broker(config, timeout=5.0):
    from kombu import Connection

    with Connection(config.broker_url, connect_timeout=timeout) as conn:
        conn.ensure_connection(max_retries=max(1, len(conn.alt) - 1))  # once per broker of a list
    return "reachable"


def check_redis(config, timeout=5.0):
    import redis

    client = redis.Redis.from_url(config.redis_url, socket_timeout=timeout, socket_connect_timeout=timeout)
    client.ping()
    return "pong"


def check_odoo(config, timeout=10.0):
    from .connector import OdooConnector

    config.require_odoo()
    connector = OdooConnector(
        config.odoo_url, config.odoo_db, config.odoo_user, config.odoo_secret, timeout=timeout
    )
    version = connector.version().get("server_version")
    uid = connector.authenticate()
    return f"Odoo {version}, uid {uid}"


def check_worker(app, names=None, timeout=5.0):
    """Ping the workers; every node in `names` (or, without names, some node) must answer."""
    names = [names] if isinstance(names, str) else list(names or ())
    replies = app.control.ping(destination=names or None, timeout=timeout) or []
    answered = sorted(n for reply in replies for n in reply)
    missing = sorted(set(names) - set(answered))
    if missing:
        raise RuntimeError(f"no answer to ping from {', '.join(missing)}")
    if not answered:
        raise RuntimeError("no worker answered ping")
    return ", ".join(answered)


def run_checks(config, app=None, worker=None, any_worker=False, skip=()):
    """Return [(name, ok, detail)]; `worker` is a node name or a list of them."""
    checks = [
        ("broker", lambda: check_broker(config)),
        ("redis", lambda: check_redis(config)),
        ("odoo", lambda: check_odoo(config)),
    ]
    if worker or any_worker:
        checks.append(("worker", lambda: check_worker(app, worker)))
    results = []
    for name, check in checks:
        if name in skip:
            continue
        if name == "worker" and any(n == "broker" and not ok for n, ok, _d in results):
            results.append((name, False, "not pinged: the broker is unreachable"))
            continue
        started = time.monotonic()
        try:
            detail, ok = check(), True
        except Exception as error:  # noqa: BLE001 - a health check reports every failure
            detail, ok = f"{type(error).__name__}: {error}", False
        results.append((name, ok, f"{detail} ({time.monotonic() - started:.2f}s)"))
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m quicksol_workers.health", description=__doc__)
    parser.add_argument(
        "--worker",
        action="append",
        default=[],
        help="node name that must answer ping (e.g. audit_events-1@host); repeatable",
    )
    parser.add_argument("--any-worker", action="store_true", help="some worker must answer ping")
    parser.add_argument("--skip", action="append", default=[], choices=["broker", "redis", "odoo"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    from .config import WorkerConfig

    config = WorkerConfig.from_env()
    app = None
    if args.worker or args.any_worker:
        from .celery_app import app
    results = run_checks(config, app, args.worker, args.any_worker, set(args.skip))
    if args.json:
        print(json.dumps([{"check": n, "ok": ok, "detail": d} for n, ok, d in results]))
    else:
        for name, ok, detail in results:
            print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
    return 0 if all(ok for _n, ok, _d in results) else 1


if __name__ == "__main__":
    sys.exit(main())
