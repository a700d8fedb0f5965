"""Two real transactions at once on the outbox (no test-mode cursor sharing): the post-commit
publisher and the relay never publish the same row, and a worker waits for a claim."""

import threading

import pytest

from .conftest import ASYNC, environment

pytestmark = pytest.mark.integration


def _pending_ids(registry, count):
    """Commit ``count`` events with pending deliveries, without publishing them."""
    with environment(registry) as env:
        uuids = [env["quicksol.event.bus"].emit("testrec.created", {"res_ids": [n]}) for n in range(count)]
        env.cr.flush()  # writes the outbox rows (precommit) and plans their publish...
        env.cr.postcommit.clear()  # ...which never happens: as if the process died in between
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
