"""Debounce, dedup and observer declarations: the per-observer guards before Odoo is called.

Debounce (``_debounce_seconds``), lossless, in Redis (see docs/adr/0005-workers-delivery.md):

- the first message for (observer, model, res_ids) in a window becomes the *leader*: its
  signed envelope joins the window (a Redis hash by event id, so joining twice is joining
  once) and the message is republished (confirmed) with a countdown of the window and a
  ``quicksol_debounce_fire`` header, then acked. A leader's message that comes back before
  its fire message was published (the worker died in between) is still the leader: it is
  deferred again, so a window always has a fire message;
- later messages of the window (*followers*) join it and are acked: they are now held by
  Redis, not by RabbitMQ;
- when the leader's fire message comes back, the window is closed atomically (new messages
  start a new window) and every envelope in it goes to Odoo in **one** ``run_async_batch``
  call (an ``_async_batch`` observer gets them in one ``handle_async_batch``: one run with the
  accumulated data); each event ends done, retried or dead-lettered like any message. The
  fire message is settled after every follower, and the closed window deleted only after
  that, so a crash at any point re-reads it (Odoo runs each pair once);
- a guard that fails for one message (Redis or Odoo timing out, anything unexpected) decides
  for that message only: a retry, or for a fire message a new deferral; the decisions already
  taken for the others stand;
- windows expire after :data:`WINDOW_TTL`, longer than any queue's message TTL plus the
  relay's republish margin: by then Odoo has published every event of a window whose fire
  message never came back again (its deliveries stayed queued), so nothing is lost with it.

Join and close are MULTI/EXEC transactions, so a follower either lands in the closing window
or starts the next one. Dedup (``_dedup_window``): ``SET NX EX window`` of the hash of
(observer, event name, payload); a later identical event within the window is not run again
but told to Odoo as coalesced into the first (``mark_coalesced``), or run normally when Odoo
has no such method (never lost).

Rate limit per observer (``_rate_limit``, e.g. ``'100/m'``, or ``QSB_WORKER_RATE_LIMITS``
naming the observer, which wins): a fixed-window counter in Redis shared by every worker
process, ``INCR qsb:rate:<observer>:<window>``; a message over the limit is republished (not a
retry) for the start of the next window and acked, so it waits in RabbitMQ, never in memory.

>>> parse_rate("100/m"), parse_rate("10/s"), parse_rate("5"), parse_rate("2/h")
((100, 60), (10, 1), (5, 1), (2, 3600))

>>> debounce_key("x.obs", "real.estate.property", [3, 1])
'qsb:debounce:x.obs:real.estate.property:1,3'
"""

import hashlib
import json
import logging
import time
import xmlrpc.client

from quicksol_bus.payload import canonical_json
from quicksol_bus.retry import RetryPolicy

from .outcome import Decision, TransientError, classify_exception, decide

__all__ = [
    "COALESCED",
    "DEFER",
    "THROTTLED",
    "Guards",
    "debounce_key",
    "dedup_key",
    "ObserverInfo",
    "parse_rate",
    "rate_key",
]

_logger = logging.getLogger(__name__)

COALESCED = "coalesced"  # held in a debounce window or folded into an identical event: ack
DEFER = "defer"  # republish (not a retry) after a countdown: the debounce leader
THROTTLED = "throttled"  # over the observer's rate limit: republish (not a retry) for later

FIRE_HEADER = "quicksol_debounce_fire"
DEBOUNCED_HEADER = "quicksol_debounced"
# Set on a fire message once it closed its window: the key of the closed window's envelopes.
CLOSED_HEADER = "quicksol_debounce_closed"
# 8 days: the longest queue message TTL (7 days, notification_events) plus the relay's default
# republish margin (1 h) with room to spare (see the module docstring).
WINDOW_TTL = 8 * 24 * 3600


def debounce_key(observer, model, res_ids):
    ids = ",".join(str(i) for i in sorted(res_ids or []))
    return f"qsb:debounce:{observer}:{model}:{ids}"


def parse_rate(text):
    """``"100/m"`` -> (100, 60): events per period in seconds (Celery's notation)."""
    count, _sep, unit = str(text).strip().partition("/")
    seconds = {"": 1, "s": 1, "m": 60, "h": 3600}.get(unit.strip().lower())
    if seconds is None or not count.strip().isdigit() or int(count) < 1:
        raise ValueError(f"invalid rate limit {text!r}: expected e.g. 100/m, 10/s or 1000/h")
    return int(count), seconds


def rate_key(observer, seconds, now):
    """Redis counter of ``observer``'s window containing ``now``.

    >>> rate_key("x.obs", 60, 125.0)
    'qsb:rate:x.obs:60:2'
    """
    return f"qsb:rate:{observer}:{seconds}:{int(now // seconds)}"


def dedup_key(envelope):
    """Key of the hash of (observer, event name, model, res_ids, payload)."""
    digest = hashlib.sha256(
        canonical_json(
            [
                envelope.get("observer"),
                envelope.get("event_name"),
                envelope.get("model"),
                envelope.get("res_ids"),
                envelope.get("payload"),
            ]
        )
    ).hexdigest()
    return f"qsb:dedup:{envelope.get('observer')}:{digest}"


class ObserverInfo:
    """Observers' declarations read from Odoo (``observer_info``), cached ``ttl`` seconds."""

    def __init__(self, connector, ttl, clock=time.monotonic):
        self.connector = connector
        self.ttl = ttl
        self.clock = clock
        self._info = None
        self._read_at = None

    def get(self, observer):
        now = self.clock()
        if self._info is None or now - self._read_at >= self.ttl:
            try:
                self._info = self.connector.observer_info() or {}
            except xmlrpc.client.Fault as fault:
                # An Odoo without observer_info: no guards (every event simply runs).
                _logger.warning(
                    "observer_info unavailable in Odoo (%s); no debounce/dedup",
                    str(fault.faultString).strip().splitlines()[-1:],
                )
                self._info = {}
            self._read_at = now
        return self._info.get(observer) or {}


class Guards:
    """Applies debounce and dedup to verified deliveries."""

    def __init__(self, config, redis_client, connector, info=None, clock=time.time):
        self.config = config
        self.redis = redis_client
        self.connector = connector
        self.info = info or ObserverInfo(connector, config.observer_info_ttl)
        self.clock = clock
        self.policy = RetryPolicy(
            max_retries=config.max_retries, base=config.retry_base, cap=config.retry_cap
        )

    def filter(self, todo, decisions):
        """Return (deliveries to run now, extra deliveries released from debounce windows).

        Deliveries held, deferred or failed in a guard get their decision in ``decisions``.
        """
        run, extra = [], []
        for delivery in todo:
            try:
                decision = self._guard(delivery, run, extra)
            except Exception as error:  # noqa: BLE001 - one message's guard failing decides for it alone
                decision = self._failed(delivery, error)
            if decision is not None:
                decisions[id(delivery)] = decision
        return run, extra

    def _guard(self, delivery, run, extra):
        """The decision for ``delivery``, or None when it runs now (appended to ``run``)."""
        fire = delivery.headers.get(FIRE_HEADER)
        if fire:
            followers = self._close_window(delivery, fire)
            run.append(delivery)
            extra.extend(followers)
            return None
        info = self.info.get(delivery.observer)
        debounce = float(info.get("debounce_seconds") or 0)
        if debounce > 0 and not delivery.headers.get(DEBOUNCED_HEADER):
            return self._join_window(delivery, debounce)
        window = int(info.get("dedup_window") or 0)
        if window > 0 and not delivery.retries:
            first = self._first_of(delivery.envelope, window)
            if first and first != delivery.event_id and self._mark_coalesced(delivery, first):
                return Decision(COALESCED, f"duplicate of event {first}")
        rate = self.config.rate_limits.get(delivery.observer) or info.get("rate_limit")
        if rate:
            wait = self._over_rate(delivery.observer, rate)
            if wait:
                return Decision(
                    THROTTLED, f"rate limit {rate} of {delivery.observer} reached", countdown=wait
                )
        run.append(delivery)
        return None

    def _failed(self, delivery, error):
        """The decision for a message whose guard raised ``error``."""
        error = classify_exception(error) or TransientError(f"guard failed unexpectedly: {error!r}")
        _logger.warning("guard failed (%s)", error, extra=delivery.log_extra())
        if delivery.headers.get(FIRE_HEADER):
            # Its window must still be closed: defer the fire message again, not as a retry.
            countdown = round(self.policy.delay(1), 3)
            return Decision(DEFER, f"closing the debounce window failed: {error}", countdown=countdown)
        return decide(error, delivery.retries, self.policy)

    # ------------------------------------------------------------------ rate limit

    def _over_rate(self, observer, rate):
        """0 when ``observer`` may run now, else the seconds until its next window."""
        try:
            limit, seconds = parse_rate(rate)
        except ValueError as error:
            _logger.error("%s: ignoring the rate limit of %s", error, observer)
            return 0
        now = self.clock()
        key = rate_key(observer, seconds, now)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(key)
        pipe.expire(key, seconds * 2)
        count, _ok = pipe.execute()
        if count <= limit:
            return 0
        # The next window starts at a multiple of ``seconds``; a little later, so that the
        # held messages do not all come back at its very first instant.
        return round(seconds - now % seconds + 0.05, 3)

    # ------------------------------------------------------------------ debounce

    def _join_window(self, delivery, seconds):
        key = debounce_key(
            delivery.observer, delivery.envelope.get("model"), delivery.envelope.get("res_ids")
        )
        signed = json.dumps(dict(delivery.args[0]))
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(f"{key}:open", delivery.event_id, signed)
        pipe.expire(f"{key}:open", WINDOW_TTL)
        pipe.set(f"{key}:leader", delivery.event_id, nx=True, ex=int(seconds * 4 + 3600))
        pipe.get(f"{key}:leader")
        *_done, leader = pipe.execute()
        if leader is not None and leader.decode() == delivery.event_id:
            # The leader, joining for the first time or again (its earlier try died before
            # its fire message was published): it must publish the fire message.
            return Decision(DEFER, f"debounce leader for {seconds}s", countdown=seconds)
        return Decision(COALESCED, "held in a debounce window")

    def _close_window(self, delivery, fire_key):
        """Close the window this fire message leads; return the followers' deliveries."""
        import redis

        from .messages import Delivery

        closed = f"{fire_key}:closed:{delivery.event_id}"
        with self.redis.pipeline(transaction=True) as pipe:
            try:
                pipe.watch(f"{fire_key}:leader")
                leader = pipe.get(f"{fire_key}:leader")
                if leader is not None and leader.decode() == delivery.event_id:
                    pipe.multi()
                    pipe.rename(f"{fire_key}:open", closed)
                    pipe.expire(closed, WINDOW_TTL)
                    pipe.delete(f"{fire_key}:leader")
                    pipe.execute()
            except redis.WatchError:
                _logger.info("debounce window %s changed while closing; using what is closed", fire_key)
        envelopes = [json.loads(raw) for raw in self.redis.hvals(closed)]
        delivery.headers[CLOSED_HEADER] = closed
        followers = []
        for env in envelopes:
            if env.get("event_id") == delivery.event_id:
                continue
            followers.append(
                Delivery(
                    task_id=f"{env['event_id']}:{env['observer']}",
                    args=(env,),
                    kwargs={},
                    retries=0,
                    queue=delivery.queue,
                    priority=delivery.priority,
                    headers={DEBOUNCED_HEADER: True},
                    envelope={k: v for k, v in env.items() if k != "signature"},
                )
            )
        return followers

    def forget_window(self, delivery):
        """After every delivery of the fire batch is settled: drop the closed window."""
        closed = delivery.headers.get(CLOSED_HEADER)
        if closed:
            self.redis.delete(closed)

    # ------------------------------------------------------------------ dedup

    def _first_of(self, envelope, window):
        key = dedup_key(envelope)
        if self.redis.set(key, envelope["event_id"], nx=True, ex=window):
            return envelope["event_id"]
        first = self.redis.get(key)
        return first.decode() if first else None

    def _mark_coalesced(self, delivery, first):
        try:
            # False: Odoo refused (the first event is unknown or failed, or this one is
            # done); the event then runs normally.
            return bool(self.connector.execute("mark_coalesced", delivery.event_id, delivery.observer, first))
        except xmlrpc.client.Fault as fault:
            _logger.info(
                "Odoo has no mark_coalesced (%s): running the duplicate",
                str(fault.faultString)[:200],
                extra=delivery.log_extra(),
            )
            return False
