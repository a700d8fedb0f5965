"""Workers: 10,000 audit events from commit to done with one worker process, batched vs not.

One run measures both figures side by side: the same 10,000 events of a batch-capable audit
observer (``quicksol.bench.observer.audit``) are committed in Odoo, published after commit,
and run by ONE ``celery worker -Q audit_events -c 1`` calling Odoo's XML-RPC worker API on a
real Odoo HTTP server; first with the default batch (``run_async_batch``), then with
``QSB_WORKER_BATCH_SIZE=1`` (one ``run_async`` per event). The clock runs from the commit
(which publishes) to the moment the last delivery is done in the database. The worker's RSS
(main process + pool children, psutil) is sampled during the run; its maximum is reported.
"""

import os
import subprocess
import sys
import threading
import time
import xmlrpc.client
from pathlib import Path

from odoo_env import drop, environment, registry_for

EVENTS = int(os.environ.get("QSB_BENCH_WORKER_EVENTS") or 10_000)
DB = "qsb_bench_workers"
OBSERVER = "quicksol.bench.observer.audit"
QUEUE = "audit_events"
TARGET_RATE = 1000.0  # events/s, batched
TARGET_RSS_MB = 150.0  # per worker process
DEADLINE = int(
    os.environ.get("QSB_BENCH_WORKER_DEADLINE") or 300
)  # seconds one round may take before the bench gives up
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(ROOT / "tools"))  # devstack: Odoo server and run directory


class RssSampler(threading.Thread):
    """Largest RSS of a process and its children, sampled until stopped (a measurement, not
    a synchronisation)."""

    def __init__(self, pid, every=0.2):
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.every = every
        self.main_max = 0
        self.child_max = 0
        self.total_max = 0
        self._halt = threading.Event()

    def run(self):
        import psutil

        while not self._halt.is_set():
            try:
                main = self.process.memory_info().rss
                children = [c.memory_info().rss for c in self.process.children(recursive=True)]
            except psutil.Error:
                break
            self.main_max = max(self.main_max, main)
            self.child_max = max([self.child_max, *children])
            self.total_max = max(self.total_max, main + sum(children))
            self._halt.wait(self.every)

    def stop(self):
        self._halt.set()
        self.join(5)


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench_workers: {what} (after {timeout} s)")
        time.sleep(0.05)


def _done_count(registry, since):
    with registry.cursor() as cr:
        cr.execute(
            """SELECT count(*) FROM quicksol_event_delivery
                       WHERE observer = %s AND state = 'done' AND event_id > %s""",
            [OBSERVER, since],
        )
        return cr.fetchone()[0]


def _start_worker(env, name):
    from devstack import config

    log = config.RUN / f"bench-worker-{name}.log"
    handle = open(log, "wb")
    proc = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/python") if (ROOT / ".venv/bin/python").exists() else sys.executable,
            "-m",
            "celery",
            "-A",
            "quicksol_workers",
            "worker",
            "-Q",
            QUEUE,
            "-c",
            "1",
            "-n",
            f"bench-{name}@%h",
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
    _wait(
        lambda: proc.poll() is not None
        or " ready." in log.read_text(errors="replace")
        or _consumers(env) > 0,
        60,
        f"worker {name} not ready (log {log})",
    )
    if proc.poll() is not None:
        raise RuntimeError(f"bench worker exited: {log.read_text(errors='replace')[-2000:]}")
    return proc, handle


def _consumers(env):
    from kombu import Connection

    with Connection(env["CELERY_BROKER_URL"]) as conn:
        return conn.default_channel.queue_declare(QUEUE, passive=True)[2]


def _stop_worker(proc, handle):
    import signal

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
    handle.close()


def _round(registry, worker_env, label, batch_size):
    env = dict(worker_env, QSB_WORKER_BATCH_SIZE=str(batch_size))
    proc, handle = _start_worker(env, label)
    sampler = RssSampler(proc.pid)
    sampler.start()
    try:
        with environment(registry, commit=True) as odoo_env:
            odoo_env.cr.execute("SELECT coalesce(max(id), 0) FROM quicksol_event")
            since = odoo_env.cr.fetchone()[0]
            bus = odoo_env["quicksol.event.bus"]
            for i in range(EVENTS):
                bus.emit("bench.audit", {"res_ids": [i], "round": label})
            odoo_env.flush_all()
            started = time.perf_counter()
            odoo_env.cr.commit()  # post-commit: the 10,000 messages are published
        _wait(
            lambda: _done_count(registry, since) >= EVENTS, DEADLINE, f"{label}: not every event became done"
        )
        elapsed = time.perf_counter() - started
    finally:
        try:
            sampler.stop()
        finally:
            _stop_worker(proc, handle)
    return EVENTS / elapsed, sampler


def run(environ):
    os.environ.setdefault("EVENT_BUS_SIGNING_KEY", "bench-signing-key")
    os.environ.pop("EVENT_BUS_SYNC", None)
    registry = registry_for(environ["QSB_TEST_DB"], DB)

    from devstack import odoo as devstack_odoo
    from quicksol_bus.publisher import drop_publishers

    port = _free_port()
    server_env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "USER", "PASSWORD")}
    devstack_odoo.start_server(
        Path(os.environ["QSB_ODOO_CONF"]),
        DB,
        port,
        "odoo-bench-workers",
        extra=["--max-cron-threads=0"],
        env=server_env,
    )
    rows = []
    try:
        url = f"http://127.0.0.1:{port}"
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common")
        uid = common.authenticate(DB, "admin", "admin", {})
        key = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object").execute_kw(
            DB, uid, "admin", "quicksol.event.bus", "generate_worker_api_key", []
        )
        worker_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ODOO_", "QSB_WORKER_"))},
            "ODOO_URL": url,
            "ODOO_DB": DB,
            "ODOO_USER": "event_bus_worker",
            "ODOO_API_KEY": key,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), str(ROOT / "workers")]),
            "QSB_WORKER_LOG_JSON": "0",
        }
        _purge(environ["CELERY_BROKER_URL"])
        batched, batched_rss = _round(registry, worker_env, "batched", 100)
        single, single_rss = _round(registry, worker_env, "single", 1)
        mb = 1024 * 1024
        worst = (
            max(batched_rss.main_max, batched_rss.child_max, single_rss.main_max, single_rss.child_max) / mb
        )
        rows += [
            (
                f"{EVENTS:,} audit events, batched (100)",
                f"{batched:,.0f} ev/s",
                f">= {TARGET_RATE:,.0f} ev/s",
                "OK" if batched >= TARGET_RATE else "BELOW TARGET",
            ),
            (f"{EVENTS:,} audit events, one call per event", f"{single:,.0f} ev/s", "", ""),
            ("batched / one call per event", f"x {batched / single:.1f}", "", ""),
            (
                "worker RSS max, main process",
                f"{max(batched_rss.main_max, single_rss.main_max) / mb:.0f} MB",
                f"<= {TARGET_RSS_MB:.0f} MB",
                "",
            ),
            (
                "worker RSS max, pool child",
                f"{max(batched_rss.child_max, single_rss.child_max) / mb:.0f} MB",
                f"<= {TARGET_RSS_MB:.0f} MB",
                "",
            ),
            (
                "worker RSS max, main + child",
                f"{max(batched_rss.total_max, single_rss.total_max) / mb:.0f} MB",
                "",
                "OK" if worst <= TARGET_RSS_MB else "ABOVE TARGET",
            ),
        ]
    finally:
        devstack_odoo.stop_server("odoo-bench-workers")
        drop_publishers()
        import odoo

        odoo.sql_db.close_db(DB)  # the pool's idle connections would block dropdb
        drop(DB)
    return rows


def _purge(url):
    from kombu import Connection

    with Connection(url) as conn:
        conn.default_channel.queue_purge(QUEUE)


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
