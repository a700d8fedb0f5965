import json

import pytest

from quicksol_bus import topology
from quicksol_bus.errors import UnknownQueue

CONTRACT = {
    # queue: (x-max-priority, TTL ms, default priority, workers, concurrency) from the queue contract
    "commission_events": (10, 3_600_000, 9, 2, 2),
    "audit_events": (5, 86_400_000, 5, 1, 1),
    "notification_events": (3, 604_800_000, 1, 1, 1),
}


@pytest.mark.parametrize("name", sorted(CONTRACT))
def test_queue_table_matches_the_contract(name):
    spec = topology.get_queue(name)
    max_priority, ttl, default_priority, workers, concurrency = CONTRACT[name]
    assert spec.arguments() == {
        "x-max-priority": max_priority,
        "x-message-ttl": ttl,
        "x-dead-letter-exchange": f"dlx.{name}",
        "x-dead-letter-routing-key": f"{name}.dead",
    }
    assert (spec.default_priority, spec.workers, spec.concurrency) == (default_priority, workers, concurrency)
    assert spec.dead_queue == f"{name}.dead"


def test_priorities_are_clamped_to_the_queue():
    spec = topology.get_queue("notification_events")
    assert spec.clamp_priority(None) == 1
    assert spec.clamp_priority(99) == 3
    assert spec.clamp_priority(-1) == 0


def test_unknown_queue_lists_the_declared_ones():
    with pytest.raises(UnknownQueue, match="audit_events, commission_events, notification_events"):
        topology.get_queue("other")


def test_kombu_queues_carry_the_same_arguments():
    queues = {q.name: q for q in topology.kombu_queues()}
    assert set(queues) == set(CONTRACT) | {f"{n}.dead" for n in CONTRACT}
    for name in CONTRACT:
        assert queues[name].queue_arguments == topology.get_queue(name).arguments()
        assert queues[name].exchange.name == topology.EXCHANGE
        assert queues[name].routing_key == name
        assert queues[f"{name}.dead"].exchange.name == f"dlx.{name}"


def test_definitions_bind_every_queue_and_dead_letter_queue():
    definitions = topology.rabbitmq_definitions()
    bindings = {(b["source"], b["destination"], b["routing_key"]) for b in definitions["bindings"]}
    for name in CONTRACT:
        assert (topology.EXCHANGE, name, name) in bindings
        assert (f"dlx.{name}", f"{name}.dead", f"{name}.dead") in bindings
    assert all(q["durable"] for q in definitions["queues"])


def test_definitions_cli(capsys):
    assert topology.main(["definitions"]) == 0
    assert json.loads(capsys.readouterr().out) == topology.rabbitmq_definitions()
    assert topology.main([]) == 2
