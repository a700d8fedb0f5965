"""Secret masking: the documented key patterns, case variants, declared extras, any depth."""

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from quicksol_bus.payload import REDACTED, SECRET_KEY_PATTERNS, is_secret_key, redact_secrets

SECRET_KEYS = [
    "pin",
    "PIN",
    "user_pin",
    "pin_code",
    "pwd",
    "Pwd",
    "password",
    "new_password",
    "PASSWORD",
    "passwd",
    "private_key",
    "privateKey",
    "PRIVATE-KEY",
    "ssh_private_key",
    "token",
    "access_token",
    "refreshToken",
    "api_key",
    "apiKey",
    "API-KEY",
    "apikey",
    "authorization",
    "Authorization",
    "client_secret",
    "clientSecret",
    "secret",
    "secret_word",
    "totp_secret",
    "signature",
]
PLAIN_KEYS = ["name", "login", "shipping", "spinner", "mapping", "opinion", "keyboard", "res_ids", "vals"]


def test_every_documented_pattern_and_its_case_variants_are_masked():
    for key in SECRET_KEYS:
        assert is_secret_key(key), key
        assert redact_secrets({key: "s3cret"}) == {key: REDACTED}, key


def test_innocent_names_that_contain_a_pattern_inside_a_word_are_kept():
    for key in PLAIN_KEYS:
        assert not is_secret_key(key), key
    assert redact_secrets({"shipping": 3, "name": "Ana"}) == {"shipping": 3, "name": "Ana"}


def test_declared_extra_keys_are_masked_too():
    assert redact_secrets({"cpf": "123", "name": "Ana"}, extra=("cpf",)) == {"cpf": REDACTED, "name": "Ana"}
    assert redact_secrets({"bank": [{"Account_Number": "9"}]}, extra=["account_number"]) == {
        "bank": [{"Account_Number": REDACTED}]
    }
    assert not is_secret_key("cpf")


def test_the_pattern_set_is_documented():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    for pattern in SECRET_KEY_PATTERNS:
        assert f"`{pattern}`" in doc, pattern


# ------------------------------------------------------------------------ property-based

_plain_key = st.sampled_from(PLAIN_KEYS) | st.text(string.ascii_lowercase, min_size=1, max_size=4).filter(
    lambda key: not is_secret_key(key)
)
_secret_key = st.sampled_from(SECRET_KEYS)
_scalar = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
_payload = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_plain_key | _secret_key, inner, max_size=4),
    max_leaves=20,
)


def _secret_values(value, inside_secret=False):
    """Every value stored under a secret key in ``value`` (the values that must vanish)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if is_secret_key(key):
                yield item
            else:
                yield from _secret_values(item)
    elif isinstance(value, list):
        for item in value:
            yield from _secret_values(item)


def _walk(value):
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


@settings(max_examples=200, deadline=None)
@given(_payload)
def test_no_value_under_a_secret_key_survives_at_any_depth(payload):
    masked = redact_secrets(payload)
    for key, item in _walk(masked):
        if is_secret_key(key):
            assert item == REDACTED


@settings(max_examples=200, deadline=None)
@given(_payload)
def test_masking_keeps_the_shape_and_every_other_value(payload):
    masked = redact_secrets(payload)

    def same_shape(original, result):
        if isinstance(original, dict):
            assert isinstance(result, dict) and list(result) == list(original)
            for key in original:
                if is_secret_key(key):
                    assert result[key] == REDACTED
                else:
                    same_shape(original[key], result[key])
        elif isinstance(original, list):
            assert isinstance(result, list) and len(result) == len(original)
            for a, b in zip(original, result, strict=False):
                same_shape(a, b)
        else:
            assert result == original

    same_shape(payload, masked)
    assert redact_secrets(masked) == masked  # idempotent


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(_secret_key, _payload, min_size=1, max_size=3), _payload)
def test_a_secret_nested_under_plain_keys_is_masked(secrets, filler):
    payload = {"vals": {"lines": [filler, {"inner": secrets}]}}
    masked = redact_secrets(payload)
    assert all(value == REDACTED for value in masked["vals"]["lines"][1]["inner"].values())
