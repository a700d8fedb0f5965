"""Event names: the grammar, before/after events and the emitter mixin's lifecycle names.

An event name is two or more dot-separated segments of lower-case ASCII letters, digits and
underscores, each starting with a letter: ``property.created``, ``commission.split.calculated``.
A *before-event* is one whose last segment starts with ``before_``; it runs inline and its
observers may veto the operation by raising.

>>> is_before_event("property.before_create")
True
>>> is_before_event("property.created")
False
>>> lifecycle_event("property", "write", before=False)
'property.updated'
>>> validate_event_name("Property.Created")
Traceback (most recent call last):
...
quicksol_bus.errors.InvalidEventName: invalid event name 'Property.Created': ...
"""

import re

from .errors import InvalidEventName

__all__ = [
    "EVENT_NAME_PATTERN",
    "MAX_EVENT_NAME_LENGTH",
    "LIFECYCLE_OPERATIONS",
    "is_before_event",
    "validate_event_name",
    "lifecycle_event",
]

_SEGMENT = r"[a-z][a-z0-9_]*"
EVENT_NAME_PATTERN = re.compile(rf"^{_SEGMENT}(\.{_SEGMENT})+$")

# The event name is stored in a char column and travels in AMQP headers; 128 keeps it readable
# in the admin list views and far below any header limit.
MAX_EVENT_NAME_LENGTH = 128

# Operation -> (before-event suffix, after-event suffix) for quicksol.event.emitter.mixin.
LIFECYCLE_OPERATIONS = {
    "create": ("before_create", "created"),
    "write": ("before_write", "updated"),
    "unlink": ("before_unlink", "deleted"),
}

_GRAMMAR_HINT = (
    "use two or more dot-separated lower-case segments of letters, digits and underscores, "
    "each starting with a letter, e.g. 'property.created'"
)


# Names already checked: every emit validates its name, and a program has a few dozen.
_VALID_NAMES = set()


def validate_event_name(name):
    """Return ``name`` when it follows the grammar, else raise :class:`InvalidEventName`."""
    if type(name) is str and name in _VALID_NAMES:  # type: an unhashable name must not raise here
        return name
    _check_event_name(name)
    if type(name) is str and len(_VALID_NAMES) < 4096:  # bounded, should names be made up at run time
        _VALID_NAMES.add(name)
    return name


def _check_event_name(name):
    if not isinstance(name, str):
        raise InvalidEventName(f"event name must be a string, got {type(name).__name__}")
    if len(name) > MAX_EVENT_NAME_LENGTH:
        raise InvalidEventName(
            f"invalid event name {name[:40]!r}...: longer than {MAX_EVENT_NAME_LENGTH} characters"
        )
    if not EVENT_NAME_PATTERN.match(name):
        raise InvalidEventName(f"invalid event name {name!r}: {_GRAMMAR_HINT}")
    return name


def is_before_event(name):
    """Tell whether ``name`` is a before-event (its last segment starts with ``before_``)."""
    return name.rsplit(".", 1)[-1].startswith("before_")


def lifecycle_event(prefix, operation, before):
    """Return the event name the emitter mixin uses for ``operation`` on models of ``prefix``."""
    before_suffix, after_suffix = LIFECYCLE_OPERATIONS[operation]
    return validate_event_name(f"{prefix}.{before_suffix if before else after_suffix}")
