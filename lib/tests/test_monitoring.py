"""Broker and workers health against the real RabbitMQ of the stack, and when it is down or
hangs (a port that accepts and never answers)."""

import socket

import pytest

from quicksol_bus.monitoring import broker_status, check_broker_and_workers, workers_status
from quicksol_bus.topology import QUEUES


@pytest.fixture
def hung_port():
    """A loopback port that accepts connections and never says a word."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_queues_depths_dead_letters_and_consumers_from_the_management_api(
    services_env, rabbitmq_admin, wait_for
):
    from kombu import Connection, Exchange, Producer

    from quicksol_bus.topology import kombu_queues

    with Connection(services_env["CELERY_BROKER_URL"]) as connection:
        channel = connection.channel()
        for queue in kombu_queues():
            queue(channel).declare()
            channel.queue_purge(queue.name)
        producer = Producer(channel)
        for _ in range(3):
            producer.publish({"x": 1}, exchange=Exchange(""), routing_key="audit_events")
        producer.publish({"x": 1}, exchange=Exchange(""), routing_key="audit_events.dead")
    status = broker_status(services_env["QSB_RABBITMQ_MGMT_URL"], timeout=5)
    assert status.reachable, status.error
    assert {q.name for q in status.queues} == set(QUEUES)

    # The management API refreshes its counters every few seconds: wait for them.
    def counted():
        audit = broker_status(services_env["QSB_RABBITMQ_MGMT_URL"], timeout=5).queue("audit_events")
        return audit if (audit.messages, audit.dead_letters) == (3, 1) else None

    audit = wait_for(counted, timeout=30, message="the management API never counted the messages")
    assert (audit.messages, audit.dead_letters, audit.consumers, audit.exists) == (3, 1, 0, True)
    rabbitmq_admin.purge("audit_events")
    rabbitmq_admin.purge("audit_events.dead")


def test_no_worker_online_is_said(services_env):
    status = workers_status(services_env["CELERY_BROKER_URL"], timeout=0.5)
    assert status.reachable and status.workers == [] and not status.error


def test_broker_down_is_said_for_both(closed_port):
    broker, workers = check_broker_and_workers(
        f"amqp://guest:guest@127.0.0.1:{closed_port}//", f"http://u:p@127.0.0.1:{closed_port}/", timeout=0.5
    )
    assert not broker.reachable and "refused" in broker.error.lower()
    assert not workers.reachable and workers.error


def test_a_hung_broker_ends_in_a_timeout_not_a_hang(hung_port):
    broker, workers = check_broker_and_workers(
        f"amqp://guest:guest@127.0.0.1:{hung_port}//", f"http://u:p@127.0.0.1:{hung_port}/", timeout=0.5
    )
    assert (broker.reachable, broker.error) == (False, "timed out")
    assert not workers.reachable and workers.error


def test_not_configured():
    assert broker_status(None).error == "the RabbitMQ management URL is not configured"
    assert "sync mode" in workers_status(None).error
