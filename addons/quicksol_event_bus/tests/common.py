"""Test helpers for modules that emit or observe events (like queue_job's ``trap_jobs``).

    from odoo.addons.quicksol_event_bus.tests.common import trap_events

    with trap_events(self.env) as trap:
        self.env["real.estate.property"].create({...})
    trap.assert_emitted("property.created", res_ids=[...])
    trap.run_async()            # run the trapped async observers, exactly once, like a worker

A trap covers the whole registry (every transaction of the process on that database), as
queue_job's ``trap_jobs`` does; use it in tests only. While a trap is active nothing is
published to the broker: async deliveries are written to
the outbox (so ``run_async`` uses the same exactly-once path as a worker) and wait for
:meth:`EventTrap.run_async`. Inline observers run as usual.
"""

import copy
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["trap_events", "EventTrap", "TrappedEvent"]


@dataclass
class TrappedEvent:
    name: str
    data: dict
    inline_observers: list
    async_observers: list
    uuid: str = None
    delivery_ids: list = field(default_factory=list)


class EventTrap:
    """Records every emission while active; see the module docstring."""

    def __init__(self, env):
        self.env = env
        self.events = []

    def record(self, name, data, inline, async_, event, pending):
        self.events.append(
            TrappedEvent(
                name=name,
                data=copy.deepcopy(data),
                inline_observers=[spec.model for spec in inline],
                async_observers=[spec.model for spec in async_],
                uuid=event.uuid if async_ else None,
                delivery_ids=pending.ids,
            )
        )

    def named(self, name):
        return [event for event in self.events if event.name == name]

    def assert_emitted(self, name, count=None, **data):
        """Assert ``name`` was emitted (``count`` times), with ``data`` items if given."""
        matching = [
            e for e in self.named(name) if all(e.data.get(key) == value for key, value in data.items())
        ]
        emitted = sorted({e.name for e in self.events})
        # Explicit raises, not `assert`: this helper must check under `python -O` too.
        if not matching:
            raise AssertionError(f"{name} with {data or 'any data'} was not emitted; emitted: {emitted}")
        if count is not None and len(matching) != count:
            raise AssertionError(f"{name} emitted {len(matching)} times, expected {count}")
        return matching[-1] if count in (None, 1) else matching

    def assert_not_emitted(self, name):
        if self.named(name):
            raise AssertionError(f"{name} was emitted {len(self.named(name))} times")

    def run_async(self):
        """Run the trapped async deliveries as a worker would; return {delivery id: result}.

        Events that the observers emit while they run (chained events) are trapped too when
        the trap is still active; their deliveries wait for the next ``run_async``.
        """
        ids = [i for event in self.events for i in event.delivery_ids]
        Delivery = self.env["quicksol.event.delivery"].sudo()
        pairs = [(d.event_id.uuid, d.observer) for d in Delivery.browse(ids)]
        found = Delivery._lock_pairs(pairs)
        results = Delivery.browse(list(found.values()))._run_locked()
        ran = set(ids)
        for event in self.events:
            event.delivery_ids = [i for i in event.delivery_ids if i not in ran]
        return results

    def clear(self):
        self.events = []


@contextmanager
def trap_events(env):
    """Trap the events emitted in ``env``'s registry while the block runs."""
    trap = EventTrap(env)
    registry = env.registry
    previous = getattr(registry, "_quicksol_event_traps", ())
    registry._quicksol_event_traps = (*previous, trap)
    try:
        yield trap
    finally:
        registry._quicksol_event_traps = previous
