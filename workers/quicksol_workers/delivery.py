"""Deliver messages to Odoo: verify, skip what is done, call Odoo (batched), settle each message.

What is it?
    The logic behind the Celery task, free of Celery: :class:`Deliverer` takes the message
    Celery handed over (the *head*), pulls up to ``batch_size - 1`` more ready messages of the
    same queue (highest priority first), and settles every one of them exactly once:

    1. verify shape and signature (bad -> dead letter with the reason; Odoo never called);
    2. skip pairs Redis remembers as done (ack, no Odoo call);
    3. one Odoo call for the rest: ``run_async`` for one, ``run_async_batch`` for many;
    4. write the Redis done keys of what Odoo ran (one pipeline for the batch);
    5. settle per message (:func:`quicksol_workers.outcome.decide`): ack, retry (republished
       with confirms, then acked), or dead letter (published with confirms, ``mark_dead`` in
       Odoo when reachable, then acked).
How to use it?
    ``Deliverer(config, connector, broker, done_cache, metrics).process(head)``; every
    collaborator is injectable (tests pass real ones pointed at real services).
Caveats:
    The head is acknowledged by Celery after the task returns (``acks_late``); pulled messages
    are acknowledged here. If anything goes wrong before a pulled message is settled it is
    rejected with requeue (redelivered), and the head is rejected with requeue by raising
    :class:`celery.exceptions.Reject` in the task.
"""

import logging
import time

from quicksol_bus.errors import SignatureError
from quicksol_bus.retry import RetryPolicy

from .guards import CLOSED_HEADER, COALESCED, DEFER, FIRE_HEADER, THROTTLED, debounce_key
from .messages import from_kombu_message, verify
from .outcome import ACK, DEAD, FAILED, RETRY, Decision, TransientError, classify_exception, decide

__all__ = ["Deliverer", "Settled"]

_logger = logging.getLogger(__name__)


class Settled(list):
    """The (delivery, decision) pairs of one :meth:`Deliverer.process` call."""

    def counts(self):
        result = {}
        for _delivery, decision in self:
            result[decision.action] = result.get(decision.action, 0) + 1
        return result


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
        """Settle ``head`` and a batch pulled after it; return :class:`Settled`."""
        started = self.clock()
        batch = [head]
        pulled = []
        if self.config.batch_size > 1 and head.queue and head.queue not in self.config.rate_limits:
            pulled = self._pull(head.queue, self.config.batch_size - 1)
            batch.extend(pulled)
        settled = Settled()
        try:
            decided = self._decide_all(batch)
            self._mark_done(decided)
            # A message that closed a debounce window is settled after the window's followers,
            # and the window forgotten after all of them: a crash in between redelivers it,
            # and it reads the closed window again (Odoo runs each pair once).
            decided.sort(key=lambda pair: bool(pair[0].headers.get(CLOSED_HEADER)))
            for delivery, decision in decided:
                self._settle(delivery, decision)
                settled.append((delivery, decision))
            if self.guards is not None:
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
            except ValueError as error:
                # Not one of ours at all: dead-letter it raw through RabbitMQ's DLX.
                _logger.error("dead-lettering a foreign message from %s: %s", queue, error)
                message.reject(requeue=False)
                continue
            if delivery.eta and _eta_in_future(delivery.eta, now):
                # A retry that is not due yet: give it back; Celery's consumer holds it until due.
                message.reject(requeue=True)
                continue
            deliveries.append(delivery)
        return deliveries

    # ------------------------------------------------------------------ deciding

    def _decide_all(self, batch):
        decisions = {}
        todo = []
        for delivery in batch:
            try:
                verify(delivery, self.config.signing_key)
            except SignatureError as error:
                decisions[id(delivery)] = Decision(DEAD, f"rejected: {error}", mark_dead=False)
                continue
            todo.append(delivery)
        if todo and self.done_cache is not None:
            try:
                done = self.done_cache.done_among((d.event_id, d.observer) for d in todo)
            except Exception as error:
                if classify_exception(error) is None:
                    raise
                for delivery in todo:
                    decisions[id(delivery)] = decide(error, delivery.retries, self.policy)
                todo = []
            else:
                for delivery in list(todo):
                    if (delivery.event_id, delivery.observer) in done:
                        decisions[id(delivery)] = Decision(ACK, "already done (redis)")
                        todo.remove(delivery)
        if todo and self.guards is not None:
            try:
                todo, extra = self.guards.filter(todo, decisions)
            except Exception as error:
                if classify_exception(error) is None:
                    raise
                for delivery in todo:
                    decisions[id(delivery)] = decide(error, delivery.retries, self.policy)
                todo, extra = [], []
            batch = batch + extra
            todo = todo + extra
        if todo:
            for delivery, outcome in zip(todo, self._call_odoo(todo), strict=False):
                decisions[id(delivery)] = decide(outcome, delivery.retries, self.policy)
        return [(delivery, decisions[id(delivery)]) for delivery in batch]

    def _call_odoo(self, todo):
        """One Odoo call for ``todo``: a result dict or the exception, per delivery."""
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
        except Exception as error:
            if classify_exception(error) is None:
                raise
            return [error] * len(todo)

    # ------------------------------------------------------------------ settling

    def _mark_done(self, decided):
        """Write the Redis done keys of the batch's deliveries Odoo ran, in one round trip,
        before any of them is acknowledged."""
        if self.done_cache is None:
            return
        pairs = [
            (delivery.event_id, delivery.observer)
            for delivery, decision in decided
            if decision.action == ACK and decision.reason != "already done (redis)"
        ]
        try:
            self.done_cache.mark_done(pairs)
        except Exception:  # noqa: BLE001 - the cache only saves round trips
            _logger.warning("could not write %d done keys", len(pairs), exc_info=True)

    def _settle(self, delivery, decision):
        extra = delivery.log_extra()
        if decision.action == ACK:
            _logger.info("event delivered (%s)", decision.reason, extra=extra)
        elif decision.action == FAILED:
            _logger.warning("event failed in Odoo (permanent): %s", decision.reason, extra=extra)
        elif decision.action == RETRY:
            self.broker.republish(delivery, decision.countdown)
            _logger.warning(
                "event will be retried in %.1fs (retry %d of %d): %s",
                decision.countdown,
                delivery.retries + 1,
                self.policy.max_retries,
                decision.reason,
                extra=extra,
            )
        elif decision.action == DEFER:
            self.broker.republish(
                delivery,
                decision.countdown,
                count_retry=False,
                extra_headers={FIRE_HEADER: _debounce_key(delivery)},
            )
            _logger.info("event leads a debounce window: %s", decision.reason, extra=extra)
        elif decision.action == THROTTLED:
            self.broker.republish(delivery, decision.countdown, count_retry=False)
            _logger.info("event held back %.2fs: %s", decision.countdown, decision.reason, extra=extra)
        elif decision.action == COALESCED:
            _logger.info("event coalesced: %s", decision.reason, extra=extra)
        elif decision.action == DEAD:
            marked = "n/a"
            if decision.mark_dead:
                marked = self._mark_dead(delivery, decision.reason)
            self.broker.dead_letter(delivery, decision.reason, marked)
            _logger.error(
                "event dead-lettered to %s.dead: %s",
                delivery.queue,
                decision.reason,
                extra=dict(extra, marked_dead_in_odoo=marked),
            )
        if delivery.message is not None:
            delivery.message.ack()

    def _mark_dead(self, delivery, reason):
        """Tell Odoo; False when it cannot be told now (the beat reconciliation retries)."""
        try:
            self.connector.mark_dead(delivery.event_id, delivery.observer, reason, delivery.attempt)
            return True
        except Exception as error:
            if classify_exception(error) is None:
                raise
            _logger.warning(
                "could not mark the event dead in Odoo (%s); reconciliation will",
                error,
                extra=delivery.log_extra(),
            )
            return False

    def _requeue(self, delivery):
        try:
            delivery.message.reject(requeue=True)
        except Exception:  # noqa: BLE001 - the connection is gone: RabbitMQ requeues anyway
            _logger.debug("requeue failed", exc_info=True)


def _debounce_key(delivery):
    return debounce_key(delivery.observer, delivery.envelope.get("model"), delivery.envelope.get("res_ids"))


def _eta_in_future(eta, now):
    from datetime import datetime

    try:
        when = datetime.fromisoformat(str(eta).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    return when > now
