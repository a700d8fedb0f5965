import pytest

from quicksol_bus.errors import ObserverDeclarationError, UnknownQueue
from quicksol_bus.routing import ObserverIndex, ObserverSpec


def spec(model, events=("property.created",), **kw):
    return ObserverSpec.declared(model, list(events), **kw)


def test_declared_defaults():
    observer = spec("x.obs")
    assert observer.queue == "audit_events"
    assert observer.async_capable is False
    assert observer.sequence == 10
    assert observer.effective_priority == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"events": []}, "names no events"),
        ({"events": "property.created"}, "must be a list"),
        ({"events": ["Bad Name"]}, "invalid event name"),
        ({"queue": "fast_lane"}, "unknown queue 'fast_lane'"),
        ({"sequence": "1"}, "_sequence must be an int"),
        ({"queue": "notification_events", "priority": 4}, "outside 0..3"),
    ],
)
def test_bad_declarations_fail_loudly(kwargs, message):
    events = kwargs.pop("events", ["property.created"])
    with pytest.raises(ObserverDeclarationError, match=message) as info:
        ObserverSpec.declared("x.obs", events, **kwargs)
    assert "observer x.obs" in str(info.value)


def test_unknown_queue_is_an_observer_declaration_error():
    assert issubclass(UnknownQueue, ObserverDeclarationError)


def test_order_is_sequence_then_model_name():
    index = ObserverIndex([spec("c", sequence=5), spec("b", sequence=10), spec("a", sequence=10)])
    assert [s.model for s in index.observers("property.created")] == ["c", "a", "b"]


def test_async_capable_observers_go_async_others_inline():
    index = ObserverIndex([spec("sync"), spec("async", async_capable=True)])
    plan = index.plan("property.created")
    assert [s.model for s in plan.inline] == ["sync"]
    assert [s.model for s in plan.async_] == ["async"]


@pytest.mark.parametrize("flags", [{"force_sync": True}, {"sync_mode": True}])
def test_force_sync_and_sync_mode_run_everything_inline(flags):
    index = ObserverIndex([spec("sync"), spec("async", async_capable=True)])
    plan = index.plan("property.created", **flags)
    assert [s.model for s in plan.inline] == ["async", "sync"]
    assert plan.async_ == ()


def test_before_events_always_run_inline():
    index = ObserverIndex([spec("async", events=["property.before_create"], async_capable=True)])
    plan = index.plan("property.before_create")
    assert [s.model for s in plan.inline] == ["async"]
    assert plan.async_ == ()


def test_unobserved_event_has_an_empty_plan():
    index = ObserverIndex([spec("a")])
    assert not index.has_observers("user.created")
    assert index.plan("user.created").inline == ()
    assert index.get("a").model == "a" and index.get("zzz") is None


def test_plans_are_computed_once_per_event_and_mode():
    index = ObserverIndex([spec("sync"), spec("async", async_capable=True)])
    first = index.plan("property.created")
    assert index.plan("property.created") is first  # cached
    forced = index.plan("property.created", force_sync=True)
    assert forced is not first and [s.model for s in forced.inline] == ["async", "sync"]
    assert [s.model for s in index.plan("property.created").async_] == ["async"]
