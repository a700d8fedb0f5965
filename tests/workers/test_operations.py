"""Operations of the workers on real processes: Flower behind basic auth with the per-queue
metrics, the health check, Celery beat's maintenance jobs against Odoo, the documented worker
command (ping, warm shutdown on SIGTERM, nothing lost) and JSON logs with the event's ids.

Every process a test starts is stopped in a ``finally`` or by a fixture, whatever happens.
"""

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from quicksol_bus.topology import MAINTENANCE_QUEUE, QUEUES

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv/bin/python") if (ROOT / ".venv/bin/python").exists() else sys.executable
pytestmark = [pytest.mark.integration]

ASYNC = "quicksol.test.observer.async"  # audit_events (and testrec.custom -> commission too)
FLAKY = "quicksol.test.observer.flaky"  # notification_events, the only observer of testrec.flaky
HOST = socket.gethostname()
METRIC_NAMES = (
    "quicksol_worker_processed_total",
    "quicksol_worker_failed_total",
    "quicksol_worker_retried_total",
    "quicksol_worker_dead_lettered_total",
    "quicksol_worker_run_seconds_sum",
    "quicksol_worker_run_seconds_count",
)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Background:
    """A process of ours (Flower, beat, a worker as documented) with its log; stop() always."""

    def __init__(self, name, cmd, env, tmp_path):
        self.log = tmp_path / f"{name}.log"
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

    def running(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"exited with {self.proc.returncode}:\n{self.text()[-3000:]}")
        return True

    def stop(self, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # the main process only: warm shutdown
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # pool children left behind, if any
        except ProcessLookupError:
            pass
        self._fh.close()
        return self.proc.returncode


@pytest.fixture
def background(tmp_path):
    started = []

    def start(name, cmd, env):
        process = Background(name, cmd, env, tmp_path)
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop()


def celery(*args):
    return [PYTHON, "-m", "celery", "-A", "quicksol_workers", *args]


def emit(odoo_admin, event, data):
    uuid = odoo_admin.call("quicksol.test.record", "emit_for_test", event, data)
    assert uuid, f"{event} was not routed async (is Odoo in sync mode?)"
    return uuid


def record(odoo_admin, name="ops"):
    return odoo_admin.call("quicksol.test.record", "create", [{"name": name}])[0]


def json_lines(text):
    lines = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines


# ------------------------------------------------------------------------------ Flower, metrics, logs


def test_flower_needs_basic_auth_everywhere_and_exports_queue_metrics_and_logs_are_json(
    odoo_admin, worker_env, clean_queues, start_worker, background, wait_for, services_env
):
    import redis

    from quicksol_workers.metrics import metrics_key

    client = redis.Redis.from_url(services_env["CELERY_RESULT_BACKEND"])
    client.delete(metrics_key("audit_events"))
    worker = start_worker("audit_events")
    uuid = emit(odoo_admin, "testrec.custom", {"res_ids": [record(odoo_admin)]})
    wait_for(
        lambda: odoo_admin.state(uuid, ASYNC) == "done",
        timeout=60,
        message="the audit worker did not deliver the event",
    )
    wait_for(
        lambda: float(client.hget(metrics_key("audit_events"), "processed") or 0) >= 1,
        timeout=10,
        message="the worker recorded no processed count in Redis",
    )

    port = _free_port()
    flower = background(
        "flower",
        celery("flower", "--address=127.0.0.1", f"--port={port}"),
        {**worker_env, "FLOWER_BASIC_AUTH": "ops:s3cret"},
    )
    base = f"http://127.0.0.1:{port}"

    def answers():
        flower.running()
        try:
            return requests.get(f"{base}/healthcheck", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(answers, timeout=60, message=lambda: f"Flower did not answer:\n{flower.text()[-2000:]}")
    for path in ("/", "/metrics", "/api/workers", "/tasks"):
        assert requests.get(base + path, timeout=10).status_code == 401, path
        assert requests.get(base + path, auth=("ops", "wrong"), timeout=10).status_code == 401, path
        assert requests.get(base + path, auth=("ops", "s3cret"), timeout=10).status_code == 200, path

    metrics = requests.get(f"{base}/metrics", auth=("ops", "s3cret"), timeout=10).text
    for name in METRIC_NAMES:
        for queue in QUEUES:
            assert f'{name}{{queue="{queue}"}}' in metrics, (name, queue)
    processed = next(
        line
        for line in metrics.splitlines()
        if line.startswith('quicksol_worker_processed_total{queue="audit_events"}')
    )
    assert float(processed.split()[-1]) >= 1, processed

    node = f"{worker.name}@{HOST}"

    def flower_lists_worker():
        resp = requests.get(
            f"{base}/api/workers", params={"refresh": "1"}, auth=("ops", "s3cret"), timeout=30
        )
        return resp.status_code == 200 and node in resp.json()

    wait_for(flower_lists_worker, timeout=30, message=f"Flower does not list {node}")

    # JSON logs: the delivery's lines, and Celery's own task lines, carry the event's ids
    def delivered_line():
        lines = [ln for ln in json_lines(worker.text()) if ln.get("event_id") == uuid]
        return lines if any("delivered" in ln["message"] for ln in lines) else None

    lines = wait_for(delivered_line, timeout=10, message="no JSON log line names the event")
    assert all(ln.get("correlation_id") for ln in lines if ln["logger"].startswith("quicksol")), lines
    assert any(ln["logger"].startswith("celery") for ln in lines), lines  # received / succeeded
    assert all({"ts", "level", "logger", "message"} <= set(ln) for ln in lines)


# ------------------------------------------------------------------------------ health check


def health(env, *args):
    res = subprocess.run(
        [PYTHON, "-m", "quicksol_workers.health", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    return res.returncode, res.stdout + res.stderr


def test_health_check_passes_on_the_live_stack_and_names_the_stopped_broker(
    worker_env, start_worker, broker_control
):
    worker = start_worker("audit_events")
    code, out = health(worker_env, f"--worker={worker.name}@{HOST}")
    assert code == 0, out
    for check in ("broker", "redis", "odoo", "worker"):
        assert f"ok   {check}:" in out, out
    worker.stop()

    broker_control.stop()
    code, out = health(worker_env, "--any-worker")
    assert code == 1, out
    failing = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert any(line.startswith("FAIL broker:") for line in failing), out
    assert "ok   redis:" in out and "ok   odoo:" in out, out  # only what is down is blamed


# ------------------------------------------------------------------------------ beat, maintenance


def test_beat_schedules_cleanup_and_reconciliation_on_the_maintenance_queue(worker_env):
    code = (
        "import json\n"
        "from quicksol_workers import app\n"
        "from quicksol_workers.celery_app import MAINTENANCE_QUEUE\n"
        "route = lambda t: app.amqp.router.route({}, t)['queue'].name\n"
        "print(json.dumps({'schedule': {k: v['task'] for k, v in app.conf.beat_schedule.items()},\n"
        "  'retention': app.quicksol_config.retention_days, 'queue': MAINTENANCE_QUEUE,\n"
        "  'routes': [route('quicksol.workers.cleanup'), route('quicksol.workers.reconcile')]}))\n"
    )
    env = {**worker_env, "QSB_WORKER_RETENTION_DAYS": "7"}
    res = subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout.strip().splitlines()[-1])
    assert sorted(info["schedule"].values()) == ["quicksol.workers.cleanup", "quicksol.workers.reconcile"]
    assert info["retention"] == 7
    assert info["queue"] == MAINTENANCE_QUEUE
    assert info["routes"] == [MAINTENANCE_QUEUE, MAINTENANCE_QUEUE]
    assert MAINTENANCE_QUEUE not in QUEUES


def test_beat_runs_cleanup_and_reconciliation_against_odoo(
    odoo_admin, odoo_server, worker_env, clean_queues, start_worker, background, wait_for, tmp_path
):
    from devstack import postgres

    # a dead letter Odoo does not know of: RabbitMQ dead-letters the message itself
    dead_uuid = emit(odoo_admin, "testrec.flaky", {"res_ids": [record(odoo_admin)], "fail": ""})
    wait_for(
        lambda: clean_queues.get_messages("notification_events", count=1),
        timeout=30,
        message="the event's message never reached notification_events",
    )
    assert odoo_admin.state(dead_uuid, FLAKY) == "queued"

    # two done events: one older than the retention, one not
    start_worker("notification_events")
    old_uuid = emit(odoo_admin, "testrec.flaky", {"res_ids": [record(odoo_admin)], "fail": ""})
    young_uuid = emit(odoo_admin, "testrec.flaky", {"res_ids": [record(odoo_admin)], "fail": ""})
    wait_for(
        lambda: {odoo_admin.state(old_uuid, FLAKY), odoo_admin.state(young_uuid, FLAKY)} == {"done"},
        timeout=60,
        message="the flaky observer's events did not get done",
    )
    postgres.psql(
        f"UPDATE quicksol_event SET create_date = create_date - interval '10 days' WHERE uuid = '{old_uuid}'",
        db=odoo_server.db,
    )
    postgres.psql(
        f"UPDATE quicksol_event SET create_date = create_date - interval '2 days' "
        f"WHERE uuid = '{young_uuid}'",
        db=odoo_server.db,
    )
    # Odoo believes a dead letter only once its queue's message TTL (7 days here) has passed
    # since publishing: before that a live copy could still be queued (confirm_dead_letter).
    postgres.psql(
        "UPDATE quicksol_event_delivery d SET published_at = published_at - interval '8 days' "
        f"FROM quicksol_event e WHERE e.id = d.event_id AND e.uuid = '{dead_uuid}'",
        db=odoo_server.db,
    )

    env = {
        "QSB_WORKER_RETENTION_DAYS": "5",
        "QSB_WORKER_CLEANUP_INTERVAL": "1",
        "QSB_WORKER_RECONCILE_INTERVAL": "1",
    }
    maintenance = start_worker(MAINTENANCE_QUEUE, env=env)
    beat = background(
        "beat",
        celery("beat", f"--schedule={tmp_path / 'schedule'}", "--loglevel=INFO"),
        {**worker_env, **env},
    )

    def events(uuid):
        return odoo_admin.call("quicksol.event", "search_count", [("uuid", "=", uuid)])

    wait_for(
        lambda: beat.running() and events(old_uuid) == 0,
        timeout=60,
        message=lambda: f"old done event not purged:\n{maintenance.text()[-2000:]}",
    )
    assert events(young_uuid) == 1
    wait_for(
        lambda: odoo_admin.state(dead_uuid, FLAKY) == "dead",
        timeout=60,
        message=lambda: f"dead letter not reconciled:\n{maintenance.text()[-2000:]}",
    )
    assert "quicksol-cleanup" in beat.text() and "quicksol-reconcile" in beat.text()
    assert "older than 5 days" in maintenance.text()
    # the dead letter stays in the dead queue for people to read, now marked
    dead = clean_queues.get_messages(QUEUES["notification_events"].dead_queue, count=10)
    assert any(m["properties"]["headers"].get("quicksol_dead_marked") is True for m in dead), dead


# ------------------------------------------------------------------------------ documented worker


def test_documented_worker_answers_ping_and_sigterm_finishes_without_losing(
    odoo_admin, worker_env, clean_queues, start_worker, background, wait_for
):
    res_id = record(odoo_admin)
    uuids = [emit(odoo_admin, "testrec.custom", {"res_ids": [res_id], "n": i}) for i in range(20)]
    worker = background(
        "documented", celery("worker", "-Q", "audit_events"), {**worker_env, "QSB_WORKER_BATCH_SIZE": "2"}
    )
    ping = celery("inspect", "ping", "-d", f"celery@{HOST}", "--timeout=5")

    def pong():
        worker.running()
        res = subprocess.run(ping, env=worker_env, capture_output=True, text=True, timeout=60, cwd=ROOT)
        return res.returncode == 0 and "pong" in res.stdout

    wait_for(pong, timeout=60, message=lambda: f"worker did not answer ping:\n{worker.text()}")
    wait_for(
        lambda: any(odoo_admin.state(u, ASYNC) == "done" for u in uuids),
        timeout=60,
        message="the documented worker delivered nothing",
    )
    worker.proc.send_signal(signal.SIGTERM)
    wait_for(
        lambda: worker.proc.poll() is not None,
        timeout=60,
        message=lambda: f"worker did not stop on SIGTERM:\n{worker.text()[-3000:]}",
    )
    assert worker.proc.returncode == 0, worker.text()[-3000:]
    assert "Warm shutdown" in worker.text() or "warm shutdown" in worker.text().lower()

    # nothing lost: whatever was not done is still queued and a new worker finishes it
    states = [odoo_admin.state(u, ASYNC) for u in uuids]
    assert set(states) <= {"done", "queued"}, states
    start_worker("audit_events")
    wait_for(
        lambda: all(odoo_admin.state(u, ASYNC) == "done" for u in uuids),
        timeout=60,
        message="events left by the stopped worker were not delivered by the next one",
    )
    assert clean_queues.message_count(QUEUES["audit_events"].dead_queue) == 0
