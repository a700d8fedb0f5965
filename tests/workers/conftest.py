"""Fixtures of the worker tests: an admin XML-RPC client, the worker's env, worker processes."""

import os
import signal
import subprocess
import sys
import time
import xmlrpc.client
from pathlib import Path

import pytest

from quicksol_bus.topology import QUEUES

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv/bin/python").exists() else sys.executable


class OdooAdmin:
    """Calls Odoo as admin over XML-RPC (the test's hands in Odoo)."""

    def __init__(self, url, db, login="admin", password="admin"):
        self.url, self.db, self.password = url, db, password
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common", allow_none=True)
        self.uid = common.authenticate(db, login, password, {})
        assert self.uid, f"admin login refused on {db}"
        self.object = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)

    def call(self, model, method, *args, **kwargs):
        return self.object.execute_kw(self.db, self.uid, self.password, model, method, list(args), kwargs)

    def deliveries(self, event_uuid, observer=None):
        domain = [("event_uuid", "=", event_uuid)]
        if observer:
            domain.append(("observer", "=", observer))
        return self.call(
            "quicksol.event.delivery",
            "search_read",
            domain,
            fields=["observer", "state", "attempts", "last_error", "queue"],
        )

    def state(self, event_uuid, observer):
        rows = self.deliveries(event_uuid, observer)
        return rows[0]["state"] if rows else None

    def runs(self, observer, res_id):
        return self.call(
            "quicksol.test.log", "search_count", [("observer", "=", observer), ("res_ids", "=", str(res_id))]
        )


@pytest.fixture(scope="session")
def odoo_server(services_env):
    """Our own Odoo server and database copy, so other suites' servers never collide with ours."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("qsb_root_conftest", ROOT / "conftest.py")
    root = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(root)
    with root.odoo_test_server(services_env, "qsb_workers_e2e", "odoo-workers-e2e") as server:
        yield server


@pytest.fixture
def odoo_admin(odoo_server):
    return OdooAdmin(odoo_server.url, odoo_server.db)


@pytest.fixture
def clean_queues(rabbitmq_admin):
    for spec in QUEUES.values():
        for name in (spec.name, spec.dead_queue):
            try:
                rabbitmq_admin.purge(name)
            except Exception:  # noqa: BLE001 - the queue may not exist yet
                pass
    return rabbitmq_admin


@pytest.fixture
def worker_env(odoo_server, odoo_admin, services_env):
    key = odoo_admin.call("quicksol.event.bus", "generate_worker_api_key")
    return _worker_env(odoo_server, services_env, key)


def _worker_env(odoo_server, services_env, key):
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("ODOO_", "QSB_WORKER_"))},
        **services_env,
        "ODOO_URL": odoo_server.url,
        "ODOO_DB": odoo_server.db,
        "ODOO_USER": "event_bus_worker",
        "ODOO_API_KEY": key,
        "EVENT_BUS_SIGNING_KEY": odoo_server.env["EVENT_BUS_SIGNING_KEY"],
        "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), str(ROOT / "workers")]),
        "QSB_WORKER_RETRY_BASE": "0.5",
    }


class WorkerProcess:
    """A real ``celery -A quicksol_workers worker`` process."""

    def __init__(self, queue, env, concurrency=1, name=None, extra=()):
        self.queue = queue
        self.name = name or f"{queue}-{os.getpid()}-{time.monotonic_ns()}"
        from devstack import config

        self.log = config.RUN / f"test-worker-{self.name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "quicksol_workers",
            "worker",
            "-Q",
            queue,
            "-c",
            str(concurrency),
            "-n",
            f"{self.name}@%h",
            "--loglevel=INFO",
            "--without-mingle",
            "--without-gossip",
            *extra,
        ]
        self._fh = open(self.log, "ab")
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=self._fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            start_new_session=True,
        )

    def text(self):
        return self.log.read_text(errors="replace")

    def ready(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.text()[-3000:]}")
        return " ready." in self.text()

    def children(self):
        import psutil

        return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]

    def signal(self, signum):
        self.proc.send_signal(signum)

    def stop(self, timeout=60):
        """Warm shutdown, killed after ``timeout``; no pool child is left behind (even orphans
        of a main process a test killed: they stay in the process group of the worker)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._fh.close()

    def log_count(self, text):
        return self.text().count(text)


class Amqp:
    """The test's own AMQP connection: exact queue depths (no management-API sampling lag)
    and raw publishing of task messages."""

    def __init__(self, url):
        from kombu import Connection

        self.url = url
        self.connection = Connection(url, transport_options={"confirm_publish": True})
        self.channel = self.connection.channel()

    def depth(self, queue):
        """Messages ready in ``queue`` (not counting those a consumer holds unacked)."""
        _name, count, _consumers = self.channel.queue_declare(queue, passive=True)
        return count

    def consumers(self, queue):
        return self.channel.queue_declare(queue, passive=True)[2]

    def publish_envelopes(self, items):
        """Publish ``[(task_id, envelope, queue, priority)]`` exactly as Odoo's publisher."""
        from quicksol_bus.publisher import OutgoingMessage, Publisher

        publisher = Publisher(self.url)
        try:
            publisher.publish_batch([OutgoingMessage(*item) for item in items])
        finally:
            publisher.close()

    def close(self):
        self.connection.release()


@pytest.fixture(scope="module")
def module_worker(odoo_server, services_env):
    """``module_worker(queue, env=None, **kw)``: a worker shared by the tests of a module,
    stopped at the module's end (even on failure)."""
    import devstack

    started = []
    key = OdooAdmin(odoo_server.url, odoo_server.db).call("quicksol.event.bus", "generate_worker_api_key")

    def start(queue, env=None, **kw):
        worker = WorkerProcess(queue, {**_worker_env(odoo_server, services_env, key), **(env or {})}, **kw)
        started.append(worker)
        devstack.wait_for(worker.ready, 60, f"worker {worker.name} not ready")
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def amqp(services_env):
    link = Amqp(services_env["CELERY_BROKER_URL"])
    yield link
    link.close()


@pytest.fixture
def signed(odoo_server):
    """``signed(uuid, observer, queue, res_ids, event_name)``: the envelope Odoo would sign."""
    from quicksol_bus.envelope import build_envelope, sign_envelope

    def build(uuid, observer, queue, res_ids, event_name, key=None):
        env = build_envelope(
            event_id=uuid,
            event_name=event_name,
            observer=observer,
            queue=queue,
            db=odoo_server.db,
            model="quicksol.test.record",
            res_ids=res_ids,
            payload={},
            uid=2,
            company_id=1,
            context={},
        )
        return sign_envelope(env, key or odoo_server.env["EVENT_BUS_SIGNING_KEY"])

    return build


@pytest.fixture
def start_worker(worker_env, wait_for):
    started = []

    def start(queue, env=None, wait=True, **kw):
        worker = WorkerProcess(queue, {**worker_env, **(env or {})}, **kw)
        started.append(worker)
        if wait:
            wait_for(worker.ready, timeout=60, message=f"worker {worker.name} not ready")
        return worker

    yield start
    for worker in started:
        worker.stop()
