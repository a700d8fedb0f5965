"""Two real transactions at once on the outbox (no test-mode cursor sharing): the post-commit
publisher and the relay never publish the same row, and a worker waits for a claim."""

import os
import threading
from contextlib import contextmanager

import pytest
from kombu import Connection

from quicksol_bus.topology import kombu_queues

pytestmark = pytest.mark.integration

DB = "qsb_concurrency"
ASYNC = "quicksol.test.observer.async"


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
        EVENT_BUS_SIGNING_KEY="concurrency-test-key",
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


def _pending_ids(registry, count):
    """Commit ``count`` events with pending deliveries, without publishing them."""
    with environment(registry) as env:
        uuids = [env["quicksol.event.bus"].emit("testrec.created", {"res_ids": [n]}) for n in range(count)]
        env.cr.postcommit.clear()  # as if the process died between commit and publish
        env.cr.commit()
        deliveries = env["quicksol.event.delivery"].search(
            [("event_id.uuid", "in", uuids), ("observer", "=", ASYNC)]
        )
        return uuids, deliveries.ids


def test_a_claimed_row_is_skipped_by_the_relay_and_published_once(registry, audit_queue):
    _uuids, ids = _pending_ids(registry, 5)
    with environment(registry) as holder, environment(registry) as relay:
        Held = holder["quicksol.event.delivery"].sudo()
        claimed = Held._claim(ids, 100, None, None)  # locks the rows, publishes nothing yet
        assert sorted(row["id"] for row in claimed) == sorted(ids)
        assert relay["quicksol.event.delivery"].sudo()._relay_once() == 0  # skipped, locked
        relay.cr.rollback()
        holder.cr.rollback()  # the holder dies before publishing: its locks go away
        assert relay["quicksol.event.delivery"].sudo()._relay_once() == 5
        relay.cr.commit()
    with environment(registry) as late:
        # The original post-commit publish arrives late: nothing pending is left for it.
        assert late["quicksol.event.delivery"].sudo()._publish_pending(ids=ids) == 0
    assert audit_queue() == 5


def test_a_worker_waits_for_the_publisher_s_claim_then_runs_once(registry, audit_queue):
    uuids, ids = _pending_ids(registry, 1)
    with environment(registry) as setup:
        worker_uid = setup.ref("quicksol_event_bus.user_event_bus_worker").id
    results = []
    with environment(registry) as publisher:
        publisher["quicksol.event.delivery"].sudo()._claim(ids, 10, None, None)

        def run():
            with environment(registry, worker_uid) as worker:
                results.append(worker["quicksol.event"].run_async(uuids[0], ASYNC))

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive(), "run_async must wait for the publisher's row lock"
        publisher.cr.commit()  # releases the lock (a publisher would have marked it queued)
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert results[0]["status"] == "done"
    with environment(registry, worker_uid) as again:
        assert again["quicksol.event"].run_async(uuids[0], ASYNC)["status"] == "already_done"
