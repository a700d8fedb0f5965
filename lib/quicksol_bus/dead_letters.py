"""Keep ``<queue>.dead`` bounded (no Odoo import): the RabbitMQ policy, and the purge of the
dead letters that Odoo has recorded.

A dead letter is *recorded* when Odoo holds its delivery in a final state (dead, failed or
done: requeued and run since): its data and error live on in Odoo, so the message can go.
Dead letters Odoo does not know about yet stay for the workers' reconciliation.
"""

import json
from urllib.parse import quote

from .monitoring import _management_get
from .topology import dead_letter_policy

__all__ = ["apply_dead_letter_policy", "purge_recorded_dead_letters"]


def apply_dead_letter_policy(mgmt_url, vhost="/", timeout=5.0):
    """Create or update the dead-letter policy through the management API; return it."""
    policy = dead_letter_policy(vhost)
    body = {key: policy[key] for key in ("pattern", "apply-to", "definition", "priority")}
    path = f"/api/policies/{quote(vhost, safe='')}/{quote(policy['name'], safe='')}"
    _management_get(mgmt_url, path, timeout, method="PUT", body=json.dumps(body).encode())
    return policy


def purge_recorded_dead_letters(broker_url, dead_queue, is_recorded, limit=10000, timeout=5.0):
    """Remove from ``dead_queue`` the messages ``is_recorded(event_uuid, observer)`` accepts.

    Every message read is held unacknowledged until the end, then acked (removed) or put back
    (``requeue``), so a crash half-way loses nothing. Returns ``(removed, kept)``.
    """
    from kombu import Connection

    removed = kept = 0
    with Connection(broker_url, connect_timeout=timeout, heartbeat=0) as connection:
        connection.connect()
        channel = connection.channel()
        held = []
        try:
            while len(held) < limit:
                message = channel.basic_get(dead_queue, no_ack=False)
                if message is None:
                    break
                held.append(message)
            pairs = [_pair(message) for message in held]
            recorded = is_recorded({pair for pair in pairs if pair})
            for message, pair in zip(held, pairs, strict=False):
                if pair and pair in recorded:
                    channel.basic_ack(message.delivery_tag)
                    removed += 1
                else:
                    channel.basic_reject(message.delivery_tag, requeue=True)
                    kept += 1
            held = []
        finally:
            for message in held:  # an error before the decisions: everything goes back
                channel.basic_reject(message.delivery_tag, requeue=True)
    return removed, kept


def _pair(message):
    headers = getattr(message, "headers", None) or message.properties.get("application_headers") or {}
    event_id, observer = headers.get("quicksol_event_id"), headers.get("quicksol_observer")
    return (str(event_id), str(observer)) if event_id and observer else None
