"""Poison messages Celery meets before our task runs go to ``<queue>.dead`` with a reason.

Celery's own consumer acks a body it cannot decode (the message is gone without a trace) and
rejects an unknown task name, a disallowed content type or a malformed task message (RabbitMQ's
dead-letter exchange then keeps it, but with no reason). A task message whose body only fails
in the pool (not protocol 2), or whose task raised an error the delivery logic did not settle,
is rejected the same way. With :class:`PoisonConsumer` (setting ``worker_consumer``) and
:class:`DeliveryRequest` (the deliver task's ``Request``), each of them is published as it came
to the dead queue of the queue it was delivered from, with ``quicksol_dead_reason``, then
acknowledged: it is delivered once, never loops, and an operator can read why it died
(docs/adr/0005-workers-delivery.md). When even that publish fails (RabbitMQ blocked, down),
Celery's own handling applies (RabbitMQ dead-letters the rejected message).
"""

import logging

from billiard.exceptions import WorkerLostError
from celery.exceptions import Ignore, Reject, Retry, Terminated, TimeLimitExceeded
from celery.worker.consumer import Consumer
from celery.worker.request import Request

from quicksol_bus.topology import QUEUES

from .outcome import REASON_UNDECODABLE, REASON_UNEXPECTED

__all__ = ["DeliveryRequest", "PoisonConsumer", "dead_letter_message"]

_logger = logging.getLogger(__name__)

# Failures Celery handles as they must be: requeue, retry, revoke, worker lost, time limit.
_CELERY_OWN = (Reject, Ignore, Retry, Terminated, WorkerLostError, TimeLimitExceeded, MemoryError)


def _queue_of(message, consumer_queues=()):
    """The event queue ``message`` came from: its routing key, else the only event queue
    this worker consumes, else None."""
    routing_key = (message.delivery_info or {}).get("routing_key")
    if routing_key in QUEUES:
        return routing_key
    mine = [name for name in consumer_queues if name in QUEUES]
    return mine[0] if len(mine) == 1 else None


def dead_letter_message(app, message, reason, consumer_queues=()):
    """Publish ``message`` to its queue's dead queue with ``reason``; True when confirmed
    (the caller then acks it), False when it could not be (the caller falls back)."""
    from .runtime import get_broker

    queue = _queue_of(message, consumer_queues)
    _logger.error("dead-lettering a poison message from %s: %s", queue, reason)
    if queue is None:
        return False
    try:
        get_broker(app).dead_letter_raw(message, queue, reason)
    except Exception:  # noqa: BLE001 - PublishFailed or any other: fall back to Celery's own handling
        _logger.warning("could not dead-letter the poison message", exc_info=True)
        return False
    return True


class PoisonConsumer(Consumer):
    """Celery's consumer, with its four "cannot run this message" exits dead-lettering."""

    def _consumed_queues(self):
        return list(self.app.amqp.queues.consume_from or {})

    def _dead_letter(self, message, reason):
        if dead_letter_message(self.app, message, reason, self._consumed_queues()):
            message.ack()
            return True
        return False

    def on_decode_error(self, message, exc):
        if not self._dead_letter(message, f"{REASON_UNDECODABLE}: body cannot be decoded: {exc!r:.300}"):
            # Celery acks it here (it would be lost): reject it to RabbitMQ's DLX instead.
            message.reject_log_error(_logger, self.connection_errors)

    def on_unknown_message(self, body, message):
        if not self._dead_letter(message, f"{REASON_UNDECODABLE}: not a Celery task message"):
            super().on_unknown_message(body, message)

    def on_unknown_task(self, body, message, exc):
        task = (message.headers or {}).get("task")
        if not self._dead_letter(message, f"{REASON_UNDECODABLE}: unknown task {task!r}"):
            super().on_unknown_task(body, message, exc)

    def on_invalid_task(self, body, message, exc):
        if not self._dead_letter(message, f"{REASON_UNDECODABLE}: invalid task message: {exc!r:.300}"):
            super().on_invalid_task(body, message, exc)


class DeliveryRequest(Request):
    """The deliver task's request: an error the task did not settle dead-letters the message."""

    def on_failure(self, exc_info, send_failed_event=True, return_ok=False):
        exc = getattr(exc_info.exception, "exc", exc_info.exception)  # ExceptionWithTraceback
        if not isinstance(exc, _CELERY_OWN) and not self.acknowledged:
            reason = f"{REASON_UNEXPECTED}: {type(exc).__name__}: {exc}"[:1000]
            if dead_letter_message(self._app, self._message, reason):
                self.acknowledge()  # Celery's reject below is then a no-op
        return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
