"""The fault matrix's shared machinery: one Odoo server and its workers for every case, the
burst emitter, the reconciliation of events against effects, and the session's table.

A case (tests/faults/test_fault_matrix.py) emits a known burst through :func:`emit_burst`,
injects its fault, restores, waits with :meth:`FaultMatrix.recover` until every committed
event has run (or the deadline passes), and :meth:`FaultMatrix.reconcile` compares each
committed event with its effect rows (``quicksol.test.fault.effect``, one per observer run,
keyed by event uuid and token). The table of every case is printed at the end of the session
and written to ``.run/fault-matrix.txt`` (``QSB_FAULT_MATRIX_REPORT`` moves it).
"""

import importlib.util
import os
import signal
import socket
import threading
import time
import xmlrpc.client
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import devstack
from devstack import config

ROOT = Path(__file__).resolve().parents[2]

FAULT_EVENT = "testrec.fault"
FAULT_PAIR_EVENT = "testrec.fault_pair"
FAULT_OBSERVER = "quicksol.test.observer.fault"  # commission_events
FAULT_AUDIT_OBSERVER = "quicksol.test.observer.fault_audit"  # audit_events
FAULT_DEBOUNCED_EVENT = "testrec.fault_debounced"
OBSERVERS = {
    FAULT_EVENT: (FAULT_OBSERVER,),
    FAULT_PAIR_EVENT: (FAULT_OBSERVER, FAULT_AUDIT_OBSERVER),
    FAULT_DEBOUNCED_EVENT: ("quicksol.test.observer.fault_debounced",),
}
COMMISSION = "commission_events"
AUDIT = "audit_events"

# Every case emits at least this many committed events, and rolled-back ones beside them.
COMMITTED_PER_CASE = 500
# How long a case may take to recover after its fault is removed before what is missing
# counts as lost.
RECOVERY_DEADLINE = 120
# An RPC call that takes longer than this is a hung save (the promise is "a save never hangs").
RPC_TIMEOUT = 60

# The Odoo server of the matrix: the broker URL comes from a system parameter, not from the
# environment, so a case can point the server at another broker without a restart; a short
# breaker reset and relay age make recovery quick (the relay cron runs on the test's call).
SERVER_ENV = {
    "EVENT_BUS_BREAKER_RESET": "1",
    "EVENT_BUS_RELAY_MIN_AGE": "0.5",
}
# The workers outlast an Odoo restart (20 retries, at most 2 s apart) and give up on a call
# to a frozen Odoo after 5 s.
WORKER_ENV = {
    "QSB_WORKER_MAX_RETRIES": "20",
    "QSB_WORKER_RETRY_BASE": "0.5",
    "QSB_WORKER_RETRY_CAP": "2",
    "QSB_WORKER_ODOO_TIMEOUT": "5",
}


def _load(name, path):
    """A conftest as a plain module (its helpers; its fixtures are not registered again)."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


root_conftest = _load("qsb_faults_root_conftest", ROOT / "conftest.py")
workers_conftest = _load("qsb_faults_workers_conftest", ROOT / "tests" / "workers" / "conftest.py")
WorkerProcess = workers_conftest.WorkerProcess
Amqp = workers_conftest.Amqp


# ---------------------------------------------------------------------------------------
# Odoo over XML-RPC
# ---------------------------------------------------------------------------------------


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout):
        super().__init__()
        self.timeout = timeout

    def make_connection(self, host):
        connection = super().make_connection(host)
        connection.timeout = self.timeout
        return connection


class Odoo:
    """Admin's XML-RPC hands in the matrix's Odoo; every call has a timeout."""

    def __init__(self, url, db, password="admin", timeout=RPC_TIMEOUT):
        self.url, self.db, self.password, self.timeout = url, db, password, timeout
        self.uid = None
        self._relay_cron = None

    def _proxy(self, path, timeout):
        return xmlrpc.client.ServerProxy(
            f"{self.url}/xmlrpc/2/{path}", allow_none=True, transport=_TimeoutTransport(timeout)
        )

    def call(self, model, method, *args, timeout=None, **kwargs):
        timeout = timeout or self.timeout
        if self.uid is None:
            self.uid = self._proxy("common", timeout).authenticate(self.db, "admin", self.password, {})
            assert self.uid, f"admin login refused on {self.db}"
        return self._proxy("object", timeout).execute_kw(
            self.db, self.uid, self.password, model, method, list(args), kwargs
        )

    def set_param(self, key, value):
        self.call("ir.config_parameter", "set_param", key, value)

    def run_relay(self):
        """Run the relay cron once, as Odoo's cron runner would (crons are off on this server)."""
        if self._relay_cron is None:
            (cron,) = self.call(
                "ir.model.data",
                "search_read",
                [("module", "=", "quicksol_event_bus"), ("name", "=", "ir_cron_relay")],
                fields=["res_id"],
            )
            self._relay_cron = cron["res_id"]
        self.call("ir.cron", "method_direct_trigger", [self._relay_cron])


# ---------------------------------------------------------------------------------------
# Emitting a burst
# ---------------------------------------------------------------------------------------


@dataclass
class Burst:
    """What a case emitted: committed tokens (with their event uuids) and rolled-back ones."""

    case: str
    event_name: str = FAULT_EVENT
    committed: dict = field(default_factory=dict)  # token -> event uuid
    rolled_back: set = field(default_factory=set)
    unknown: set = field(default_factory=set)  # a call that failed for the fault: Odoo knows
    calls: int = 0
    longest_call: float = 0.0  # seconds of the slowest emitting call (a save must not hang)

    def tokens(self):
        return set(self.committed) | self.rolled_back | self.unknown


def emit_burst(
    odoo,
    burst,
    count,
    calls=2,
    rollback_ratio=0.1,
    failing_call=False,
    extra=None,
    timeout=None,
    tolerate_errors=False,
):
    """Emit ``count`` committed events of ``burst.event_name`` in ``calls`` RPC calls, plus
    rolled-back ones: ``rollback_ratio`` of them inside each call (savepoints undone) and,
    with ``failing_call``, one whole call whose transaction fails after emitting.

    This is the only place the matrix emits: adapt it if the fixture addon's RPC methods
    change (e.g. callable only in test mode). With ``tolerate_errors`` a call that fails
    (the fault of the case) leaves its tokens ``unknown``: the reconciliation asks Odoo
    which of them committed.
    """
    per_call = -(-count // calls)
    start = burst.calls * 100000
    for call in range(calls):
        tokens = [f"{burst.case}:{start + call * 10000 + i}" for i in range(per_call)][
            : count - call * per_call
        ]
        rollback = [
            f"{burst.case}:{start + call * 10000 + 5000 + i}"
            for i in range(int(len(tokens) * rollback_ratio))
        ]
        started = time.monotonic()
        try:
            uuids = odoo.call(
                "quicksol.test.fault.matrix",
                "emit_burst",
                burst.case,
                tokens,
                rollback,
                False,
                burst.event_name,
                extra or {},
                timeout=timeout,
            )
        except (OSError, xmlrpc.client.Error):
            if not tolerate_errors:
                raise
            burst.unknown.update(tokens)
            burst.rolled_back.update(rollback)
            continue
        finally:
            burst.longest_call = max(burst.longest_call, time.monotonic() - started)
        missing = [token for token, uuid in uuids.items() if not uuid]
        assert not missing, f"{len(missing)} events were not routed async (is Odoo in sync mode?)"
        burst.committed.update(uuids)
        burst.rolled_back.update(rollback)
    if failing_call:
        tokens = [f"{burst.case}:{start + 90000 + i}" for i in range(max(10, count // 20))]
        with pytest.raises(xmlrpc.client.Fault, match="rolls this burst back on purpose"):
            odoo.call(
                "quicksol.test.fault.matrix",
                "emit_burst",
                burst.case,
                tokens,
                [],
                True,
                burst.event_name,
                extra or {},
                timeout=timeout,
            )
        burst.rolled_back.update(tokens)
    burst.calls += 1
    return burst


# ---------------------------------------------------------------------------------------
# Reconciliation
# ---------------------------------------------------------------------------------------


@dataclass
class Outcome:
    case: str
    events: int = 0  # committed events
    rolled_back: int = 0
    effects: int = 0
    lost: int = 0  # (committed event, observer) pairs with no effect
    duplicated: int = 0  # pairs with more than one effect
    phantom: int = 0  # rolled-back events with an event row or an effect
    not_done: int = 0  # committed events whose state is not done
    recover_seconds: float = None
    notes: list = field(default_factory=list)
    data: dict = None  # what Odoo answered (reconcile), for the checks of a case

    def problems(self):
        found = [
            f"{label}: {value}"
            for label, value in (
                ("lost", self.lost),
                ("duplicated", self.duplicated),
                ("rolled back but present", self.phantom),
                ("events not done", self.not_done),
            )
            if value
        ]
        if self.recover_seconds is None:
            found.append(f"did not recover within {RECOVERY_DEADLINE}s")
        return found


def reconcile(odoo, burst):
    """Compare every committed event of ``burst`` with its effect rows; return an Outcome."""
    data = odoo.call("quicksol.test.fault.matrix", "reconcile", burst.case)
    stored = {token: (uuid, state) for token, uuid, state in data["events"]}
    committed = dict(burst.committed)
    for token in burst.unknown & set(stored):  # a failed call that committed after all
        committed[token] = stored[token][0]
    runs = {}
    for token, uuid, observer, count in data["effects"]:
        runs[(token, observer)] = runs.get((token, observer), 0) + count
        if token in committed and uuid != committed[token]:
            runs[("uuid-mismatch", token)] = 1
    outcome = Outcome(burst.case, events=len(committed), rolled_back=len(burst.rolled_back))
    outcome.effects = sum(count for _t, _u, _o, count in data["effects"])
    for token, uuid in committed.items():
        for observer in OBSERVERS[burst.event_name]:
            count = runs.get((token, observer), 0)
            outcome.lost += count == 0
            outcome.duplicated += count > 1
        if stored.get(token, (None, None))[1] != "done":
            outcome.not_done += 1
        if token in stored and stored[token][0] != uuid:
            outcome.notes.append(f"{token}: Odoo stored {stored[token][0]}, the call returned {uuid}")
    effect_tokens = {token for token, _u, _o, _c in data["effects"]}
    outcome.phantom = sum(1 for token in burst.rolled_back if token in stored or token in effect_tokens)
    outcome.data = data
    return outcome


def unsettled(odoo, burst):
    """(events stored, not done, pending deliveries) of the burst's case."""
    return odoo.call("quicksol.test.fault.matrix", "unsettled", burst.case)


# ---------------------------------------------------------------------------------------
# Workers
# ---------------------------------------------------------------------------------------


class Workers:
    """Celery worker processes of the matrix, kept across cases; a case kills or stops some
    and :meth:`ensure` brings the set back."""

    def __init__(self, env):
        self.env = env
        self.procs = []

    def start(self, queue, concurrency=2, env=None, wait=True):
        worker = WorkerProcess(queue, {**self.env, **(env or {})}, concurrency=concurrency)
        self.procs.append(worker)
        if wait:
            devstack.wait_for(worker.ready, 60, f"worker {worker.name} not ready")
        return worker

    def alive(self, queue):
        return [w for w in self.procs if w.queue == queue and w.proc.poll() is None]

    def ensure(self, queue, count=1, concurrency=2):
        """At least ``count`` live workers on ``queue``; returns them."""
        for worker in [w for w in self.procs if w.proc.poll() is not None]:
            worker.stop()  # reap, and kill orphaned pool children
            self.procs.remove(worker)
        while len(self.alive(queue)) < count:
            self.start(queue, concurrency=concurrency)
        return self.alive(queue)

    def retire(self, worker):
        worker.stop()
        self.procs.remove(worker)

    def stop(self, queue=None, timeout=60):
        for worker in [w for w in self.procs if queue is None or w.queue == queue]:
            worker.stop(timeout)
            self.procs.remove(worker)


# ---------------------------------------------------------------------------------------
# The matrix: fixtures, recovery, table
# ---------------------------------------------------------------------------------------

RESULTS = []


class FaultMatrix:
    """What a case needs: Odoo, the workers, the broker, AMQP, and the table row it adds."""

    def __init__(self, server, odoo, workers, services_env, broker_url):
        self.server, self.odoo, self.workers = server, odoo, workers
        self.services_env = services_env
        self.broker_url = broker_url

    def burst(self, case, event_name=FAULT_EVENT):
        return Burst(case, event_name)

    def emit(self, burst, count=COMMITTED_PER_CASE, **kw):
        return emit_burst(self.odoo, burst, count, **kw)

    def progress(self, case):
        return self.odoo.call("quicksol.test.fault.matrix", "progress", case)

    def recover(self, burst, restored_at, relay=True, deadline=RECOVERY_DEADLINE, extra_done=None):
        """Wait until the burst is settled (running the relay cron while deliveries are
        pending, as its schedule would); return the seconds since ``restored_at``, or None
        when the deadline passed first."""

        def done():
            try:
                stored, not_done, pending = unsettled(self.odoo, burst)
                if stored >= len(burst.committed) and not not_done:
                    return extra_done is None or extra_done()
                if relay and pending:
                    self.odoo.run_relay()
            except (OSError, xmlrpc.client.Error):
                pass  # Odoo or the broker still coming back: poll again
            return False

        try:
            devstack.wait_for(done, deadline, "not settled", interval=0.5)
        except devstack.StackError:
            return None
        return round(time.monotonic() - restored_at, 1)

    def finish(self, burst, recover_seconds, notes=()):
        """Reconcile, add the table row, fail the case on any loss or duplicate."""
        outcome = reconcile(self.odoo, burst)
        outcome.recover_seconds = recover_seconds
        outcome.notes.append(f"slowest emitting call (hundreds of saves): {burst.longest_call:.1f}s")
        outcome.notes.extend(notes)
        RESULTS.append(outcome)
        write_report()
        problems = outcome.problems()
        assert not problems, (
            f"{burst.case}: " + "; ".join(problems) + "".join(f"\n  {note}" for note in outcome.notes)
        )
        return outcome

    # -------------------------------------------------------------- fault helpers

    def rabbitmqctl(self, *args):
        from devstack import rabbitmq

        return rabbitmq._ctl(*args, timeout=60)

    def stop_broker(self, broker_control):
        """Stop RabbitMQ gracefully with SIGTERM to its beam (what a service manager sends;
        quicker than the CLI), then let devstack clean up after it."""
        from devstack.proc import alive

        pid = self.broker_pid()
        os.kill(pid, signal.SIGTERM)
        devstack.wait_for(lambda: not alive(pid), 60, "RabbitMQ ignored SIGTERM")
        broker_control.stop()

    def broker_pid(self):
        from devstack import rabbitmq

        return rabbitmq._pid()

    def server_pid(self):
        from devstack.proc import read_pid

        return read_pid(config.RUN / f"{self.server.name}.pid")

    def kill_server(self):
        """SIGKILL the Odoo server (no shutdown of any kind), and wait until it is gone."""
        pid = self.server_pid()
        os.killpg(pid, signal.SIGKILL)
        devstack.wait_for(lambda: not self.server.is_up(), 30, "Odoo still answers after SIGKILL")

    def point_broker(self, url):
        """The broker URL Odoo publishes to (system parameter: no restart)."""
        self.odoo.set_param("quicksol_event_bus.broker_url", url)


def format_table(results):
    header = ("case", "events", "rolled back", "effects", "lost", "duplicated", "not done", "recover s")
    rows = [
        (
            r.case,
            str(r.events),
            str(r.rolled_back),
            str(r.effects),
            str(r.lost),
            str(r.duplicated),
            str(r.not_done),
            "-" if r.recover_seconds is None else f"{r.recover_seconds:.1f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def report_path():
    return Path(os.environ.get("QSB_FAULT_MATRIX_REPORT") or config.RUN / "fault-matrix.txt")


def format_notes(results):
    return [f"{r.case}: {note}" for r in results for note in r.notes]


def write_report():
    path = report_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    notes = format_notes(RESULTS)
    path.write_text(format_table(RESULTS) + "\n" + "".join(f"\n- {note}" for note in notes) + "\n")


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    terminalreporter.section("fault matrix")
    terminalreporter.write_line(format_table(RESULTS))
    for note in format_notes(RESULTS):
        terminalreporter.write_line(f"- {note}")
    terminalreporter.write_line(f"(written to {report_path()})")


class SilentListener:
    """A TCP socket on loopback that accepts connections and never says a word (no AMQP)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted.append(conn)  # held open, never read from or written to

    def close(self):
        self._stop.set()
        self.thread.join(5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


# Module scope, not session: under `make test` the suites after this one (tests/workers) must
# not find the matrix's workers still consuming their queues.
@pytest.fixture(scope="module")
def fault_server(services_env):
    """The matrix's own Odoo server on a fresh copy ``qsb_faults`` of the test database."""
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("CELERY_BROKER_URL", raising=False)
        for key, value in SERVER_ENV.items():
            patch.setenv(key, value)
        env = {k: v for k, v in services_env.items() if k != "CELERY_BROKER_URL"}
        with root_conftest.odoo_test_server(env, "qsb_faults", "odoo-faults") as server:
            yield server


@pytest.fixture(scope="module")
def matrix(fault_server, services_env, rabbitmq_admin):
    from quicksol_bus.topology import QUEUES

    for spec in QUEUES.values():  # messages other suites left behind are not the matrix's
        for name in (spec.name, spec.dead_queue):
            if rabbitmq_admin.queue(name) is not None:
                rabbitmq_admin.purge(name)
    odoo = Odoo(fault_server.url, fault_server.db)
    broker_url = services_env["CELERY_BROKER_URL"]
    odoo.set_param("quicksol_event_bus.broker_url", broker_url)
    key = odoo.call("quicksol.event.bus", "generate_worker_api_key")
    env = {**workers_conftest._worker_env(fault_server, services_env, key), **WORKER_ENV}
    workers = Workers(env)
    try:
        yield FaultMatrix(fault_server, odoo, workers, services_env, broker_url)
    finally:
        workers.stop(timeout=5)  # the session is over: no need to wait for a warm shutdown


@pytest.fixture
def fault(matrix, broker_control, wait_for):
    """The matrix, with a commission worker running, Odoo up and pointed at the real broker;
    after the case the broker, Redis and Odoo are up again whatever the case did."""
    if not matrix.server.is_up():
        matrix.server.start()
    matrix.point_broker(matrix.broker_url)
    matrix.workers.ensure(COMMISSION)
    yield matrix
    if not broker_control.is_up():
        broker_control.start()
    if not devstack.is_up("redis"):
        devstack.start("redis")
    if not matrix.server.is_up():
        matrix.server.start()
