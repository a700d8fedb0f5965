import xmlrpc.client

import pytest

from quicksol_bus.retry import RetryPolicy
from quicksol_workers.outcome import (
    ACK,
    DEAD,
    FAILED,
    RETRY,
    PermanentError,
    TransientError,
    classify_exception,
    decide,
)

POLICY = RetryPolicy(max_retries=3, base=2.0, cap=60.0)


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError("timed out"),
        xmlrpc.client.ProtocolError("http://o/xmlrpc/2/object", 502, "Bad Gateway", {}),
        xmlrpc.client.ProtocolError("http://o/xmlrpc/2/object", 503, "Unavailable", {}),
        xmlrpc.client.Fault(
            1, "Traceback ...\npsycopg2.errors.SerializationFailure: could not serialize access"
        ),
        xmlrpc.client.Fault(1, "Traceback ...\nKeyError: 'x'"),
        xmlrpc.client.Fault(3, "Access Denied"),
    ],
)
def test_transient_errors(error):
    assert isinstance(classify_exception(error), TransientError)


@pytest.mark.parametrize(
    "error",
    [
        xmlrpc.client.Fault(2, "The operation cannot be completed: bad value"),
        xmlrpc.client.Fault(4, "You are not allowed to access 'Event' records."),
        xmlrpc.client.ProtocolError("http://o/xmlrpc/2/object", 404, "Not Found", {}),
    ],
)
def test_permanent_errors(error):
    assert isinstance(classify_exception(error), PermanentError)


def test_redis_down_is_transient():
    import redis

    assert isinstance(classify_exception(redis.ConnectionError("down")), TransientError)


def test_programming_errors_are_not_classified():
    assert classify_exception(KeyError("bug")) is None
    with pytest.raises(KeyError):
        decide(KeyError("bug"), 0, POLICY)


def test_three_retries_with_growing_bounds_then_dead():
    outcome = {"status": "retry", "error": "could not serialize", "permanent": False}
    delays = [decide(outcome, retries, POLICY, rand=lambda: 1.0) for retries in (0, 1, 2)]
    assert [d.action for d in delays] == [RETRY, RETRY, RETRY]
    assert [d.countdown for d in delays] == [2.0, 4.0, 8.0]
    last = decide(outcome, 3, POLICY)
    assert last.action == DEAD and last.mark_dead
    assert "gave up after 4 tries" in last.reason


def test_jitter_stays_within_the_bound():
    for _ in range(100):
        assert 0 <= decide(TransientError("x"), 2, POLICY).countdown <= 8.0


def test_results_from_odoo():
    assert decide({"status": "done"}, 0, POLICY).action == ACK
    assert decide({"status": "already_done"}, 2, POLICY).action == ACK
    failed = decide({"status": "failed", "error": "ValidationError: no", "permanent": True}, 0, POLICY)
    assert (failed.action, failed.reason, failed.mark_dead) == (FAILED, "ValidationError: no", False)
    unknown = decide({"status": "unknown", "error": False}, 0, POLICY)
    assert unknown.action == DEAD and not unknown.mark_dead
    assert decide({"status": "weird"}, 0, POLICY).action == DEAD


def test_permanent_refusal_of_the_call_dead_letters_at_once():
    decision = decide(xmlrpc.client.Fault(4, "AccessError"), 0, POLICY)
    assert decision.action == DEAD and decision.mark_dead
