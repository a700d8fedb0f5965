"""The queue topology: the one definition used by Odoo, the workers and the broker.

Odoo publishes to the direct exchange :data:`EXCHANGE` with the queue name as routing key.
Every queue is a durable classic queue (RabbitMQ 3.x honours priorities only there) with a
maximum priority, a message TTL and a dead-letter exchange ``dlx.<queue>`` that routes to the
durable ``<queue>.dead`` queue. Changing a value here changes it everywhere; RabbitMQ refuses
to redeclare a queue with other arguments, so such a change needs the queue deleted first
(see docs/operations.md).

>>> spec = QUEUES["commission_events"]
>>> spec.arguments()["x-max-priority"], spec.arguments()["x-dead-letter-exchange"]
(10, 'dlx.commission_events')
>>> spec.dead_queue
'commission_events.dead'
>>> get_queue("nope")
Traceback (most recent call last):
...
quicksol_bus.errors.UnknownQueue: unknown queue 'nope': declared queues are audit_events, ...
"""

import json
import re
import sys
from dataclasses import dataclass

from .errors import UnknownQueue

__all__ = [
    "EXCHANGE",
    "TASK_NAME",
    "DEFAULT_QUEUE",
    "MAINTENANCE_QUEUE",
    "QueueSpec",
    "QUEUES",
    "get_queue",
    "kombu_exchange",
    "kombu_queues",
    "rabbitmq_definitions",
]

# Direct exchange every event message is published to; the routing key is the queue name.
EXCHANGE = "quicksol.events"
# The Celery task every event message asks a worker to run.
TASK_NAME = "quicksol.event.deliver"
# Where an async-capable observer goes when it names no queue (the queue contract, docs/architecture.md).
DEFAULT_QUEUE = "audit_events"
# The workers' own queue for periodic jobs run by Celery beat (clean-up, reconciliation): a
# plain durable queue, not an event queue, so it is not in QUEUES (the contract table) and
# event messages never mix with maintenance tasks.
MAINTENANCE_QUEUE = "quicksol_maintenance"

_HOUR_MS = 3600 * 1000
# Dead-letter queues stay bounded by a RabbitMQ policy (applied to existing queues, unlike
# x-arguments): the oldest dead letters beyond this many, or older than this, are dropped.
# Odoo keeps the record of each dead delivery (state "dead", its error and data).
DEAD_LETTER_POLICY = "quicksol-dead-letters"
DEAD_LETTER_MAX_LENGTH = 10000
DEAD_LETTER_TTL_MS = 14 * 24 * _HOUR_MS


@dataclass(frozen=True)
class QueueSpec:
    """One queue of the contract table (docs/architecture.md)."""

    name: str
    max_priority: int
    message_ttl_ms: int
    default_priority: int
    workers: int
    concurrency: int

    @property
    def dead_letter_exchange(self):
        return f"dlx.{self.name}"

    @property
    def dead_queue(self):
        return f"{self.name}.dead"

    def arguments(self):
        """The queue's x-arguments, identical for every client that declares it."""
        return {
            "x-max-priority": self.max_priority,
            "x-message-ttl": self.message_ttl_ms,
            "x-dead-letter-exchange": self.dead_letter_exchange,
            "x-dead-letter-routing-key": self.dead_queue,
        }

    def clamp_priority(self, priority):
        """Keep ``priority`` within 0..max_priority (None means the queue's default)."""
        if priority is None:
            return self.default_priority
        return max(0, min(self.max_priority, int(priority)))


QUEUES = {
    spec.name: spec
    for spec in (
        QueueSpec("commission_events", 10, 1 * _HOUR_MS, 9, workers=2, concurrency=2),
        QueueSpec("audit_events", 5, 24 * _HOUR_MS, 5, workers=1, concurrency=1),
        QueueSpec("notification_events", 3, 7 * 24 * _HOUR_MS, 1, workers=1, concurrency=1),
    )
}


def get_queue(name):
    """Return the :class:`QueueSpec` called ``name`` or raise :class:`UnknownQueue`."""
    try:
        return QUEUES[name]
    except (KeyError, TypeError):
        raise UnknownQueue(
            f"unknown queue {name!r}: declared queues are {', '.join(sorted(QUEUES))}"
        ) from None


def kombu_exchange():
    """The kombu ``Exchange`` every event message is published to."""
    from kombu import Exchange  # imported here: names above need no broker client

    return Exchange(EXCHANGE, type="direct", durable=True)


def kombu_queues():
    """kombu ``Queue`` objects for the work queues and their dead-letter queues."""
    from kombu import Exchange, Queue

    exchange = kombu_exchange()
    queues = []
    for spec in QUEUES.values():
        queues.append(
            Queue(
                spec.name,
                exchange,
                routing_key=spec.name,
                durable=True,
                queue_arguments=spec.arguments(),
                max_priority=spec.max_priority,
            )
        )
        dlx = Exchange(spec.dead_letter_exchange, type="direct", durable=True)
        queues.append(Queue(spec.dead_queue, dlx, routing_key=spec.dead_queue, durable=True))
    return queues


def dead_letter_policy(vhost="/"):
    """The policy that bounds every ``<queue>.dead`` (max length, drop the oldest, TTL)."""
    names = "|".join(sorted(re.escape(spec.dead_queue) for spec in QUEUES.values()))
    return {
        "vhost": vhost,
        "name": DEAD_LETTER_POLICY,
        "pattern": f"^({names})$",
        "apply-to": "queues",
        "definition": {
            "max-length": DEAD_LETTER_MAX_LENGTH,
            "overflow": "drop-head",
            "message-ttl": DEAD_LETTER_TTL_MS,
        },
        "priority": 0,
    }


def rabbitmq_definitions(vhost="/"):
    """RabbitMQ definitions (exchanges, queues, bindings) for ``rabbitmqctl import_definitions``
    or the management plugin's ``load_definitions``; users are left to the deployment."""
    exchanges = [
        {
            "name": EXCHANGE,
            "vhost": vhost,
            "type": "direct",
            "durable": True,
            "auto_delete": False,
            "internal": False,
            "arguments": {},
        },
    ]
    queues, bindings = [], []
    for spec in QUEUES.values():
        exchanges.append(
            {
                "name": spec.dead_letter_exchange,
                "vhost": vhost,
                "type": "direct",
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
        )
        queues.append(
            {
                "name": spec.name,
                "vhost": vhost,
                "durable": True,
                "auto_delete": False,
                "arguments": spec.arguments(),
            }
        )
        queues.append(
            {"name": spec.dead_queue, "vhost": vhost, "durable": True, "auto_delete": False, "arguments": {}}
        )
        bindings.append(
            {
                "source": EXCHANGE,
                "vhost": vhost,
                "destination": spec.name,
                "destination_type": "queue",
                "routing_key": spec.name,
                "arguments": {},
            }
        )
        bindings.append(
            {
                "source": spec.dead_letter_exchange,
                "vhost": vhost,
                "destination": spec.dead_queue,
                "destination_type": "queue",
                "routing_key": spec.dead_queue,
                "arguments": {},
            }
        )
    return {
        "vhosts": [{"name": vhost}],
        "exchanges": exchanges,
        "queues": queues,
        "bindings": bindings,
        "policies": [dead_letter_policy(vhost)],
    }


def main(argv=None):
    """``python -m quicksol_bus.topology definitions`` prints the broker definitions JSON."""
    argv = sys.argv[1:] if argv is None else argv
    if argv != ["definitions"]:
        sys.stderr.write("usage: python -m quicksol_bus.topology definitions\n")
        return 2
    sys.stdout.write(json.dumps(rabbitmq_definitions(), indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
