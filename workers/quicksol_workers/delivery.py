"""Deliver messages to Odoo: verify, skip what is done, call Odoo (batched), settle each message.

What is it?
    The logic behind the Celery task, free of Celery: :class:`Deliverer` takes the message
    Celery handed over (the *head*), pulls up to ``batch_size - 1`` more ready messages of the
    same queue (highest priority first), and settles every one of them exactly once:

    1. decode, verify shape and signature, check the envelope's database (bad -> dead letter
       with the reason; Odoo never called);
    2. skip deliveries Redis remembers as done (ack, no Odoo call);
    3. one Odoo call for the rest: ``run_async`` for one, ``run_async_batch`` for many;
    4. write the Redis done keys of what Odoo ran (one pipeline for the batch);
    5. settle per message, by the table :data:`SETTLE`: decision action -> what happens to the
       message (ack, republish, dead letter).
How to use it?
    ``Deliverer(config, connector, broker, done_cache, metrics).process(head)``; every
    collaborator is injectable (tests pass real ones pointed at real services).
Caveats:
    One message never holds up the others: an error nobody classified is the message's own
    (a counted retry, dead after ``QSB_WORKER_POISON_MAX_DELIVERIES`` deliveries); a retry or
    dead letter RabbitMQ does not confirm (alarm, broker down) requeues that message only.
    The head is acknowledged by Celery after the task returns (``acks_late``); pulled messages
    are settled here. Only a lost consuming connection interrupts a batch: its unsettled pulled
    messages are rejected with requeue (RabbitMQ requeues them anyway), and the task rejects
    the head with requeue (:class:`HeadRequeued` or the error).
"""

import logging
import time

from amqp.exceptions import AMQPError
from kombu.exceptions import OperationalError

from quicksol_bus.errors import SignatureError
from quicksol_bus.retry import RetryPolicy

from .broker import PublishFailed
from .guards import CLOSED_HEADER, COALESCED, DEFER, FIRE_HEADER, THROTTLED, debounce_key
from .messages import HOLDS_HEADER, UndecodableMessage, from_kombu_message, verify
from .outcome import (
    ACK,
    DEAD,
    FAILED,
    HOLD,
    REASON_DONE_IN_REDIS,
    REASON_OTHER_DATABASE,
    REASON_UNDECODABLE,
    REASON_UNEXPECTED,
    RETRY,
    Decision,
    TransientError,
    classify_exception,
    decide,
    decide_unexpected,
)

__all__ = ["Deliverer", "HeadRequeued", "SETTLE", "Settled"]

_logger = logging.getLogger(__name__)


class HeadRequeued(Exception):
    """The head's retry or dead letter was not confirmed: the task must requeue the head."""


class Settled(list):
    """The (delivery, decision) pairs of one :meth:`Deliverer.process` call."""

    def counts(self):
        result = {}
        for _delivery, decision in self:
            result[decision.action] = result.get(decision.action, 0) + 1
        return result


# ---------------------------------------------------------------------- the outcome table
# decision action -> how the message is settled. Each handler publishes what replaces the
# message (with confirms) and logs; the message is acknowledged after it returns.


def _settle_ack(deliverer, delivery, decision):
    _logger.info("event delivered (%s)", decision.reason, extra=delivery.log_extra())


def _settle_failed(deliverer, delivery, decision):
    _logger.warning("event failed in Odoo (permanent): %s", decision.reason, extra=delivery.log_extra())


def _settle_retry(deliverer, delivery, decision):
    deliverer.broker.republish(delivery, decision.countdown)
    _logger.warning(
        "event will be retried in %.1fs (retry %d): %s",
        decision.countdown,
        delivery.retries + 1,
        decision.reason,
        extra=delivery.log_extra(),
    )


def _settle_hold(deliverer, delivery, decision):
    deliverer.broker.republish(
        delivery,
        decision.countdown,
        count_retry=False,
        extra_headers={HOLDS_HEADER: delivery.holds + 1},
    )
    # An alarm, not a message problem: every message waits until an operator acts.
    _logger.error(
        "ALARM: Odoo refused the worker itself; event held back %.1fs without using a retry "
        "(held %d times): %s",
        decision.countdown,
        delivery.holds + 1,
        decision.reason,
        extra=dict(delivery.log_extra(), alarm="worker_credential"),
    )


def _settle_defer(deliverer, delivery, decision):
    deliverer.broker.republish(
        delivery,
        decision.countdown,
        count_retry=False,
        extra_headers={FIRE_HEADER: _debounce_key(delivery)},
    )
    _logger.info("event leads a debounce window: %s", decision.reason, extra=delivery.log_extra())


def _settle_throttled(deliverer, delivery, decision):
    deliverer.broker.republish(delivery, decision.countdown, count_retry=False)
    _logger.info("event held back %.2fs: %s", decision.countdown, decision.reason, extra=delivery.log_extra())


def _settle_coalesced(deliverer, delivery, decision):
    _logger.info("event coalesced: %s", decision.reason, extra=delivery.log_extra())


def _settle_dead(deliverer, delivery, decision):
    marked = deliverer._mark_dead(delivery, decision.reason) if decision.mark_dead else "n/a"
    deliverer.broker.dead_letter(delivery, decision.reason, marked)
    _logger.error(
        "event dead-lettered to %s.dead: %s",
        delivery.queue,
        decision.reason,
        extra=dict(delivery.log_extra(), marked_dead_in_odoo=marked),
    )


SETTLE = {
    ACK: _settle_ack,
    FAILED: _settle_failed,
    RETRY: _settle_retry,
    HOLD: _settle_hold,
    DEFER: _settle_defer,
    THROTTLED: _settle_throttled,
    COALESCED: _settle_coalesced,
    DEAD: _settle_dead,
}


class Deliverer:
    """Settles messages of one worker process (see the module docstring)."""

    def __init__(
        self, config, connector, broker, done_cache=None, metrics=None, guards=None, clock=time.monotonic
    ):
        self.config = config
        self.connector = connector
        self.broker = broker
        self.done_cache = done_cache
        self.metrics = metrics
        self.guards = guards
        self.clock = clock
        self.policy = RetryPolicy(
            max_retries=config.max_retries, base=config.retry_base, cap=config.retry_cap
        )

    # ------------------------------------------------------------------ entry point

    def process(self, head):
        """Settle ``head`` and a batch pulled after it; return :class:`Settled`.

        Raises :class:`HeadRequeued` (after settling the rest) when the head must be requeued.
        """
        started = self.clock()
        batch = [head]
        pulled = []
        if self.config.batch_size > 1 and head.queue and head.queue not in self.config.rate_limits:
            pulled = self._pull(head.queue, self.config.batch_size - 1)
            batch.extend(pulled)
        settled = Settled()
        head_requeued = None
        try:
            decided = self._decide_all(batch)
            self._mark_done(decided)
            # A message that closed a debounce window is settled after the window's followers,
            # and the window forgotten after all of them: a crash in between redelivers it,
            # and it reads the closed window again (Odoo runs each pair once).
            decided.sort(key=lambda pair: bool(pair[0].headers.get(CLOSED_HEADER)))
            unsettled = False  # a follower whose retry could not be published: keep its window
            for delivery, decision in decided:
                if unsettled and delivery.headers.get(CLOSED_HEADER):
                    # Its window's followers are not all settled: the fire message goes back
                    # to its queue and reads the closed window again.
                    if delivery is head:
                        head_requeued = head_requeued or PublishFailed("a follower was not settled")
                    elif delivery.message is not None:
                        self._requeue(delivery)
                    continue
                try:
                    self._settle(delivery, decision)
                except PublishFailed as error:
                    unsettled = True
                    _logger.warning(
                        "could not publish the %s of the event (%s); message requeued",
                        decision.action,
                        error,
                        extra=delivery.log_extra(),
                    )
                    if delivery is head:
                        head_requeued = error
                    elif delivery.message is not None:
                        self._requeue(delivery)
                    continue
                except Exception as error:
                    if delivery.message is None or _is_broker_error(error):
                        raise  # the head: Celery's request dead-letters it (consumer.py)
                    # This message cannot even be republished (arguments kombu cannot encode):
                    # it goes to the dead queue as it came.
                    reason = f"{REASON_UNEXPECTED} while settling: {error!r:.300}"
                    self.dead_letter_raw(delivery.message, delivery.queue, reason)
                    decision = Decision(DEAD, reason)
                settled.append((delivery, decision))
            if self.guards is not None and not unsettled:
                for delivery, _decision in decided:
                    if delivery.headers.get(CLOSED_HEADER):
                        self.guards.forget_window(delivery)
        except BaseException:
            done = {id(d) for d, _ in settled}
            for delivery in pulled:
                if id(delivery) not in done and delivery.message is not None:
                    self._requeue(delivery)
            raise
        if self.metrics is not None:
            self.metrics.record_batch(head.queue, settled, self.clock() - started)
        if head_requeued is not None:
            raise HeadRequeued(str(head_requeued)) from head_requeued
        return settled

    def _pull(self, queue, limit):
        try:
            messages = self.broker.pull(queue, limit)
        except Exception as error:  # noqa: BLE001 - batching is an optimisation: go on alone
            _logger.warning("could not pull a batch from %s (%r); delivering one message", queue, error)
            return []
        deliveries = []
        now = time.time()
        for message in messages:
            try:
                delivery = from_kombu_message(message, queue)
            except UndecodableMessage as error:
                self.dead_letter_raw(message, queue, f"{REASON_UNDECODABLE}: {error}")
                continue
            if delivery.eta and _eta_in_future(delivery.eta, now):
                # A retry that is not due yet: give it back; Celery's consumer holds it until due.
                message.reject(requeue=True)
                continue
            deliveries.append(delivery)
        return deliveries

    def dead_letter_raw(self, message, queue, reason):
        """Dead-letter a pulled message that is no task of ours, as it came, then ack it; a
        dead letter RabbitMQ does not confirm leaves the message to the next delivery."""
        _logger.error("dead-lettering an undecodable message from %s: %s", queue, reason)
        try:
            self.broker.dead_letter_raw(message, queue, reason)
        except PublishFailed as error:
            _logger.warning("could not dead-letter it (%s); message requeued", error)
            message.reject(requeue=True)
            return
        message.ack()

    # ------------------------------------------------------------------ deciding

    def _decide_all(self, batch):
        decisions = {}
        todo = []
        for delivery in batch:
            decision = self._check(delivery)
            if decision is None:
                todo.append(delivery)
            else:
                decisions[id(delivery)] = decision
        todo = self._skip_done(todo, decisions)
        if todo and self.guards is not None:
            try:
                todo, extra = self.guards.filter(todo, decisions)
            except Exception as error:  # noqa: BLE001 - decided per delivery below
                for delivery in todo:
                    decisions[id(delivery)] = self._decide_error(error, delivery)
                todo, extra = [], []
            batch = batch + extra
            todo = todo + extra
        if todo:
            for delivery, outcome in zip(todo, self._call_odoo(todo), strict=False):
                decisions[id(delivery)] = self._decide(outcome, delivery)
        return [(delivery, decisions[id(delivery)]) for delivery in batch]

    def _check(self, delivery):
        """None when ``delivery`` may reach Odoo, else the dead letter's decision."""
        try:
            envelope = verify(delivery, self.config.signing_key)
        except SignatureError as error:
            return Decision(DEAD, f"rejected: {error}")
        except Exception as error:  # noqa: BLE001 - any unreadable envelope: NaN, wrong types
            # Deterministic (no I/O): another delivery would fail the same way.
            return Decision(DEAD, f"{REASON_UNDECODABLE}: envelope cannot be verified: {error!r:.300}")
        db = envelope.get("db")
        if self.config.odoo_db and db != self.config.odoo_db:
            delivery.envelope = None  # never tell Odoo (nor this database) about it
            return Decision(
                DEAD, f"{REASON_OTHER_DATABASE} ({db!r}; this worker serves {self.config.odoo_db!r})"
            )
        return None

    def _skip_done(self, todo, decisions):
        if not todo or self.done_cache is None:
            return todo
        try:
            done = self.done_cache.done_among(_done_item(d) for d in todo)
        except Exception as error:  # noqa: BLE001 - decided per delivery
            for delivery in todo:
                decisions[id(delivery)] = self._decide_error(error, delivery)
            return []
        rest = []
        for delivery in todo:
            if _done_item(delivery) in done:
                decisions[id(delivery)] = Decision(ACK, REASON_DONE_IN_REDIS)
            else:
                rest.append(delivery)
        return rest

    def _decide(self, outcome, delivery):
        if isinstance(outcome, BaseException):
            return self._decide_error(outcome, delivery)
        try:
            return decide(outcome, delivery.retries, self.policy, holds=delivery.holds)
        except Exception as error:  # noqa: BLE001 - an answer nobody expected
            return self._decide_error(error, delivery)

    def _decide_error(self, error, delivery):
        if classify_exception(error) is not None:
            return decide(error, delivery.retries, self.policy, holds=delivery.holds)
        _logger.exception("unexpected error delivering the event", extra=delivery.log_extra())
        return decide_unexpected(
            error,
            delivery.retries,
            self.config.poison_max_deliveries,
            self.policy,
            mark_dead=delivery.envelope is not None,
        )

    def _call_odoo(self, todo):
        """One Odoo call for ``todo``: a result dict or the exception, per delivery.

        An error nobody classified fails the batch call: each delivery is then called alone,
        so a poison message fails alone."""
        try:
            if len(todo) == 1:
                return [self.connector.run_async(todo[0].event_id, todo[0].observer)]
            results = self.connector.run_async_batch([(d.event_id, d.observer) for d in todo])
            if not isinstance(results, list) or len(results) != len(todo):
                error = TransientError(
                    f"run_async_batch answered {len(results or [])} results for {len(todo)} items"
                )
                return [error] * len(todo)
            return results
        except Exception as error:  # noqa: BLE001 - classified, or isolated below
            if classify_exception(error) is not None or len(todo) == 1:
                return [error] * len(todo)
            _logger.warning("batch call failed (%r); calling Odoo once per event", error)
            return [self._call_odoo([delivery])[0] for delivery in todo]

    # ------------------------------------------------------------------ settling

    def _mark_done(self, decided):
        """Write the Redis done keys of the batch's deliveries Odoo ran, in one round trip,
        before any of them is acknowledged."""
        if self.done_cache is None:
            return
        items = [_done_item(delivery) for delivery, decision in decided if decision.remember_done]
        try:
            self.done_cache.mark_done(items)
        except Exception:  # noqa: BLE001 - the cache only saves round trips
            _logger.warning("could not write %d done keys", len(items), exc_info=True)

    def _settle(self, delivery, decision):
        SETTLE[decision.action](self, delivery, decision)
        if delivery.message is not None:
            delivery.message.ack()

    def _mark_dead(self, delivery, reason):
        """Tell Odoo; False when it cannot be told now (the beat reconciliation retries)."""
        try:
            self.connector.mark_dead(delivery.event_id, delivery.observer, reason, delivery.attempt)
            return True
        except Exception as error:  # noqa: BLE001 - the dead letter is published either way
            _logger.warning(
                "could not mark the event dead in Odoo (%r); reconciliation will",
                error,
                extra=delivery.log_extra(),
            )
            return False

    def _requeue(self, delivery):
        try:
            delivery.message.reject(requeue=True)
        except Exception:  # noqa: BLE001 - the connection is gone: RabbitMQ requeues anyway
            _logger.debug("requeue failed", exc_info=True)


def _is_broker_error(error):
    return isinstance(error, (OSError, AMQPError, OperationalError))


def _done_item(delivery):
    return (delivery.event_id, delivery.observer, delivery.attempt)


def _debounce_key(delivery):
    return debounce_key(delivery.observer, delivery.envelope.get("model"), delivery.envelope.get("res_ids"))


def _eta_in_future(eta, now):
    from datetime import datetime

    try:
        when = datetime.fromisoformat(str(eta).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return when > now
