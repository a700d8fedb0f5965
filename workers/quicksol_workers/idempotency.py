"""Redis "done" keys: skip the Odoo round trip for an event/observer pair already done.

``SET qsb:done:<event>:<observer> 1 NX EX <ttl>`` after Odoo said done; a redelivered or
duplicated message finds the key and is acknowledged without calling Odoo. This only saves
round trips: the exactly-once guard is Odoo's row lock and done mark (DESIGN.md step 5).
"""

__all__ = ["DoneCache", "done_key"]

PREFIX = "qsb:done"


def done_key(event_id, observer):
    """Redis key of the pair.

    >>> done_key("e1", "x.obs")
    'qsb:done:e1:x.obs'
    """
    return f"{PREFIX}:{event_id}:{observer}"


class DoneCache:
    """Done keys in Redis; ``client`` is a ``redis.Redis``."""

    def __init__(self, client, ttl):
        self.client = client
        self.ttl = int(ttl)

    def done_among(self, pairs):
        """The subset of ``pairs`` [(event_id, observer)] already done (one round trip)."""
        pairs = list(pairs)
        if not pairs:
            return set()
        values = self.client.mget([done_key(*pair) for pair in pairs])
        return {pair for pair, value in zip(pairs, values, strict=False) if value is not None}

    def mark_done(self, pairs):
        pairs = list(pairs)
        if not pairs:
            return
        pipe = self.client.pipeline(transaction=False)
        for pair in pairs:
            pipe.set(done_key(*pair), 1, nx=True, ex=self.ttl)
        pipe.execute()
