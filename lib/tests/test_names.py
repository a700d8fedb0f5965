import pytest

from quicksol_bus.errors import InvalidEventName
from quicksol_bus.names import is_before_event, lifecycle_event, validate_event_name


@pytest.mark.parametrize(
    "name", ["property.created", "commission.split.calculated", "user.before_write", "a1.b_2"]
)
def test_valid_names_pass(name):
    assert validate_event_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "created",
        "Property.created",
        "property..created",
        ".created",
        "property.created.",
        "property.1created",
        "property created",
        "property.créé",
        "",
        "x." + "y" * 200,
    ],
)
def test_invalid_names_are_refused_with_the_grammar(name):
    with pytest.raises(InvalidEventName, match="invalid event name"):
        validate_event_name(name)


def test_non_string_name_is_refused():
    with pytest.raises(InvalidEventName, match="must be a string"):
        validate_event_name(["property.created"])


def test_before_events_are_recognised_by_their_last_segment():
    assert is_before_event("property.before_create")
    assert is_before_event("user.before_write")
    assert not is_before_event("before_create.done")
    assert not is_before_event("property.created")


@pytest.mark.parametrize(
    ("operation", "before", "expected"),
    [
        ("create", True, "property.before_create"),
        ("create", False, "property.created"),
        ("write", True, "property.before_write"),
        ("write", False, "property.updated"),
        ("unlink", True, "property.before_unlink"),
        ("unlink", False, "property.deleted"),
    ],
)
def test_lifecycle_names(operation, before, expected):
    assert lifecycle_event("property", operation, before) == expected


def test_lifecycle_name_with_bad_prefix_fails():
    with pytest.raises(InvalidEventName):
        lifecycle_event("Property", "create", False)


def test_a_validated_name_is_remembered_and_a_bad_one_still_refused():
    from quicksol_bus.names import _VALID_NAMES

    assert validate_event_name("cache.checked") == "cache.checked"
    assert "cache.checked" in _VALID_NAMES
    assert validate_event_name("cache.checked") == "cache.checked"  # the remembered path
    for bad in ("Cache.Bad", ["cache", "list"], None):
        with pytest.raises(InvalidEventName):
            validate_event_name(bad)
