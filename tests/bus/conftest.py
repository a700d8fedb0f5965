"""Fixtures of the in-process tests: an Odoo registry on a copy of the test database, opened
by the test itself, so that a test can hold real transactions of its own (two at once, or one
while a fault is injected)."""

import os
from contextlib import contextmanager

import pytest
from kombu import Connection

from quicksol_bus.topology import kombu_queues

DB = "qsb_concurrency"
ASYNC = "quicksol.test.observer.async"
SIGNING_KEY = "concurrency-test-key"


@pytest.fixture(scope="module")
def registry(services_env):
    if "odoo" not in __import__("sys").modules:
        pytest.skip("ODOO NOT AVAILABLE: these tests open Odoo registries in-process")
    import odoo

    from devstack import odoo as devstack_odoo

    devstack_odoo.copy_database(os.environ.get("QSB_TEST_DB", "qsb_test"), DB, odoo.tools.config["data_dir"])
    saved = {
        k: os.environ.get(k)
        for k in ("CELERY_BROKER_URL", "EVENT_BUS_SIGNING_KEY", "EVENT_BUS_RELAY_MIN_AGE")
    }
    os.environ.update(
        CELERY_BROKER_URL=services_env["CELERY_BROKER_URL"],
        EVENT_BUS_SIGNING_KEY=SIGNING_KEY,
        EVENT_BUS_RELAY_MIN_AGE="0",
    )
    # pytest-odoo runs with test_enable on; loading another database must not look for tests.
    test_enable, odoo.tools.config["test_enable"] = odoo.tools.config["test_enable"], False
    try:
        registry = odoo.modules.registry.Registry(DB)
    finally:
        odoo.tools.config["test_enable"] = test_enable
    yield registry
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    odoo.modules.registry.Registry.delete(DB)
    odoo.sql_db.close_db(DB)
    from devstack import odoo as devstack_odoo

    devstack_odoo.drop_database(DB)


@contextmanager
def environment(registry, uid=None):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        yield api.Environment(cr, uid or SUPERUSER_ID, {})


@pytest.fixture
def audit_queue(services_env):
    connection = Connection(services_env["CELERY_BROKER_URL"])
    connection.connect()
    channel = connection.channel()
    for queue in kombu_queues():
        queue(channel).declare()
        channel.queue_purge(queue.name)

    def count():
        return channel.queue_declare("audit_events", passive=True).message_count

    yield count
    channel.queue_purge("audit_events")
    connection.close()


@pytest.fixture
def drain_queue(services_env):
    """``drain_queue(name)``: take every message of queue ``name``; return their task ids."""
    connection = Connection(services_env["CELERY_BROKER_URL"])
    connection.connect()
    channel = connection.channel()

    def drain(name):
        task_ids = []
        while (message := channel.basic_get(name, no_ack=True)) is not None:
            task_ids.append(message.headers["id"])
        return task_ids

    yield drain
    connection.close()


@contextmanager
def broker_alarm(rabbitmq_admin, kind):
    """Raise a real RabbitMQ resource alarm (``memory`` or ``disk``) for the block.

    Under an alarm the broker stops reading from every connection that publishes: what a save
    meets when the broker's host runs out of memory or disk. The limits are restored (and
    the alarm seen cleared) whatever happens.
    """
    import shutil

    from devstack import rabbitmq, wait_for

    flag = {"memory": "mem_alarm", "disk": "disk_free_alarm"}[kind]
    if kind == "memory":
        raise_it = ("set_vm_memory_high_watermark", "absolute", "1")
        restore = ("set_vm_memory_high_watermark", "0.4")
    else:
        free = shutil.disk_usage(rabbitmq.config.RUN).free
        raise_it = ("set_disk_free_limit", str(free * 10))
        restore = ("set_disk_free_limit", "50MB")  # devstack's disk_free_limit.absolute

    def alarm_on():
        return any(node.get(flag) for node in rabbitmq_admin._call("GET", "nodes"))

    rabbitmq._ctl(*raise_it)
    try:
        wait_for(alarm_on, 30, f"RabbitMQ did not raise its {kind} alarm")
        yield
    finally:
        rabbitmq._ctl(*restore)
        wait_for(lambda: not alarm_on(), 60, f"RabbitMQ did not clear its {kind} alarm")
