import pytest

from quicksol_bus.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from quicksol_bus.retry import RetryPolicy
from quicksol_bus.settings import SETTINGS, as_bool, resolve


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_breaker_opens_after_threshold_and_probes_after_timeout():
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout=10, clock=clock)
    breaker.record_failure()
    assert breaker.state == CLOSED and breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN and not breaker.allow()
    assert breaker.seconds_until_probe() == 10
    clock.now += 10
    assert breaker.allow() and breaker.state == HALF_OPEN
    assert not breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.allow() and breaker.seconds_until_probe() == 0


def test_retry_bounds_grow_exponentially_up_to_the_cap():
    policy = RetryPolicy(max_retries=3, base=1.0, cap=5.0)
    assert [policy.bound(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(2, rand=lambda: 0.0) == 0.0
    assert policy.delay(2, rand=lambda: 1.0) == 2.0
    assert [policy.should_retry(n) for n in (1, 3, 4)] == [True, True, False]


def test_settings_precedence_env_conf_params():
    conf = {"quicksol_event_bus_broker_url": "amqp://conf//"}
    params = {"quicksol_event_bus.broker_url": "amqp://param//"}
    assert resolve("broker_url", {}, {}, params) == "amqp://param//"
    assert resolve("broker_url", {}, conf, params) == "amqp://conf//"
    assert resolve("broker_url", {"CELERY_BROKER_URL": "amqp://env//"}, conf, params) == ("amqp://env//")
    assert resolve("broker_url", {}, {"quicksol_event_bus_broker_url": False}, {}) is None


def test_bad_setting_values_name_the_key():
    with pytest.raises(ValueError, match="EVENT_BUS_BROKER_DOWN_POLICY"):
        resolve("broker_down_policy", {"EVENT_BUS_BROKER_DOWN_POLICY": "drop"}, {}, {})
    with pytest.raises(ValueError, match="quicksol_event_bus.payload_limit"):
        resolve("payload_limit", {}, {}, {"quicksol_event_bus.payload_limit": "big"})


def test_booleans():
    assert as_bool("On") is True and as_bool("0") is False
    with pytest.raises(ValueError):
        as_bool("maybe")


def test_every_setting_has_help_and_an_env_name():
    for setting in SETTINGS.values():
        assert setting.help and setting.env.isupper()
