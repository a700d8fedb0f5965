import pytest

from quicksol_bus.envelope import build_envelope, sign_envelope
from quicksol_bus.errors import SignatureError
from quicksol_workers.config import ConfigError, WorkerConfig
from quicksol_workers.guards import debounce_key, dedup_key
from quicksol_workers.messages import Delivery, verify

KEY = b"secret"


def envelope(**overrides):
    env = build_envelope(
        event_id="e1",
        event_name="property.created",
        observer="x.obs",
        queue="audit_events",
        db="db",
        model="real.estate.property",
        res_ids=[1],
        payload={"res_ids": [1]},
        uid=2,
        company_id=1,
        context={},
    )
    env.update(overrides)
    return sign_envelope(env, KEY)


def delivery(env, task_id="e1:x.obs", **kw):
    return Delivery(task_id=task_id, args=(env,), kwargs={}, retries=0, queue="audit_events", **kw)


def test_config_defaults_and_errors():
    cfg = WorkerConfig.from_env({})
    assert cfg.redis_url == cfg.result_backend and cfg.batch_size == 500
    with pytest.raises(ConfigError, match="QSB_WORKER_MAX_RETRIES"):
        WorkerConfig.from_env({"QSB_WORKER_MAX_RETRIES": "three"})
    with pytest.raises(ConfigError, match="ODOO_DB"):
        WorkerConfig.from_env({"ODOO_API_KEY": "k"}).require_odoo()
    assert WorkerConfig.from_env({"ODOO_API_KEY": "k"}).describe()["odoo_api_key"] == "***"


def test_verify_accepts_a_signed_message():
    d = delivery(envelope())
    assert verify(d, KEY)["event_id"] == "e1"
    assert d.event_id == "e1" and d.observer == "x.obs"


@pytest.mark.parametrize(
    "make",
    [
        lambda: delivery({k: v for k, v in envelope().items() if k != "signature"}),  # unsigned
        lambda: delivery(dict(envelope(), observer="y.obs")),  # altered
        lambda: delivery(sign_envelope(dict(envelope(), signature=None), b"other")),  # forged
        lambda: delivery(envelope(), task_id="e2:x.obs"),  # id swapped
        lambda: delivery("not a dict"),
        lambda: Delivery("e1:x.obs", (envelope(), 1), {}, 0, "audit_events"),  # extra arg
    ],
)
def test_verify_refuses(make):
    with pytest.raises(SignatureError):
        verify(make(), KEY)


def test_guard_keys():
    assert debounce_key("o", "m", [2, 1]) == debounce_key("o", "m", [1, 2])
    assert dedup_key(envelope()) == dedup_key(dict(envelope(), event_id="e2"))
    assert dedup_key(envelope()) != dedup_key(envelope(payload={"res_ids": [2]}))
