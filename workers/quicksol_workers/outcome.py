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
    bad or missing signature      ->  DEAD at once, Odoo never called

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
    "DEAD",
    "Decision",
    "DeliveryError",
    "TransientError",
    "PermanentError",
    "classify_exception",
    "decide",
]

ACK = "ack"
FAILED = "failed"
RETRY = "retry"
DEAD = "dead"

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


class PermanentError(DeliveryError):
    """Retrying cannot help: the call itself is refused (validation, access, bad request)."""

    transient = False


def classify_exception(error):
    """Return a :class:`DeliveryError` (transient or permanent) describing ``error``."""
    if isinstance(error, DeliveryError):
        return error
    if isinstance(error, xmlrpc.client.Fault):
        text = f"{error.faultString}"
        if error.faultCode in (FAULT_WARNING, FAULT_ACCESS_ERROR):
            return PermanentError(f"Odoo refused the call: {text.strip()[:500]}")
        if error.faultCode == FAULT_ACCESS_DENIED:
            # The worker's own credential is wrong or revoked: an operator must fix it; the
            # message is not at fault, so it retries (and ends in the dead letter if not fixed).
            return TransientError(
                f"Odoo denied the worker's credential (check ODOO_USER/ODOO_API_KEY): {text.strip()[:200]}"
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


def decide(outcome, retries, policy, rand=random.random):
    """Decide for one message tried ``retries`` times before this try.

    ``outcome`` is the dict Odoo's ``run_async`` returned for the message, or the exception
    the call raised (classified by :func:`classify_exception`).
    """
    if isinstance(outcome, BaseException):
        error = classify_exception(outcome)
        if error is None:
            raise outcome
        if not error.transient:
            # The call was refused as a whole (not the observer): nothing in Odoo marks it,
            # so the dead letter keeps it and Odoo is asked to mark it dead.
            return Decision(DEAD, str(error), mark_dead=True)
        return _retry_or_dead(str(error), retries, policy, rand)
    status = outcome.get("status")
    error = outcome.get("error") or ""
    if status in ("done", "already_done"):
        return Decision(ACK, status)
    if status == "failed":
        return Decision(FAILED, error or "failed")
    if status == "retry":
        return _retry_or_dead(error or "transient error in Odoo", retries, policy, rand)
    if status == "unknown":
        return Decision(DEAD, error or "Odoo knows no such event/observer pair")
    return Decision(DEAD, f"unexpected answer from Odoo: {outcome!r:.300}", mark_dead=True)


def _retry_or_dead(reason, retries, policy, rand):
    attempt = retries + 1
    if policy.should_retry(attempt):
        return Decision(RETRY, reason, countdown=round(policy.delay(attempt, rand=rand), 3))
    return Decision(DEAD, f"gave up after {retries + 1} tries: {reason}", mark_dead=True)
