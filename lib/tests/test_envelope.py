import pytest

from quicksol_bus.envelope import build_envelope, sign_envelope, verify_envelope
from quicksol_bus.errors import SignatureError

KEY = b"test-signing-key"


def make(**overrides):
    fields = {
        "event_id": "0b1c",
        "event_name": "property.created",
        "observer": "x.audit",
        "queue": "audit_events",
        "db": "prod",
        "model": "real.estate.property",
        "res_ids": (1, 2),
        "payload": {"res_ids": [1, 2]},
        "uid": 2,
        "company_id": 1,
        "context": {
            "lang": "pt_BR",
            "tz": "America/Sao_Paulo",
            "allowed_company_ids": [1],
            "password": "no",
            "params": {},
        },
        "emitted_at": "2026-01-01T00:00:00.000000Z",
    }
    fields.update(overrides)
    return build_envelope(**fields)


def test_envelope_carries_the_contract_fields():
    envelope = make()
    assert envelope["res_ids"] == [1, 2]
    assert envelope["attempt"] == 1 and envelope["v"] == 1
    assert envelope["context"] == {"lang": "pt_BR", "tz": "America/Sao_Paulo", "allowed_company_ids": [1]}


def test_no_credentials_travel():
    text = repr(make())
    assert "password" not in text and "params" not in text


def test_round_trip():
    signed = sign_envelope(make(), KEY)
    assert len(signed["signature"]) == 64
    assert verify_envelope(signed, KEY) == make()
    assert verify_envelope(sign_envelope(make(), KEY.decode()), KEY) == make()


@pytest.mark.parametrize("field", ["payload", "observer", "uid", "res_ids", "db", "attempt"])
def test_any_change_breaks_the_signature(field):
    signed = sign_envelope(make(), KEY)
    signed[field] = "tampered"
    with pytest.raises(SignatureError, match="signature mismatch"):
        verify_envelope(signed, KEY)


def test_wrong_key_unsigned_and_malformed_are_refused():
    with pytest.raises(SignatureError, match="mismatch"):
        verify_envelope(sign_envelope(make(), KEY), b"other")
    with pytest.raises(SignatureError, match="unsigned"):
        verify_envelope(make(), KEY)
    with pytest.raises(SignatureError, match="missing event_name"):
        verify_envelope({k: v for k, v in make().items() if k != "event_name"}, KEY)
    with pytest.raises(SignatureError, match="must be a dict"):
        verify_envelope(["x"], KEY)


def test_signing_needs_a_key():
    with pytest.raises(SignatureError, match="EVENT_BUS_SIGNING_KEY"):
        sign_envelope(make(), "")
