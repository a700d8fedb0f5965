"""The message envelope: what a worker receives for one event and one observer.

The envelope names the event and the observer and carries the data a worker may log or a
person may read in Flower. It never carries credentials: workers authenticate to Odoo with
their own API key, and Odoo runs the observer with the data stored in its outbox. The
signature (HMAC-SHA256 over the canonical JSON of every other field) lets a worker refuse
forged or altered messages before calling Odoo.

>>> env = build_envelope(event_id="e1", event_name="property.created",
...     observer="x.observer", queue="audit_events", db="prod", model="real.estate.property",
...     res_ids=[1], payload={"res_ids": [1]}, uid=2, company_id=1,
...     context={"lang": "pt_BR", "secret": "no"}, emitted_at="2026-01-01T00:00:00Z")
>>> env["context"]
{'lang': 'pt_BR'}
>>> signed = sign_envelope(env, b"k")
>>> verify_envelope(signed, b"k") == env
True
>>> verify_envelope(dict(signed, res_ids=[2]), b"k")
Traceback (most recent call last):
...
quicksol_bus.errors.SignatureError: signature mismatch for event e1 (observer x.observer)
"""

import hashlib
import hmac
from datetime import datetime, timezone

from .errors import SignatureError
from .payload import canonical_json

__all__ = [
    "ENVELOPE_VERSION",
    "CONTEXT_ALLOW_LIST",
    "REQUIRED_FIELDS",
    "build_envelope",
    "sign_envelope",
    "verify_envelope",
    "utc_now_iso",
]

ENVELOPE_VERSION = 1

# Only these context keys travel: they change how the observer's effect reads (language,
# time zone, companies) and carry no secrets or UI state.
CONTEXT_ALLOW_LIST = ("lang", "tz", "allowed_company_ids")

REQUIRED_FIELDS = (
    "v",
    "event_id",
    "event_name",
    "observer",
    "queue",
    "db",
    "uid",
    "emitted_at",
    "attempt",
)


def utc_now_iso():
    """Current UTC time as ISO 8601 with a ``Z`` suffix."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def build_envelope(
    *,
    event_id,
    event_name,
    observer,
    queue,
    db,
    model,
    res_ids,
    payload,
    uid,
    company_id,
    context,
    emitted_at=None,
    attempt=1,
):
    """Return an unsigned envelope dict; ``context`` is reduced to the allow-list."""
    context = context or {}
    return {
        "v": ENVELOPE_VERSION,
        "event_id": event_id,
        "event_name": event_name,
        "observer": observer,
        "queue": queue,
        "db": db,
        "model": model,
        "res_ids": list(res_ids or []),
        "payload": payload,
        "uid": uid,
        "company_id": company_id,
        "context": {key: context[key] for key in CONTEXT_ALLOW_LIST if key in context},
        "emitted_at": emitted_at or utc_now_iso(),
        "attempt": attempt,
    }


def _as_key(key):
    if not key:
        raise SignatureError("no signing key configured (EVENT_BUS_SIGNING_KEY)")
    return key.encode("utf-8") if isinstance(key, str) else key


def _digest(envelope, key):
    unsigned = {name: value for name, value in envelope.items() if name != "signature"}
    return hmac.new(_as_key(key), canonical_json(unsigned), hashlib.sha256).hexdigest()


def sign_envelope(envelope, key):
    """Return a copy of ``envelope`` with its ``signature``."""
    return dict(envelope, signature=_digest(envelope, key))


def verify_envelope(envelope, key):
    """Return the envelope without its signature, or raise :class:`SignatureError`."""
    if not isinstance(envelope, dict):
        raise SignatureError(f"envelope must be a dict, got {type(envelope).__name__}")
    missing = [name for name in REQUIRED_FIELDS if name not in envelope]
    label = f"event {envelope.get('event_id')} (observer {envelope.get('observer')})"
    if missing:
        raise SignatureError(f"malformed envelope for {label}: missing {', '.join(missing)}")
    signature = envelope.get("signature")
    if not signature:
        raise SignatureError(f"unsigned message for {label}")
    if not hmac.compare_digest(str(signature), _digest(envelope, key)):
        raise SignatureError(f"signature mismatch for {label}")
    return {name: value for name, value in envelope.items() if name != "signature"}
