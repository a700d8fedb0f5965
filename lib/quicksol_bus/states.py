"""Delivery states, and the one rule that gives an event its state: its worst delivery's.

An event routed async has one delivery per target observer. Each delivery moves through

    pending ──published and confirmed──▶ queued ──run by a worker──▶ done
       ▲                                   │  └──permanent error──▶ failed
       └────────── requeue (admin) ◀────────┴──retries exhausted──▶ dead

and the event shows the *worst* state among its deliveries, in :data:`WORST_FIRST` order, so
that one dead delivery among done ones is what an administrator sees first.

>>> worst_state(["done", "queued", "done"])
'queued'
>>> worst_state(["done", "dead", "pending"])
'dead'
>>> worst_state([])
'pending'

:func:`worst_state_sql` is the same rule for PostgreSQL, written from the same order so the
two can never disagree:

>>> print(worst_state_sql("state"))  # doctest: +ELLIPSIS
CASE WHEN bool_or(state = 'dead') THEN 'dead' WHEN bool_or(state = 'failed') THEN 'failed' ...
"""

__all__ = [
    "PENDING",
    "QUEUED",
    "DONE",
    "FAILED",
    "DEAD",
    "STATES",
    "WORST_FIRST",
    "UNFINISHED",
    "worst_state",
    "worst_state_sql",
]

PENDING = "pending"  # in the outbox, not yet confirmed by the broker
QUEUED = "queued"  # confirmed by the broker, waiting for a worker
DONE = "done"
FAILED = "failed"  # the observer raised a permanent error
DEAD = "dead"  # retries exhausted; the message is in <queue>.dead

#: (value, label) pairs, in the order a person reads the lifecycle.
STATES = [
    (PENDING, "Pending"),
    (QUEUED, "Queued"),
    (DONE, "Done"),
    (FAILED, "Failed"),
    (DEAD, "Dead letter"),
]
#: An event's state is the first of these that one of its deliveries is in.
WORST_FIRST = (DEAD, FAILED, PENDING, QUEUED, DONE)
#: Deliveries in these states still have work to do: nothing may delete them.
UNFINISHED = (PENDING, QUEUED)


def worst_state(states):
    """The event state of deliveries in ``states`` (``pending`` for an event without any)."""
    present = set(states)
    return next((state for state in WORST_FIRST if state in present), PENDING)


def worst_state_sql(column):
    """A SQL aggregate of ``column`` (a trusted identifier) that computes :func:`worst_state`."""
    cases = " ".join(f"WHEN bool_or({column} = '{state}') THEN '{state}'" for state in WORST_FIRST[:-1])
    return f"CASE {cases} ELSE '{WORST_FIRST[-1]}' END"
