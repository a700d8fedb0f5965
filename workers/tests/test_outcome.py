import xmlrpc.client

import pytest

from quicksol_bus.retry import RetryPolicy
from quicksol_workers.outcome import (
    ACK,
    DEAD,
    FAILED,
    HOLD,
    RETRY,
    CredentialError,
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
    ],
)
def test_transient_errors(error):
    assert isinstance(classify_exception(error), TransientError)


@pytest.mark.parametrize(
    "error",
    [
        xmlrpc.client.Fault(2, "The operation cannot be completed: bad value"),
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
    decision = decide(xmlrpc.client.Fault(2, "UserError"), 0, POLICY)
    assert decision.action == DEAD and decision.mark_dead


@pytest.mark.parametrize(
    "error",
    [
        xmlrpc.client.Fault(3, "Access Denied"),
        xmlrpc.client.Fault(4, "You are not allowed to access 'Event' (quicksol.event) records."),
    ],
)
def test_the_workers_own_credential_or_rights_refused_is_a_hold_not_a_retry(error):
    assert isinstance(classify_exception(error), CredentialError)
    for retries in (0, 3, 50):  # whatever the message used: it never dies of it
        decision = decide(error, retries, POLICY, rand=lambda: 0.0)
        assert decision.action == HOLD and not decision.mark_dead
        assert decision.countdown > 0  # never a busy loop of refused calls


def test_hold_backoff_grows_and_is_capped():
    bounds = [
        decide(xmlrpc.client.Fault(4, "x"), 0, POLICY, rand=lambda: 1.0, holds=h).countdown for h in range(8)
    ]
    assert bounds == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_unexpected_errors_are_retried_then_dead_after_the_delivery_limit():
    from quicksol_workers.outcome import decide_unexpected

    wide = RetryPolicy(max_retries=100)
    decisions = [decide_unexpected(KeyError("bug"), r, 3, wide, mark_dead=True) for r in range(3)]
    assert [d.action for d in decisions] == [RETRY, RETRY, DEAD]
    assert decisions[-1].mark_dead and "KeyError" in decisions[-1].reason
    assert decide_unexpected(KeyError("bug"), 0, 1, wide, mark_dead=False).action == DEAD


def test_only_odoo_answers_are_remembered_as_done():
    assert decide({"status": "done"}, 0, POLICY).remember_done
    assert decide({"status": "already_done"}, 0, POLICY).remember_done
    assert not decide({"status": "failed", "error": "x"}, 0, POLICY).remember_done
