"""A broker URL list (kombu's ``amqp://a;amqp://b``) fails over when the first broker is down.

The first URL points at a closed loopback port (a broker that is down), the second at the test
broker. Each client of the bus is tried with that list: Odoo's publisher, a worker's own broker
link, the health check, and a real Celery worker process (which must get ready and answer
ping through the list).
"""

import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from kombu import Connection, Exchange, Queue

from quicksol_bus.publisher import OutgoingMessage, Publisher
from quicksol_bus.topology import EXCHANGE
from quicksol_workers.broker import BrokerLink
from quicksol_workers.celery_app import build_app
from quicksol_workers.config import WorkerConfig
from quicksol_workers.health import check_broker

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    """A TCP port nobody listens on right now (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _down_then_up(broker_url, down=1):
    """``<down brokers>;<broker_url>``: same credentials, closed loopback ports first."""
    parts = urlsplit(broker_url)
    credentials = parts.netloc.rsplit("@", 1)[0]
    dead = [urlunsplit(parts._replace(netloc=f"{credentials}@127.0.0.1:{free_port()}")) for _ in range(down)]
    return ";".join([*dead, broker_url])


@pytest.fixture
def failover_url(services_env):
    url = _down_then_up(services_env["CELERY_BROKER_URL"])
    with pytest.raises(ConnectionRefusedError):  # the first broker really is down
        socket.create_connection(("127.0.0.1", urlsplit(url.split(";")[0]).port), timeout=1).close()
    return url


@pytest.fixture
def probe_queue(services_env):
    """A queue of this test only, bound to the events exchange under its own name."""
    name = f"qsb-failover-{uuid.uuid4().hex[:8]}"
    with Connection(services_env["CELERY_BROKER_URL"]) as conn:
        queue = Queue(
            name, Exchange(EXCHANGE, type="direct", durable=True), routing_key=name, auto_delete=False
        )
        queue(conn.channel()).declare()
        yield name
        queue(conn.channel()).delete()


def test_odoo_publisher_publishes_through_the_second_broker(failover_url, probe_queue, services_env):
    publisher = Publisher(failover_url, connect_timeout=1.0, confirm_timeout=5.0)
    task_id = f"{uuid.uuid4()}:quicksol.observer.failover"
    try:
        publisher.publish_batch([OutgoingMessage(task_id, {"event_id": "failover"}, probe_queue, 1)])
    finally:
        publisher.close()
    with Connection(services_env["CELERY_BROKER_URL"]) as conn:
        message = Queue(probe_queue, no_declare=True)(conn.channel()).get(no_ack=True)
    assert message is not None and message.headers["id"] == task_id


def test_worker_broker_link_and_health_check_use_the_second_broker(failover_url, probe_queue, services_env):
    with Connection(services_env["CELERY_BROKER_URL"]) as conn:  # one message only the live broker has
        conn.Producer().publish(
            {"probe": True}, exchange=EXCHANGE, routing_key=probe_queue, serializer="json"
        )
    app = build_app(WorkerConfig.from_env({"CELERY_BROKER_URL": failover_url}))
    link = BrokerLink(app, broker_url=failover_url, connect_timeout=1.0)
    try:
        assert link.queue_depth(probe_queue) == 1
    finally:
        link.close()
    assert (
        check_broker(WorkerConfig.from_env({"CELERY_BROKER_URL": failover_url}), timeout=1.0) == "reachable"
    )


def test_worker_broker_link_passes_two_brokers_that_are_down(services_env, probe_queue):
    url = _down_then_up(services_env["CELERY_BROKER_URL"], down=2)
    link = BrokerLink(
        build_app(WorkerConfig.from_env({"CELERY_BROKER_URL": url})), broker_url=url, connect_timeout=1.0
    )
    try:
        assert link.queue_depth(probe_queue) == 0
    finally:
        link.close()


def test_a_celery_worker_gets_ready_and_answers_ping_through_the_list(
    tmp_path, failover_url, probe_queue, services_env, wait_for
):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "USER", "PASSWORD")},
        **services_env,
        "CELERY_BROKER_URL": failover_url,
        "QSB_WORKER_LOG_JSON": "0",
    }
    node = f"{probe_queue}@failover"
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "quicksol_workers", "worker", "-Q", probe_queue, "-c", "1",
             "-n", node, "--loglevel=INFO"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        wait_for(
            lambda: worker.poll() is None and " ready." in log.read_text(errors="replace"),
            90,
            lambda: f"worker not ready through the URL list:\n{log.read_text(errors='replace')[-3000:]}",
        )
        health = subprocess.run(
            [sys.executable, "-m", "quicksol_workers.health", "--worker", node, "--skip", "odoo"],
            env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert health.returncode == 0, health.stdout + health.stderr
        assert f"ok   worker: {node}" in health.stdout
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
