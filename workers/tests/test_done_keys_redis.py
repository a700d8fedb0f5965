"""Redis done keys name the publish attempt (real Redis): an administrator's requeue (a new
attempt) reaches Odoo even while the done key of the attempt before lives (up to a day)."""

import pytest

from quicksol_bus.envelope import build_envelope, sign_envelope
from quicksol_workers.config import WorkerConfig
from quicksol_workers.delivery import Deliverer
from quicksol_workers.idempotency import DoneCache, done_key
from quicksol_workers.messages import Delivery
from quicksol_workers.outcome import REASON_DONE_IN_REDIS

KEY = "secret"


@pytest.fixture
def redis_client(services_env):
    import redis

    client = redis.Redis.from_url(services_env["CELERY_RESULT_BACKEND"])
    yield client
    for key in client.scan_iter("qsb:done:done-key-test-*"):
        client.delete(key)
    client.close()


class Odoo:
    def __init__(self):
        self.calls = []

    def run_async(self, event_id, observer):
        self.calls.append(event_id)
        return {"status": "done"}


def delivery(attempt):
    env = sign_envelope(
        build_envelope(
            event_id="done-key-test-e1",
            event_name="testrec.custom",
            observer="x.obs",
            queue="audit_events",
            db="prod",
            model=None,
            res_ids=[1],
            payload={},
            uid=2,
            company_id=1,
            context={},
            attempt=attempt,
        ),
        KEY,
    )
    return Delivery(f"{env['event_id']}:x.obs", (env,), {}, 0, "audit_events")


def test_a_requeued_attempt_is_not_skipped_by_the_done_key_of_the_attempt_before(redis_client):
    config = WorkerConfig.from_env({"EVENT_BUS_SIGNING_KEY": KEY, "ODOO_DB": "prod"})
    odoo = Odoo()
    deliverer = Deliverer(config, odoo, broker=None, done_cache=DoneCache(redis_client, 3600))

    ((_d, first),) = deliverer.process(delivery(attempt=1))
    assert first.remember_done and redis_client.exists(done_key("done-key-test-e1", "x.obs", 1))

    ((_d, duplicate),) = deliverer.process(delivery(attempt=1))  # a copy of the same publish
    assert duplicate.reason == REASON_DONE_IN_REDIS

    ((_d, requeued),) = deliverer.process(delivery(attempt=2))  # the admin's requeue
    assert requeued.reason == "done"
    assert odoo.calls == ["done-key-test-e1", "done-key-test-e1"]
