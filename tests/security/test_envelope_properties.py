"""Property-based tests (hypothesis) of what the workers trust: the envelope's signature and
the routing decision. Plain Python: no service needed."""

import string

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from quicksol_bus.envelope import CONTEXT_ALLOW_LIST, build_envelope, sign_envelope, verify_envelope
from quicksol_bus.errors import SignatureError
from quicksol_bus.payload import canonical_json, decode_payload
from quicksol_bus.routing import ObserverIndex, ObserverSpec
from quicksol_bus.topology import QUEUES

_segment = st.text(string.ascii_lowercase, min_size=1, max_size=6)
event_names = st.lists(_segment, min_size=2, max_size=3).map(".".join)
_json_scalar = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=12)
json_values = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=12,
)
keys = st.binary(min_size=1, max_size=32) | st.text(min_size=1, max_size=16)


@st.composite
def envelopes(draw):
    return build_envelope(
        event_id=draw(st.uuids()).hex,
        event_name=draw(event_names),
        observer=draw(event_names),
        queue=draw(st.sampled_from(sorted(QUEUES))),
        db=draw(st.text(string.ascii_lowercase + "_", min_size=1, max_size=10)),
        model=draw(st.none() | event_names),
        res_ids=draw(st.lists(st.integers(1, 10**9), max_size=5)),
        payload=draw(st.dictionaries(st.text(max_size=6), json_values, max_size=4)),
        uid=draw(st.integers(1, 10**6)),
        company_id=draw(st.integers(1, 100)),
        context=draw(
            st.dictionaries(st.sampled_from([*CONTEXT_ALLOW_LIST, "uid", "active_test"]), _json_scalar)
        ),
        attempt=draw(st.integers(1, 1000)),
    )


@settings(max_examples=80, deadline=None)
@given(envelopes(), keys)
def test_sign_encode_decode_verify_round_trip(envelope, key):
    signed = sign_envelope(envelope, key)
    travelled = decode_payload(canonical_json(signed))  # what the broker carries
    assert verify_envelope(travelled, key) == envelope
    assert set(envelope["context"]) <= set(CONTEXT_ALLOW_LIST)  # nothing else travels


@settings(max_examples=80, deadline=None)
@given(envelopes(), keys, st.data())
def test_any_change_of_any_field_breaks_the_signature(envelope, key, data):
    signed = sign_envelope(envelope, key)
    name = data.draw(st.sampled_from(sorted(envelope)))
    new = data.draw(json_values)
    assume(canonical_json(new) != canonical_json(envelope[name]))
    with pytest.raises(SignatureError):
        verify_envelope(dict(signed, **{name: new}), key)


@settings(max_examples=50, deadline=None)
@given(envelopes(), keys, keys)
def test_another_key_never_verifies(envelope, key, other):
    assume(
        (key.encode() if isinstance(key, str) else key)
        != (other.encode() if isinstance(other, str) else other)
    )
    with pytest.raises(SignatureError):
        verify_envelope(sign_envelope(envelope, other), key)


@settings(max_examples=50, deadline=None)
@given(envelopes(), keys, st.sampled_from(["signature", "event_id", "observer", "db", "attempt", "uid"]))
def test_removing_a_field_is_refused(envelope, key, name):
    signed = sign_envelope(envelope, key)
    del signed[name]
    with pytest.raises(SignatureError):
        verify_envelope(signed, key)


# ------------------------------------------------------------------------------ routing


@st.composite
def observer_sets(draw):
    names = draw(st.lists(event_names, min_size=1, max_size=4, unique=True))
    before = [f"{name}_x.before_create" for name in names[:1]]
    events = names + before
    specs = [
        ObserverSpec.declared(
            f"obs.{i}",
            draw(st.lists(st.sampled_from(events), min_size=1, max_size=3, unique=True)),
            async_capable=draw(st.booleans()),
            queue=draw(st.sampled_from(sorted(QUEUES))),
            sequence=draw(st.integers(0, 30)),
        )
        for i in range(draw(st.integers(1, 6)))
    ]
    return ObserverIndex(specs), events


@settings(max_examples=80, deadline=None)
@given(observer_sets(), st.booleans(), st.booleans(), st.data())
def test_routing_sends_every_observer_exactly_once_to_the_right_place(setup, force_sync, sync_mode, data):
    index, events = setup
    name = data.draw(st.sampled_from(events))
    plan = index.plan(name, force_sync=force_sync, sync_mode=sync_mode)
    routed = list(plan.inline) + list(plan.async_)
    assert sorted(s.model for s in routed) == sorted(s.model for s in index.observers(name))
    assert len({s.model for s in routed}) == len(routed)
    if name.rsplit(".", 1)[-1].startswith("before_") or force_sync or sync_mode:
        assert not plan.async_  # a before-event may veto: never leaves the transaction
    assert all(spec.async_capable for spec in plan.async_)
    assert all(spec.queue in QUEUES for spec in plan.async_)
    order = [(s.sequence, s.model) for s in plan.inline]
    assert order == sorted(order)


@settings(max_examples=50, deadline=None)
@given(observer_sets(), event_names)
def test_an_event_nobody_observes_routes_nowhere(setup, name):
    index, events = setup
    assume(name not in events)
    plan = index.plan(name)
    assert plan.inline == () and plan.async_ == ()
