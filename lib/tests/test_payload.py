import json

import pytest

from quicksol_bus.errors import PayloadNotSerializable, PayloadTooLarge
from quicksol_bus.payload import (
    REDACTED,
    canonical_json,
    decode_payload,
    encode_payload,
    redact_secrets,
)


class FakeRecordset:
    """Looks like an Odoo recordset to the payload check (which imports no Odoo)."""

    _name = "res.partner"
    ids = [7]

    def __repr__(self):
        return "res.partner(7,)"


def test_plain_json_is_encoded_canonically():
    encoded = encode_payload({"b": [1, 2.5, None, True], "a": {"x": "é"}})
    assert encoded == '{"a":{"x":"é"},"b":[1,2.5,null,true]}'.encode()
    assert decode_payload(encoded) == {"a": {"x": "é"}, "b": [1, 2.5, None, True]}


def test_recordset_error_names_the_field_and_the_fix():
    with pytest.raises(PayloadNotSerializable) as info:
        encode_payload({"vals": {"partner_id": FakeRecordset()}})
    message = str(info.value)
    assert "data['vals']['partner_id']" in message
    assert "res.partner recordset" in message
    assert "pass ids" in message


@pytest.mark.parametrize("value", [object(), {1, 2}, b"bytes", float("nan"), float("inf")])
def test_other_unserialisable_values_are_refused(value):
    with pytest.raises(PayloadNotSerializable, match=r"data\['v'\]\[0\]"):
        encode_payload({"v": [value]})


def test_non_string_keys_are_refused():
    with pytest.raises(PayloadNotSerializable, match="key 1"):
        encode_payload({"v": {1: "x"}})


def test_data_must_be_a_dict():
    with pytest.raises(PayloadNotSerializable, match="must be a dict"):
        encode_payload([1, 2])


def test_size_limit_counts_encoded_bytes():
    data = {"text": "x" * 100}
    size = len(json.dumps(data, separators=(",", ":")))
    assert encode_payload(data, limit=size)
    with pytest.raises(PayloadTooLarge, match=f"{size} bytes, over the limit of {size - 1}"):
        encode_payload(data, limit=size - 1)


def test_canonical_json_is_stable_for_key_order():
    assert canonical_json({"b": 1, "a": 2}) == canonical_json({"a": 2, "b": 1})


def test_secret_looking_fields_are_masked_and_others_kept():
    values = {
        "password": "p",
        "new_password": "p",
        "totp_secret": "t",
        "api_key": "k",
        "oauth_access_token": "o",
        "signature": "s",
        "login": "ana",
        "groups_id": [(4, 1)],
    }
    redacted = redact_secrets(values)
    assert {k for k, v in redacted.items() if v == REDACTED} == {
        "password",
        "new_password",
        "totp_secret",
        "api_key",
        "oauth_access_token",
        "signature",
    }
    assert redacted["login"] == "ana" and redacted["groups_id"] == [(4, 1)]
    assert values["password"] == "p", "the caller's dict is left alone"


def test_nested_secrets_are_masked_too():
    nested = {"user_ids": [(1, 7, {"password": "p", "name": "x"})], "meta": {"api_key": "k"}}
    assert redact_secrets(nested) == {
        "user_ids": [(1, 7, {"password": REDACTED, "name": "x"})],
        "meta": {"api_key": REDACTED},
    }


@pytest.mark.parametrize(
    "key",
    # The names the estate audit log masked with its own list before it used redact_secrets.
    ["password", "client_secret", "auth_token", "api_key", "apikey", "ApiKey", "totp_code", "signature"],
)
def test_one_list_of_secret_names_covers_the_audit_log(key):
    assert redact_secrets({"vals": [{key: "s3cret"}]}) == {"vals": [{key: REDACTED}]}


@pytest.mark.parametrize(
    "value",
    [
        {"a": [1, 2.5, None, True, "x", (3, 4)], "b": {"c": {"d": []}}},
        {"a": float("nan")},
        {"a": [float("inf")]},
        {"a": {1: "int key"}},
        {"a": [{"b": object()}]},
        {"a": {1, 2}},
    ],
)
def test_quick_check_agrees_with_the_walk_that_names_the_culprit(value):
    from quicksol_bus.payload import _find_unserialisable, _is_plain_json

    assert _is_plain_json(value) == (_find_unserialisable(value, "data") is None)
