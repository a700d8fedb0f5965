"""What to do with one message: classify errors and results, decide ack / retry / dead-letter.

    error kinds                       action
    ─────────────────────────────     ───────────────────────────────────────────────
    done, already_done            ->  ACK (and remember "done" in Redis)
    failed   (observer raised a       ACK: Odoo recorded the event as failed already
              validation/access/user
              error: permanent)
    transient (Odoo unreachable,  ->  RETRY with backoff while retries remain,
              timeout, 5xx,           else DEAD (dead letter + mark_dead in Odoo)
              serialization failure,
              Redis down, 'retry')
    unknown  (no such event/      ->  DEAD at once (Odoo is not asked to mark it)
              observer in Odoo)
    credential (the worker's own  ->  HOLD: republished after a capped backoff WITHOUT
              login, API key or       using one of the message's retries, alarm logged:
              rights refused)         the message survives until an operator fixes it
    unexpected (any other error   ->  RETRY (counted) while the message was delivered
              for this message)       fewer than QSB_WORKER_POISON_MAX_DELIVERIES times,
                                      else DEAD (a poison message never loops)
    bad or missing signature,     ->  DEAD at once, Odoo never called
    another database, undecodable

>>> from quicksol_bus.retry import RetryPolicy
>>> policy = RetryPolicy(max_retries=3, base=2.0)
>>> decide({"status": "retry", "error": "deadlock", "permanent": False}, retries=0,
...        policy=policy, rand=lambda: 1.0)
Decision(action='retry', reason='deadlock', countdown=2.0, mark_dead=False)
>>> decide(TransientError("odoo down"), retries=3, policy=policy).action
'dead'
>>> decide({"status": "failed", "error": "no", "permanent": True}, retries=0, policy=policy)
Decision(action='failed', reason='no', countdown=0.0, mark_dead=False)
"""

import http.client
import random
import socket
import xmlrpc.client
from dataclasses import dataclass

__all__ = [
    "ACK",
    "FAILED",
    "RETRY",
    "HOLD",
    "DEAD",
    "REASON_DONE_IN_REDIS",
    "REASON_OTHER_DATABASE",
    "REASON_UNDECODABLE",
    "REASON_UNEXPECTED",
    "Decision",
    "DeliveryError",
    "TransientError",
    "CredentialError",
    "PermanentError",
    "classify_exception",
    "decide",
    "decide_unexpected",
]

ACK = "ack"
FAILED = "failed"
RETRY = "retry"
HOLD = "hold"  # the worker, not the message, is at fault: republish, no retry used, alarm
DEAD = "dead"

# Reasons (the start of Decision.reason) written by the worker itself, never compared to
# drive logic: the flags of Decision do that.
REASON_DONE_IN_REDIS = "already done (redis)"
REASON_OTHER_DATABASE = "envelope is for another database"
REASON_UNDECODABLE = "undecodable message"
REASON_UNEXPECTED = "unexpected error"

# Odoo 18 /xmlrpc/2 fault codes (odoo/addons/base/controllers/rpc.py).
FAULT_APPLICATION_ERROR = 1
FAULT_WARNING = 2  # UserError, ValidationError
FAULT_ACCESS_DENIED = 3  # wrong login or API key
FAULT_ACCESS_ERROR = 4  # AccessError

# Marks of a transient database failure in an Odoo traceback (psycopg2 / Odoo's retrying()).
_TRANSIENT_FAULT_MARKS = (
    "SerializationFailure",
    "could not serialize access",
    "DeadlockDetected",
    "deadlock detected",
    "LockNotAvailable",
    "could not obtain lock",
    "OperationalError",
    "InterfaceError",
    "connection pool is full",
    "PoolError",
)
# HTTP statuses worth trying again: the server is starting, overloaded or behind a proxy.
_TRANSIENT_HTTP = {408, 425, 429, 500, 502, 503, 504}


class DeliveryError(Exception):
    """Base class of the errors a delivery can end with."""

    transient = True


class TransientError(DeliveryError):
    """Worth retrying: Odoo or Redis unreachable, timeout, 5xx, serialization failure."""


class CredentialError(TransientError):
    """The worker's own login, API key or access rights were refused by Odoo.

    No message is at fault: the delivery waits (``HOLD``) without using its retries until an
    operator restores the worker user's group or key.
    """


class PermanentError(DeliveryError):
    """Retrying cannot help: the call itself is refused (validation, access, bad request)."""

    transient = False


def classify_exception(error):
    """Return a :class:`DeliveryError` (transient or permanent) describing ``error``."""
    if isinstance(error, DeliveryError):
        return error
    if isinstance(error, xmlrpc.client.Fault):
        text = f"{error.faultString}"
        if error.faultCode == FAULT_WARNING:
            return PermanentError(f"Odoo refused the call: {text.strip()[:500]}")
        if error.faultCode == FAULT_ACCESS_DENIED:
            return CredentialError(
                "Odoo denied the worker's credential (check ODOO_USER/ODOO_API_KEY): "
                f"{_last_line(text)[:200]}"
            )
        if error.faultCode == FAULT_ACCESS_ERROR:
            # The bus RPCs are called as the worker user: an AccessError means that user lost
            # its group (observers' own errors come back as status "failed", not as a fault).
            return CredentialError(
                "Odoo refused the worker user's rights (is it still in group "
                f"quicksol_event_bus.group_event_bus_worker?): {_last_line(text)[:200]}"
            )
        if any(mark in text for mark in _TRANSIENT_FAULT_MARKS):
            return TransientError(f"transient database error in Odoo: {_last_line(text)}")
        return TransientError(f"Odoo server error: {_last_line(text)}")
    if isinstance(error, xmlrpc.client.ProtocolError):
        message = f"Odoo answered HTTP {error.errcode} {error.errmsg} for {error.url}"
        if error.errcode in _TRANSIENT_HTTP or error.errcode >= 500:
            return TransientError(message)
        return PermanentError(message)
    if isinstance(error, (socket.timeout, TimeoutError)):
        return TransientError(f"timeout calling Odoo: {error!r}")
    if isinstance(error, (OSError, http.client.HTTPException, EOFError)):
        return TransientError(f"Odoo unreachable: {error!r}")
    if _is_redis_error(error):
        return TransientError(f"Redis unavailable: {error!r}")
    if isinstance(error, xmlrpc.client.ResponseError):
        return TransientError(f"unreadable answer from Odoo: {error!r}")
    return None


def _is_redis_error(error):
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is a dependency
        return False
    return isinstance(error, redis.RedisError)


def _last_line(text):
    lines = [line for line in str(text).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else str(text))[:500]


@dataclass(frozen=True)
class Decision:
    """The action for one message and why."""

    action: str
    reason: str = ""
    countdown: float = 0.0
    mark_dead: bool = False
    # True when Odoo ran (or had run) the pair: its Redis done key is written before the ack.
    remember_done: bool = False


def decide(outcome, retries, policy, rand=random.random, holds=0):
    """Decide for one message tried ``retries`` times before this try.

    ``outcome`` is the dict Odoo's ``run_async`` returned for the message, or the exception
    the call raised (classified by :func:`classify_exception`). ``holds``: how many times the
    message was already held back for a credential problem (grows the hold's backoff).
    """
    if isinstance(outcome, BaseException):
        error = classify_exception(outcome)
        if error is None:
            raise outcome
        if isinstance(error, CredentialError):
            return Decision(HOLD, str(error), countdown=hold_delay(holds, policy, rand))
        if not error.transient:
            # The call was refused as a whole (not the observer): nothing in Odoo marks it,
            # so the dead letter keeps it and Odoo is asked to mark it dead.
            return Decision(DEAD, str(error), mark_dead=True)
        return _retry_or_dead(str(error), retries, policy, rand)
    status = outcome.get("status")
    error = outcome.get("error") or ""
    if status in ("done", "already_done"):
        return Decision(ACK, status, remember_done=True)
    if status == "failed":
        return Decision(FAILED, error or "failed")
    if status == "retry":
        return _retry_or_dead(error or "transient error in Odoo", retries, policy, rand)
    if status == "unknown":
        return Decision(DEAD, error or "Odoo knows no such event/observer pair")
    return Decision(DEAD, f"unexpected answer from Odoo: {outcome!r:.300}", mark_dead=True)


def decide_unexpected(error, retries, max_deliveries, policy, mark_dead, rand=random.random):
    """An error nobody classified, for one message delivered ``retries`` times before.

    It may be the message's fault (a poison message) or a passing bug: retried (a counted
    retry, republished) until the message was delivered ``max_deliveries`` times, then dead.

    >>> from quicksol_bus.retry import RetryPolicy
    >>> p = RetryPolicy(max_retries=10)
    >>> [decide_unexpected(KeyError("x"), r, 3, p, False).action for r in (0, 1, 2)]
    ['retry', 'retry', 'dead']
    """
    reason = f"{REASON_UNEXPECTED}: {error!r:.500}"
    deliveries = retries + 1
    if deliveries < max_deliveries:
        return Decision(RETRY, reason, countdown=round(policy.delay(deliveries, rand=rand), 3))
    return Decision(DEAD, f"gave up after {deliveries} deliveries: {reason}", mark_dead=mark_dead)


def hold_delay(holds, policy, rand=random.random):
    """Backoff of a held message: grows with each hold up to the policy's cap, never 0 (a
    revoked key must not turn into a busy loop of calls)."""
    bound = policy.bound(holds + 1)
    return round(bound / 2 + bound / 2 * rand(), 3)


def _retry_or_dead(reason, retries, policy, rand):
    attempt = retries + 1
    if policy.should_retry(attempt):
        return Decision(RETRY, reason, countdown=round(policy.delay(attempt, rand=rand), 3))
    return Decision(DEAD, f"gave up after {retries + 1} tries: {reason}", mark_dead=True)
