"""Redis "done" keys: skip the Odoo round trip for a delivery already done.

``SET qsb:done:<event>:<observer>:<attempt> 1 NX EX <ttl>`` after Odoo said done; a
redelivered or duplicated message of the same publish attempt finds the key and is
acknowledged without calling Odoo. The key names the envelope's publish ``attempt`` because
an administrator's requeue publishes the pair again with a new attempt: that message must
reach Odoo, whatever an earlier attempt left in Redis. This only saves round trips: the
exactly-once guard is Odoo's row lock and done mark (docs/adr/0005-workers-delivery.md §5).
"""

__all__ = ["DoneCache", "done_key"]

PREFIX = "qsb:done"


def done_key(event_id, observer, attempt):
    """Redis key of one publish attempt of the pair (``attempt`` None: unknown, "-").

    >>> done_key("e1", "x.obs", 2)
    'qsb:done:e1:x.obs:2'
    """
    return f"{PREFIX}:{event_id}:{observer}:{'-' if attempt is None else int(attempt)}"


class DoneCache:
    """Done keys in Redis; ``client`` is a ``redis.Redis``. Items are
    ``(event_id, observer, attempt)`` triples."""

    def __init__(self, client, ttl):
        self.client = client
        self.ttl = int(ttl)

    def done_among(self, items):
        """The subset of ``items`` already done (one round trip)."""
        items = list(items)
        if not items:
            return set()
        values = self.client.mget([done_key(*item) for item in items])
        return {item for item, value in zip(items, values, strict=False) if value is not None}

    def mark_done(self, items):
        items = list(items)
        if not items:
            return
        pipe = self.client.pipeline(transaction=False)
        for item in items:
            pipe.set(done_key(*item), 1, nx=True, ex=self.ttl)
        pipe.execute()
