"""Workers: 10,000 audit events from commit to done with one worker process, batched vs not.

One run measures both figures side by side. Events of a batch-capable audit observer
(``quicksol.bench.observer.audit``) are committed in Odoo, published after commit, and run by
ONE ``celery worker -Q audit_events -c 1`` calling Odoo's XML-RPC worker API on a real Odoo
HTTP server (threaded, ``--workers=0``, its own database copy and pid file): first 10,000 with
the default batch (``run_async_batch``), then ``QSB_BENCH_WORKER_SINGLE_EVENTS`` (1,000) with
``QSB_WORKER_BATCH_SIZE=1`` (one ``run_async`` per event: one HTTP request and one Odoo
transaction each, ~20 ms of Odoo request overhead alone on a 2-core machine, so 10,000 would
take minutes; both rounds report events/s). The clock runs from the commit (which publishes
every message) to the moment the last delivery is done in the database. The RSS of the worker's
main process and of its pool child are sampled (psutil) during both rounds; their maxima are
reported apart. The run fails if the Odoo server exited or hit a limit (its log is checked).
"""

import os
import sys
import threading
import time
import xmlrpc.client
from pathlib import Path

from odoo_env import drop, environment, registry_for, start_worker, stop_process

EVENTS = int(os.environ.get("QSB_BENCH_WORKER_EVENTS") or 10_000)
# Names of this run only: a bench started meanwhile from the same run directory (another
# checkout's `make bench`) must neither stop this run's Odoo server (start_server stops the
# server its pid file names first) nor drop its database.
DB = f"qsb_bench_workers_{os.getpid()}"
SERVER = f"odoo-bench-workers-{os.getpid()}"
OBSERVER = "quicksol.bench.observer.audit"
QUEUE = "audit_events"
TARGET_RATE = 2000.0  # events/s, batched, with the worker's default settings
SEED_RATE = 200 / 60  # events/s: the seed's bar, 200 per minute per worker
# The worker's default QSB_WORKER_BATCH_SIZE unless QSB_BENCH_WORKER_BATCH asks for another one.
BATCH = os.environ.get("QSB_BENCH_WORKER_BATCH") or None
# The one-call-per-event round is slow by nature (one HTTP request, one transaction per event):
# it runs fewer events so the bench finishes in minutes; both rounds report events/s.
SINGLE_EVENTS = int(os.environ.get("QSB_BENCH_WORKER_SINGLE_EVENTS") or 1_000)
# Events of the latency round, one at a time (p99 of 200 is the 2nd worst).
LATENCY_EVENTS = int(os.environ.get("QSB_BENCH_LATENCY_EVENTS") or 200)
TARGET_RSS_MB = 150.0  # per worker process
DEADLINE = int(
    os.environ.get("QSB_BENCH_WORKER_DEADLINE") or 300
)  # seconds one round may take before the bench gives up
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(ROOT / "tools"))  # devstack: Odoo server and run directory


class RssSampler(threading.Thread):
    """Largest RSS (and VMS) of a process and, apart, of its children, sampled until stopped
    (a measurement, not a synchronisation)."""

    def __init__(self, pid, every=0.2):
        super().__init__(daemon=True)
        import psutil

        self.process = psutil.Process(pid)
        self.every = every
        self.main_max = 0
        self.child_max = 0
        self.main_vms_max = 0
        self._halt = threading.Event()

    def sample(self):
        import psutil

        try:
            main = self.process.memory_info()
            children = []
            for child in self.process.children(recursive=True):
                try:
                    children.append(child.memory_info().rss)
                except psutil.Error:  # a child that just ended
                    pass
        except psutil.Error:
            return False
        self.main_max = max(self.main_max, main.rss)
        self.main_vms_max = max(self.main_vms_max, main.vms)
        self.child_max = max([self.child_max, *children])
        return True

    def run(self):
        while not self._halt.is_set() and self.sample():
            self._halt.wait(self.every)

    def stop(self):
        self._halt.set()
        self.join(5)
        self.sample()  # once more at the end: a short round may end between two samples


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

    log = config.RUN / f"bench-worker-{os.getpid()}-{name}.log"
    proc, handle = start_worker(QUEUE, f"bench-{name}", env, log)
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


def _round(registry, worker_env, label, batch_size, events, deadline):
    """Commit ``events`` audit events, let one worker run them; return (events/s, sampler, info)."""
    env = dict(worker_env)
    if batch_size is not None:
        env["QSB_WORKER_BATCH_SIZE"] = str(batch_size)
    proc, handle = _start_worker(env, label)
    sampler = RssSampler(proc.pid)
    sampler.start()
    try:
        with environment(registry, commit=True) as odoo_env:
            odoo_env.cr.execute("SELECT coalesce(max(id), 0) FROM quicksol_event")
            since = odoo_env.cr.fetchone()[0]
            bus = odoo_env["quicksol.event.bus"]
            for i in range(events):
                bus.emit("bench.audit", {"res_ids": [i], "round": label})
            odoo_env.flush_all()
            started = time.perf_counter()
            odoo_env.cr.commit()  # post-commit: the messages are published
            published = time.perf_counter() - started
        _wait(
            lambda: _done_count(registry, since) >= events,
            deadline,
            f"{label}: {events - _done_count(registry, since)} of {events} events not done "
            f"(worker log {handle.name})",
        )
        elapsed = time.perf_counter() - started
    finally:
        try:
            sampler.stop()
        finally:
            stop_process(proc, handle)
    return events / elapsed, sampler, {"published": published, "elapsed": elapsed}


def _latency_round(registry, worker_env, count):
    """One event at a time on an idle stack: commit to done, ``count`` times; seconds each.
    The done state is polled every 2 ms (a measurement, so its resolution is ~2 ms)."""
    proc, handle = _start_worker(dict(worker_env), "latency")
    latencies = []
    try:
        for i in range(count):
            with environment(registry, commit=True) as odoo_env:
                odoo_env.cr.execute("SELECT coalesce(max(id), 0) FROM quicksol_event")
                since = odoo_env.cr.fetchone()[0]
                odoo_env["quicksol.event.bus"].emit("bench.audit", {"res_ids": [i], "round": "latency"})
                odoo_env.flush_all()
                started = time.perf_counter()
                odoo_env.cr.commit()
            deadline = started + 30
            while _done_count(registry, since) < 1:
                if time.perf_counter() > deadline:
                    raise RuntimeError(f"latency: event {i} not done within 30 s (log {handle.name})")
                time.sleep(0.002)
            latencies.append(time.perf_counter() - started)
    finally:
        stop_process(proc, handle)
    return sorted(latencies)


def _percentile(values, fraction):
    return values[min(len(values) - 1, round(fraction * (len(values) - 1)))]


def run(environ):
    os.environ.setdefault("EVENT_BUS_SIGNING_KEY", "bench-signing-key")
    os.environ.pop("EVENT_BUS_SYNC", None)
    registry = registry_for(environ["QSB_TEST_DB"], DB)

    from devstack import odoo as devstack_odoo
    from quicksol_bus.publisher import drop_publishers

    port = _free_port()
    server_env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "USER", "PASSWORD")}
    server = devstack_odoo.start_server(
        Path(os.environ["QSB_ODOO_CONF"]),
        DB,
        port,
        SERVER,
        extra=["--max-cron-threads=0"],
        env=server_env,
    )
    server_mem = RssSampler(server.pid, every=0.5)
    server_mem.start()
    rows = []
    try:
        url = f"http://127.0.0.1:{port}"
        key = _worker_api_key(url)
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
        batched, batched_rss, batched_info = _round(registry, worker_env, "batched", BATCH, EVENTS, DEADLINE)
        single, single_rss, single_info = _round(registry, worker_env, "single", 1, SINGLE_EVENTS, DEADLINE)
        latencies = _latency_round(registry, worker_env, LATENCY_EVENTS)
        p50, p99 = _percentile(latencies, 0.5) * 1000, _percentile(latencies, 0.99) * 1000
        _check_server(server, port)
        server_mem.stop()
        mb = 1024 * 1024
        main_max = max(batched_rss.main_max, single_rss.main_max) / mb
        child_max = max(batched_rss.child_max, single_rss.child_max) / mb
        rows += [
            (
                f"{EVENTS:,} audit events, batched ({BATCH or 'default'}), commit to done",
                f"{batched:,.0f} ev/s",
                f">= {TARGET_RATE:,.0f} ev/s",
                "OK" if batched >= TARGET_RATE else "BELOW TARGET",
            ),
            (
                f"  of which publishing after commit ({EVENTS:,} messages)",
                f"{batched_info['published']:.1f} s",
                f"of {batched_info['elapsed']:.1f} s",
                "",
            ),
            (
                f"{SINGLE_EVENTS:,} audit events, one call per event",
                f"{single:,.0f} ev/s",
                f">= {SEED_RATE * 60:,.0f}/min = {SEED_RATE:.1f} ev/s",
                "OK" if single >= SEED_RATE else "BELOW TARGET",
            ),
            ("batched / one call per event (events/s)", f"x {batched / single:.1f}", "", ""),
            (
                f"one event, commit to done, p50 ({LATENCY_EVENTS} events)",
                f"{p50:.1f} ms",
                "target <= 30 ms",
                "OK" if p50 <= 30 else "MISSED",
            ),
            (
                f"one event, commit to done, p99 ({LATENCY_EVENTS} events)",
                f"{p99:.1f} ms",
                "target <= 100 ms",
                "OK" if p99 <= 100 else "MISSED",
            ),
            (
                "worker RSS max, main process",
                f"{main_max:.0f} MB",
                f"<= {TARGET_RSS_MB:.0f} MB",
                "OK" if main_max <= TARGET_RSS_MB else "ABOVE TARGET",
            ),
            (
                "worker RSS max, pool child (-c 1)",
                f"{child_max:.0f} MB",
                f"<= {TARGET_RSS_MB:.0f} MB",
                "OK" if child_max <= TARGET_RSS_MB else "ABOVE TARGET",
            ),
            (
                "Odoo HTTP server (threaded) RSS / VMS max",
                f"{server_mem.main_max / mb:.0f} / {server_mem.main_vms_max / mb:.0f} MB",
                "VMS < limit_memory_soft",
                "",
            ),
        ]
    finally:
        server_mem.stop()
        devstack_odoo.stop_server(SERVER)
        drop_publishers()
        import odoo

        odoo.sql_db.close_db(DB)  # the pool's idle connections would block dropdb
        drop(DB)
    return rows


def _worker_api_key(url):
    """Log in as admin and make the technical user's API key; close the connections after."""
    common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common")
    models = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object")
    try:
        uid = common.authenticate(DB, "admin", "admin", {})
        return models.execute_kw(DB, uid, "admin", "quicksol.event.bus", "generate_worker_api_key", [])
    finally:
        common("close")()
        models("close")()


def _check_server(server, port):
    """The server must have served the whole run: no exit, no reload (a reload re-executes
    Odoo in the same pid, so its log says so)."""
    from devstack import config

    if server.poll() is not None:
        raise RuntimeError(f"the bench's Odoo server exited ({server.returncode})")
    log = (config.RUN / f"{SERVER}.log").read_text(errors="replace")
    for sign in ("memory limit", "virtual real time limit", "Initiating server reload"):
        if sign in log:
            raise RuntimeError(f"the bench's Odoo server hit a limit during the run: {sign!r} in its log")


def _purge(url):
    """Declare the topology (a fresh broker has no queue yet) and empty the audit queues."""
    from kombu import Connection

    from quicksol_bus.topology import get_queue, kombu_queues

    with Connection(url) as conn:
        channel = conn.default_channel
        for queue in kombu_queues():
            queue(channel).declare()
        channel.queue_purge(QUEUE)
        channel.queue_purge(get_queue(QUEUE).dead_queue)


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
