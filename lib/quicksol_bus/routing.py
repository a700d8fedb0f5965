"""Observer declarations, the event -> observers index, and the inline/async routing plan.

The Odoo addon reads each observer model's class attributes into an :class:`ObserverSpec`;
everything else here is plain data, so the routing rules (ADR 0001) are testable alone:

- a before-event always runs inline (it may veto the write by raising);
- otherwise an observer runs async when it is ``async_capable``, ``force_sync`` is false
  and the bus is not in sync mode; else inline.

>>> index = ObserverIndex([
...     ObserverSpec("b.audit", ("property.created",), async_capable=True, sequence=20),
...     ObserverSpec("a.check", ("property.created",), sequence=10),
... ])
>>> plan = index.plan("property.created")
>>> [s.model for s in plan.inline], [s.model for s in plan.async_]
(['a.check'], ['b.audit'])
>>> [s.model for s in index.plan("property.created", force_sync=True).inline]
['a.check', 'b.audit']
"""

from dataclasses import dataclass, field

from .errors import ObserverDeclarationError
from .names import is_before_event, validate_event_name
from .topology import DEFAULT_QUEUE, get_queue

__all__ = ["ObserverSpec", "RoutingPlan", "ObserverIndex"]


@dataclass(frozen=True)
class ObserverSpec:
    """What an observer model declares (its class attributes)."""

    model: str
    events: tuple
    async_capable: bool = False
    queue: str = DEFAULT_QUEUE
    sequence: int = 10
    priority: int = None
    batchable: bool = False

    @classmethod
    def declared(
        cls, model, events, async_capable=False, queue=None, sequence=10, priority=None, batchable=False
    ):
        """Build a spec from raw class attributes, failing loudly on a bad declaration."""
        where = f"observer {model}"
        if isinstance(events, str) or not isinstance(events, (list, tuple, set, frozenset)):
            raise ObserverDeclarationError(
                f"{where}: _observe_events must be a list of event names, got {events!r}"
            )
        if not events:
            raise ObserverDeclarationError(f"{where}: _observe_events names no events")
        for name in events:
            try:
                validate_event_name(name)
            except ValueError as error:
                raise ObserverDeclarationError(f"{where}: {error}") from None
        queue = queue or DEFAULT_QUEUE
        try:
            spec = get_queue(queue)
        except ValueError as error:
            raise ObserverDeclarationError(f"{where}: _async_queue: {error}") from None
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            raise ObserverDeclarationError(f"{where}: _sequence must be an int, got {sequence!r}")
        if priority is not None and not (0 <= int(priority) <= spec.max_priority):
            raise ObserverDeclarationError(
                f"{where}: _async_priority {priority!r} is outside 0..{spec.max_priority} of queue {queue}"
            )
        return cls(
            model, tuple(sorted(set(events))), bool(async_capable), queue, sequence, priority, bool(batchable)
        )

    @property
    def effective_priority(self):
        return get_queue(self.queue).clamp_priority(self.priority)


@dataclass(frozen=True)
class RoutingPlan:
    """Observers of one emission, split by where they run, each list in run order."""

    inline: tuple = ()
    async_: tuple = ()


@dataclass
class ObserverIndex:
    """Event name -> observers, ordered by sequence then model name."""

    specs: list
    _by_event: dict = field(init=False, repr=False)
    # (event name, force_sync, sync_mode) -> RoutingPlan: every emit asks, the answer never
    # changes for an index (a registry reload builds a new one).
    _plans: dict = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self):
        by_event = {}
        for spec in sorted(self.specs, key=lambda s: (s.sequence, s.model)):
            for name in spec.events:
                by_event.setdefault(name, []).append(spec)
        self._by_event = {name: tuple(specs) for name, specs in by_event.items()}

    def observers(self, event_name):
        return self._by_event.get(event_name, ())

    def has_observers(self, event_name):
        return event_name in self._by_event

    def get(self, model):
        for spec in self.specs:
            if spec.model == model:
                return spec
        return None

    def plan(self, event_name, force_sync=False, sync_mode=False):
        key = (event_name, bool(force_sync), bool(sync_mode))
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = self._route(event_name, force_sync, sync_mode)
        return plan

    def _route(self, event_name, force_sync, sync_mode):
        observers = self.observers(event_name)
        if is_before_event(event_name) or force_sync or sync_mode:
            return RoutingPlan(inline=observers)
        return RoutingPlan(
            inline=tuple(s for s in observers if not s.async_capable),
            async_=tuple(s for s in observers if s.async_capable),
        )
