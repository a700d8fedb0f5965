"""Event data checks: JSON only, ids rather than recordsets, and a size limit.

The bus stores event data in its outbox and sends it across processes, so it must be plain
JSON. A mistake such as passing a recordset is reported with the path of the offending value:

>>> encode_payload({"vals": {"partner_id": 7}}, limit=1024)
b'{"vals":{"partner_id":7}}'
>>> encode_payload({"when": object()}, limit=1024)
Traceback (most recent call last):
...
quicksol_bus.errors.PayloadNotSerializable: event data is not JSON-serialisable: data['when'] is ...
"""

import functools
import json
import re

from .errors import PayloadNotSerializable, PayloadTooLarge

__all__ = [
    "DEFAULT_PAYLOAD_LIMIT",
    "REDACTED",
    "encode_payload",
    "decode_payload",
    "canonical_json",
    "redact_secrets",
    "is_secret_key",
    "SECRET_KEY_PATTERNS",
]

# 256 KiB: an event carries ids and changed values, not documents; larger data belongs in
# attachments that the observer reads by id.
DEFAULT_PAYLOAD_LIMIT = 256 * 1024

_SCALARS = (str, int, float, bool, type(None))

# Key names whose values must never be stored in the outbox, sent to a worker or written to
# the audit log: after-events of res.users writes would otherwise carry new passwords and
# keys. The pattern set (documented in docs/security.md):
#
# * ``SECRET_SUBSTRINGS`` match anywhere in the key, whatever the case: ``password``,
#   ``passwd``, ``secret``, ``token``, ``authorization``, ``signature``, ``totp``,
#   ``credential`` (``new_password``, ``refreshToken``, ``Authorization``, ``totp_secret``);
# * ``SECRET_WORDS`` match whole words of the key only, the key being split into words at
#   ``_``, ``-``, ``.``, spaces and camelCase humps: ``pin``, ``pwd``, ``api_key``, ``apikey``,
#   ``private_key``, ``client_secret`` (``user_pin``, ``apiKey``, ``PRIVATE-KEY``, but not
#   ``shipping`` or ``opinion``).
#
# Observers (``_secret_keys``) and emitting models (``_event_secret_keys``) declare more
# words; they are passed as ``extra``. A secret under an innocent name is kept: masking is
# a safety net, not a licence to put secrets in event data.
SECRET_SUBSTRINGS = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "signature",
    "totp",
    "credential",
)
SECRET_WORDS = ("pin", "pwd", "api_key", "apikey", "private_key", "client_secret")
SECRET_KEY_PATTERNS = SECRET_SUBSTRINGS + SECRET_WORDS
REDACTED = "***"

_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_SUBSTRING_RE = re.compile("|".join(SECRET_SUBSTRINGS))


def _words(name):
    """``"clientSecret-ID"`` -> ``("client", "secret", "id")``."""
    return tuple(word for word in _SEPARATORS.split(_HUMP.sub("_", name).lower()) if word)


def _contains(words, pattern_words):
    size = len(pattern_words)
    return any(words[i : i + size] == pattern_words for i in range(len(words) - size + 1))


_BUILTIN_WORDS = tuple(_words(word) for word in SECRET_WORDS)


@functools.lru_cache(maxsize=4096)
def _is_secret(key, extra):
    words = _words(key)
    if _SUBSTRING_RE.search("".join(words)):
        return True
    return any(_contains(words, pattern) for pattern in _BUILTIN_WORDS + extra)


def is_secret_key(key, extra=()):
    """Tell whether the value under ``key`` must be masked (see ``SECRET_KEY_PATTERNS``).

    >>> is_secret_key("apiKey"), is_secret_key("user_pin"), is_secret_key("shipping")
    (True, True, False)
    >>> is_secret_key("cpf", extra=["cpf"])
    True
    """
    if not isinstance(key, str):
        return False
    return _is_secret(key, tuple(_words(word) for word in extra or ()))


def redact_secrets(values, extra=()):
    """Copy of ``values`` with the values of secret-looking keys replaced, at any depth.

    ``extra``: more key words to mask (declared by observers and models).

    >>> redact_secrets({"login": "ana", "password": "s3cret", "new_api_key": "k"})
    {'login': 'ana', 'password': '***', 'new_api_key': '***'}
    >>> redact_secrets({"lines": [{"token": "t", "n": 1}], "PIN": 1234})
    {'lines': [{'token': '***', 'n': 1}], 'PIN': '***'}
    >>> redact_secrets({"cpf": "123.456.789-00"}, extra=["cpf"])
    {'cpf': '***'}
    """
    extra = tuple(_words(word) for word in extra or ())
    return _redact(values, extra)


def _redact(values, extra):
    if isinstance(values, dict):
        return {
            key: REDACTED if isinstance(key, str) and _is_secret(key, extra) else _redact(value, extra)
            for key, value in values.items()
        }
    if isinstance(values, (list, tuple)):
        return type(values)(_redact(value, extra) for value in values)
    return values


def canonical_json(value):
    """Encode ``value`` as compact, key-sorted UTF-8 JSON (the form that gets signed)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def _describe(value):
    # Odoo recordsets have _name and ids; naming them explicitly tells the developer the fix.
    if hasattr(value, "_name") and hasattr(value, "ids"):
        return f"a {value._name} recordset {value!r}: pass ids (e.g. record.ids), not records"
    return f"a {type(value).__name__} ({value!r:.60}): use str, int, float, bool, None, list or dict"


def _is_plain_json(value):
    """Tell whether JSON can carry ``value`` (the rules of :func:`_find_unserialisable`).

    The check every emit pays: it builds no path, so it costs a fraction of the walk that
    names the offending value, which runs only once this one said no.
    """
    if isinstance(value, float):
        return value == value and value not in (_INF, _NEG_INF)
    if isinstance(value, _SCALARS):
        return True
    if isinstance(value, dict):
        return all(isinstance(key, str) and _is_plain_json(item) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return all(_is_plain_json(item) for item in value)
    return False


_INF, _NEG_INF = float("inf"), float("-inf")


def _find_unserialisable(value, path):
    """Return (path, value) of the first value JSON cannot carry, or None."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return path, value  # NaN and infinities are not JSON
    if isinstance(value, _SCALARS):
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"{path} key {key!r}", key
            found = _find_unserialisable(item, f"{path}[{key!r}]")
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = _find_unserialisable(item, f"{path}[{index}]")
            if found:
                return found
        return None
    return path, value


def encode_payload(data, limit=DEFAULT_PAYLOAD_LIMIT):
    """Return ``data`` as canonical JSON bytes, or raise a clear :class:`InvalidPayload`."""
    if not isinstance(data, dict):
        raise PayloadNotSerializable(f"event data must be a dict, got {_describe(data)}")
    found = None if _is_plain_json(data) else _find_unserialisable(data, "data")
    if found:
        path, value = found
        raise PayloadNotSerializable(f"event data is not JSON-serialisable: {path} is {_describe(value)}")
    encoded = canonical_json(data)
    if limit and len(encoded) > limit:
        raise PayloadTooLarge(
            f"event data is {len(encoded)} bytes, over the limit of {limit} bytes: "
            "send ids and let observers read the records"
        )
    return encoded


def decode_payload(raw):
    """Decode JSON bytes or text produced by :func:`encode_payload`."""
    if isinstance(raw, (bytes, bytearray)):
        raw = raw.decode("utf-8")
    return json.loads(raw)
