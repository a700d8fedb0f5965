"""Smoke test of the local stack: each service starts, answers a real client, stops, restarts."""

import subprocess

import pytest

import devstack
from devstack import postgres

pytestmark = pytest.mark.integration


def test_env_names_every_client_variable(services_env):
    for key in (
        "CELERY_BROKER_URL",
        "CELERY_RESULT_BACKEND",
        "QSB_RABBITMQ_MGMT_URL",
        "QSB_PG_HOST",
        "QSB_PG_PORT",
        "QSB_PG_USER",
        "QSB_PG_PASSWORD",
    ):
        assert services_env[key], key
    assert services_env["CELERY_BROKER_URL"].startswith("amqp://quicksol:quicksol@127.0.0.1:")


def test_postgres_answers_select_1_as_odoo(services_env):
    res = subprocess.run(
        [
            str(postgres.bindir() / "psql"),
            "-X",
            "-A",
            "-t",
            "-h",
            services_env["QSB_PG_HOST"],
            "-p",
            services_env["QSB_PG_PORT"],
            "-U",
            services_env["QSB_PG_USER"],
            "-d",
            "postgres",
            "-c",
            "SELECT 1",
        ],
        env={"PGPASSWORD": services_env["QSB_PG_PASSWORD"], "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "1"


def test_redis_answers_ping(services_env):
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(services_env["CELERY_RESULT_BACKEND"], socket_timeout=5)
    assert client.ping() is True
    client.close()


def test_rabbitmq_accepts_amqp_and_management(services_env, rabbitmq_admin):
    kombu = pytest.importorskip("kombu")
    with kombu.Connection(services_env["CELERY_BROKER_URL"], connect_timeout=5) as conn:
        conn.connect()
        assert conn.connected
        queue = kombu.Queue("qsb_smoke", durable=True, auto_delete=False)
        with conn.Producer() as producer:
            producer.publish({"hello": "world"}, routing_key="qsb_smoke", declare=[queue], delivery_mode=2)
    try:
        assert rabbitmq_admin.overview()["rabbitmq_version"].startswith("3.")
        assert "qsb_smoke" in {q["name"] for q in rabbitmq_admin.queues()}
        messages = rabbitmq_admin.get_messages("qsb_smoke", count=1, ack=True)
        assert messages and '"hello"' in messages[0]["payload"]
    finally:
        rabbitmq_admin.delete_queue("qsb_smoke")


@pytest.mark.fault
def test_broker_restart_keeps_durable_queues(services_env, rabbitmq_admin, broker_control):
    kombu = pytest.importorskip("kombu")
    queue = kombu.Queue("qsb_restart", durable=True, auto_delete=False)
    with kombu.Connection(services_env["CELERY_BROKER_URL"], connect_timeout=5) as conn:
        queue(conn.channel()).declare()
    try:
        broker_control.stop()
        assert not devstack.is_up("rabbitmq")
        broker_control.start()
        assert rabbitmq_admin.queue("qsb_restart") is not None
    finally:
        rabbitmq_admin.delete_queue("qsb_restart")


def test_start_is_idempotent(services_env):
    for name in devstack.SERVICES:
        assert devstack.is_up(name)
        assert devstack.start(name) is False  # already up: reused, not started twice
