"""The worker process's own broker link: pull a batch, republish a retry, dead-letter.

One connection per process, opened lazily (so a forked pool child opens its own), on a
channel in publisher-confirm mode: a retry or a dead letter is published and *confirmed*
before the message it replaces is acknowledged, so a crash in between duplicates a message
(harmless: Odoo runs each event/observer pair once) and never loses one.
"""

import logging
import os
from datetime import datetime, timezone

from kombu import Connection, Exchange, Producer, Queue
from kombu.serialization import prepare_accept_content

from quicksol_bus.topology import EXCHANGE, TASK_NAME, get_queue

__all__ = ["BrokerLink", "DEAD_HEADERS"]

_logger = logging.getLogger(__name__)

# From this many ready messages on, a batch is pulled by a consumer (see BrokerLink.pull);
# fewer are pulled one basic.get each (a consumer costs three round trips to set up).
_CONSUME_FROM = 4
# A pull's consumer stops after this long without a new message (seconds).
_PULL_IDLE_TIMEOUT = 0.05

# Headers a dead letter carries on top of the task message's own.
DEAD_HEADERS = ("quicksol_dead_reason", "quicksol_dead_at", "quicksol_dead_marked", "quicksol_dead_queue")


class BrokerLink:
    """Pulls from and publishes to RabbitMQ for one worker process."""

    def __init__(self, app, broker_url=None, connect_timeout=5.0):
        self.app = app
        self.broker_url = broker_url or app.conf.broker_url
        self.connect_timeout = connect_timeout
        self._pid = None
        self._connection = None
        self._channel = None
        self._producer = None

    # ------------------------------------------------------------------ connection

    def _ensure(self):
        if self._connection is not None and self._pid == os.getpid():
            return
        self._connection = None  # a parent's connection is never used in a child
        connection = Connection(
            self.broker_url,
            connect_timeout=self.connect_timeout,
            transport_options={"confirm_publish": True},
            heartbeat=0,
        )
        connection.ensure_connection(max_retries=1)
        self._channel = connection.channel()
        self._producer = Producer(self._channel, serializer="json")
        self._connection, self._pid = connection, os.getpid()

    def close(self):
        connection, self._connection = self._connection, None
        if connection is not None and self._pid == os.getpid():
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail any way
                _logger.debug("closing the worker's broker link failed", exc_info=True)

    def _with_retry(self, action):
        """Run ``action()`` on a live connection; a stale one is replaced once."""
        for attempt in (1, 2):
            try:
                self._ensure()
                return action()
            except self._connection_errors() as error:
                self.close()
                if attempt == 2:
                    raise
                _logger.info("broker link was stale (%r); reconnecting", error)
        return None

    def _connection_errors(self):
        conn = Connection(self.broker_url)
        return conn.connection_errors + conn.channel_errors

    # ------------------------------------------------------------------ pulling

    def pull(self, queue_name, limit):
        """Up to ``limit`` ready messages of ``queue_name`` (highest priority first), unacked.

        One passive declare tells how many are ready; a short-lived consumer with
        ``basic.qos(prefetch=n)`` then streams them in (one round trip for the lot instead of
        one ``basic.get`` each) and is cancelled. RabbitMQ sends a consumer at most ``n``
        unacknowledged messages, and every delivery made before the cancel is confirmed
        arrives before the confirmation (AMQP orders a channel's frames): the messages
        returned are exactly those given to this channel, unacked like ``basic.get``'s.
        """
        if limit <= 0:
            return []
        self._ensure()  # no silent reconnect: pulled messages belong to this connection
        try:
            _name, ready, _consumers = self._channel.queue_declare(queue=queue_name, passive=True)
            wanted = min(limit, ready)
            if wanted <= 0:
                return []
            if wanted < _CONSUME_FROM:
                return self._get(queue_name, wanted)
            return self._consume(queue_name, wanted)
        except self._connection_errors():
            self.close()  # RabbitMQ requeues what this connection held; the next call reconnects
            raise

    def _get(self, queue_name, limit):
        bound = Queue(queue_name, no_declare=True)(self._channel)
        messages = []
        while len(messages) < limit:
            message = bound.get(no_ack=False, accept=["json"])
            if message is None:
                break
            messages.append(message)
        return messages

    def _consume(self, queue_name, limit):
        channel = self._channel
        raw = []
        channel.basic_qos(0, limit, False)  # applies to the consumers started after it
        tag = channel.basic_consume(queue=queue_name, no_ack=False, callback=raw.append)
        try:
            # The ready messages stream in at once; a message counted ready may have gone to
            # another consumer meanwhile, so stop when none came for a moment.
            while len(raw) < limit:
                try:
                    self._connection.drain_events(timeout=_PULL_IDLE_TIMEOUT)
                except TimeoutError:
                    break
            channel.basic_cancel(tag)  # deliveries sent before the cancel are appended too
        except BaseException:
            for message in raw:  # nobody will settle them: give them back now
                try:
                    channel.basic_reject(message.delivery_tag, requeue=True)
                except Exception:  # noqa: BLE001 - a dead connection requeues them anyway
                    break
            raise
        accept = prepare_accept_content(["json"])
        messages = []
        for message in raw:
            message = channel.message_to_python(message)
            message.accept = accept
            messages.append(message)
        return messages

    # ------------------------------------------------------------------ publishing

    def _task_message(self, delivery, countdown=None, retries=None):
        return self.app.amqp.as_task_v2(
            delivery.task_id,
            TASK_NAME,
            args=list(delivery.args),
            kwargs=delivery.kwargs,
            countdown=countdown,
            retries=delivery.retries if retries is None else retries,
            argsrepr=f"[{delivery.event_id} {delivery.observer}]",
        )

    def _headers(self, delivery, task):
        headers = dict(task.headers)
        headers["quicksol_event_id"] = delivery.event_id
        headers["quicksol_observer"] = delivery.observer
        if delivery.correlation_id:
            headers["quicksol_correlation_id"] = delivery.correlation_id
        return headers

    def republish(self, delivery, countdown, count_retry=True, extra_headers=None):
        """Publish the message again to its queue for one more try after ``countdown`` s."""
        spec = get_queue(delivery.queue)
        retries = delivery.retries + 1 if count_retry else delivery.retries
        task = self._task_message(delivery, countdown=countdown or None, retries=retries)
        headers = self._headers(delivery, task)
        if delivery.headers.get("quicksol_debounced") or delivery.headers.get("quicksol_debounce_fire"):
            headers["quicksol_debounced"] = True  # a retry is never debounced again
        headers.update(extra_headers or {})
        priority = spec.clamp_priority(delivery.priority)

        def action():
            self._producer.publish(
                task.body,
                exchange=Exchange(EXCHANGE, type="direct"),
                routing_key=spec.name,
                headers=headers,
                priority=priority,
                delivery_mode=2,
                mandatory=True,
                content_encoding="utf-8",
                **task.properties,
            )

        self._with_retry(action)

    def dead_letter(self, delivery, reason, marked, queue=None):
        """Publish the message to ``<queue>.dead`` with why it died; ``marked``: Odoo knows."""
        queue = queue or delivery.queue
        spec = get_queue(queue)
        task = self._task_message(delivery)
        headers = self._headers(delivery, task)
        headers.update(
            quicksol_dead_reason=str(reason)[:2000],
            quicksol_dead_at=datetime.now(timezone.utc).isoformat(),
            quicksol_dead_marked=marked,
            quicksol_dead_queue=spec.name,
        )

        def action():
            self._producer.publish(
                task.body,
                exchange=Exchange(spec.dead_letter_exchange, type="direct"),
                routing_key=spec.dead_queue,
                headers=headers,
                delivery_mode=2,
                mandatory=True,
                content_encoding="utf-8",
                **task.properties,
            )

        self._with_retry(action)

    def queue_depth(self, queue_name):
        """Ready messages in ``queue_name`` (passive declare)."""

        def action():
            _name, count, _consumers = self._channel.queue_declare(queue=queue_name, passive=True)
            return count

        return self._with_retry(action)
