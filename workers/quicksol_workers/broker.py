"""The worker process's own broker links: pull a batch, republish a retry, dead-letter.

Two connections per process, opened lazily (so a forked pool child opens its own):

- the *consuming* link pulls batches and settles pulled messages (acks and rejects are no
  publishes: RabbitMQ never blocks them);
- the *publishing* link, in publisher-confirm mode, republishes retries and publishes dead
  letters. A retry or a dead letter is published and *confirmed* before the message it
  replaces is acknowledged, so a crash in between duplicates a message (harmless: Odoo runs
  each event/observer pair once) and never loses one.

Under a memory or disk alarm RabbitMQ stops reading a connection that publishes. Apart, the
consuming link keeps draining the queue; a publish waits at most ``timeout`` seconds for its
confirm (sockets have the same read/write timeout), then fails with :class:`PublishFailed`,
the publishing connection is dropped without a handshake, and further publishes fail at once
for ``timeout`` seconds, so a batch never waits once per message. The caller requeues the
message whose retry or dead letter could not be published (docs/adr/0005-workers-delivery.md).
"""

import logging
import os
import time
from datetime import datetime, timezone

from amqp.exceptions import MessageNacked
from kombu import Connection, Exchange, Producer, Queue
from kombu.exceptions import OperationalError
from kombu.serialization import prepare_accept_content

from quicksol_bus.topology import EXCHANGE, TASK_NAME, get_queue, kombu_queues

__all__ = ["BrokerLink", "DEAD_HEADERS", "PublishFailed"]

_logger = logging.getLogger(__name__)

# From this many ready messages on, a batch is pulled by a consumer (see BrokerLink.pull);
# fewer are pulled one basic.get each (a consumer costs three round trips to set up).
_CONSUME_FROM = 4
# A pull's consumer stops after this long without a new message (seconds).
_PULL_IDLE_TIMEOUT = 0.05

# Headers a dead letter carries on top of the task message's own.
DEAD_HEADERS = ("quicksol_dead_reason", "quicksol_dead_at", "quicksol_dead_marked", "quicksol_dead_queue")


class PublishFailed(Exception):
    """A retry or dead letter was not confirmed by RabbitMQ (down, blocked by an alarm, slow):
    the message it replaces must be requeued, never acknowledged."""


class _Link:
    """One lazily opened connection and channel of this process."""

    def __init__(self, url, connect_timeout, transport_options):
        self.url = url
        self.connect_timeout = connect_timeout
        self.transport_options = transport_options
        self.connection = None
        self.channel = None
        self._pid = None

    def ensure(self):
        if self.connection is not None and self._pid == os.getpid():
            return self.channel
        self.connection = None  # a parent's connection is never used in a child
        connection = Connection(
            self.url,
            connect_timeout=self.connect_timeout,
            transport_options=dict(self.transport_options),
            heartbeat=0,
        )
        connection.ensure_connection(max_retries=max(1, len(connection.alt) - 1))  # once per broker of a list
        self.channel = connection.channel()
        self.connection, self._pid = connection, os.getpid()
        return self.channel

    def close(self, graceful=True):
        connection, self.connection = self.connection, None
        if connection is None or self._pid != os.getpid():
            return
        try:
            if graceful:
                connection.close()
            else:
                connection.collect()  # no Close handshake: a blocked broker would not answer it
        except Exception:  # noqa: BLE001 - closing a broken connection may fail any way
            _logger.debug("closing a broker link failed", exc_info=True)


class BrokerLink:
    """Pulls from and publishes to RabbitMQ for one worker process."""

    def __init__(self, app, broker_url=None, connect_timeout=5.0, timeout=10.0, clock=time.monotonic):
        self.app = app
        self.broker_url = broker_url or app.conf.broker_url
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.clock = clock
        sockets = {"read_timeout": timeout, "write_timeout": timeout}
        self._consuming = _Link(self.broker_url, connect_timeout, sockets)
        self._publishing = _Link(
            self.broker_url,
            connect_timeout,
            dict(
                sockets,
                confirm_publish=True,
                on_blocked=self._on_blocked,
                on_unblocked=self._on_unblocked,
            ),
        )
        self._publish_refused_until = 0.0
        self.blocked_reason = None

    # ------------------------------------------------------------------ connections

    def _on_blocked(self, reason):
        self.blocked_reason = reason or "blocked"
        _logger.error(
            "ALARM: RabbitMQ blocked the worker's publishing connection (%s): retries and dead "
            "letters are requeued until the alarm clears; deliveries go on",
            self.blocked_reason,
        )

    def _on_unblocked(self):
        _logger.warning("RabbitMQ unblocked the worker's publishing connection")
        self.blocked_reason = None

    def close(self):
        self._consuming.close()
        self._publishing.close()

    def _connection_errors(self):
        conn = Connection(self.broker_url)
        return conn.connection_errors + conn.channel_errors

    def _publish(self, **publish_args):
        """Publish on the confirm channel; raise :class:`PublishFailed` unless confirmed."""
        if self.clock() < self._publish_refused_until:
            raise PublishFailed("RabbitMQ did not confirm a publish moments ago (alarm?); not trying now")
        for attempt in (1, 2):  # a stale connection is replaced once
            try:
                channel = self._publishing.ensure()
                Producer(channel, serializer="json").publish(confirm_timeout=self.timeout, **publish_args)
                return
            except (
                TimeoutError,
                OSError,
                MessageNacked,
                OperationalError,
                *self._connection_errors(),
            ) as error:
                timed_out = isinstance(error, TimeoutError) or self.blocked_reason is not None
                self._publishing.close(graceful=not timed_out)
                if timed_out or attempt == 2:
                    if timed_out:
                        self._publish_refused_until = self.clock() + self.timeout
                    raise PublishFailed(
                        f"RabbitMQ did not confirm the publish ({error!r}"
                        f"{', connection blocked: ' + self.blocked_reason if self.blocked_reason else ''})"
                    ) from error
                _logger.info("publishing link was stale (%r); reconnecting", error)

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
        channel = self._consuming.ensure()  # no silent reconnect: pulled messages belong to it
        try:
            _name, ready, _consumers = channel.queue_declare(queue=queue_name, passive=True)
            wanted = min(limit, ready)
            if wanted <= 0:
                return []
            if wanted < _CONSUME_FROM:
                return self._get(channel, queue_name, wanted)
            return self._consume(channel, queue_name, wanted)
        except (OSError, *self._connection_errors()):
            # RabbitMQ requeues what this connection held; the next call reconnects
            self._consuming.close(graceful=False)
            raise

    def _get(self, channel, queue_name, limit):
        bound = Queue(queue_name, no_declare=True)(channel)
        messages = []
        while len(messages) < limit:
            message = bound.get(no_ack=False, accept=["json"])
            if message is None:
                break
            messages.append(message)
        return messages

    def _consume(self, channel, queue_name, limit):
        raw = []
        channel.basic_qos(0, limit, False)  # applies to the consumers started after it
        tag = channel.basic_consume(queue=queue_name, no_ack=False, callback=raw.append)
        try:
            # The ready messages stream in at once; a message counted ready may have gone to
            # another consumer meanwhile, so stop when none came for a moment.
            while len(raw) < limit:
                try:
                    self._consuming.connection.drain_events(timeout=_PULL_IDLE_TIMEOUT)
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
        # Only text: a malformed envelope's values (a NaN, a list) in an AMQP header make
        # RabbitMQ close the channel (541 INTERNAL_ERROR), and its dead letter would loop.
        for name, value in (
            ("quicksol_event_id", delivery.event_id),
            ("quicksol_observer", delivery.observer),
            ("quicksol_correlation_id", delivery.correlation_id),
        ):
            if isinstance(value, str) and value:
                headers[name] = value
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
        self._publish(
            body=task.body,
            exchange=Exchange(EXCHANGE, type="direct"),
            routing_key=spec.name,
            headers=headers,
            priority=spec.clamp_priority(delivery.priority),
            delivery_mode=2,
            mandatory=True,
            content_encoding="utf-8",
            **task.properties,
        )

    def dead_letter(self, delivery, reason, marked, queue=None):
        """Publish the message to ``<queue>.dead`` with why it died; ``marked``: Odoo knows."""
        queue = queue or delivery.queue
        spec = get_queue(queue)
        task = self._task_message(delivery)
        headers = self._headers(delivery, task)
        headers.update(_dead_headers(reason, marked, spec.name))
        self._publish(
            body=task.body,
            exchange=Exchange(spec.dead_letter_exchange, type="direct"),
            routing_key=spec.dead_queue,
            headers=headers,
            delivery_mode=2,
            mandatory=True,
            content_encoding="utf-8",
            declare=[_dead_queue(spec)],
            **task.properties,
        )

    def dead_letter_raw(self, message, queue, reason):
        """Publish a message that is no task of ours (undecodable, unknown task, poison) to
        ``<queue>.dead`` as it came, with why it died; Odoo cannot be told (marked "n/a")."""
        spec = get_queue(queue)
        headers = dict(message.headers or {})
        headers.update(_dead_headers(reason, "n/a", spec.name))
        props = message.properties or {}
        self._publish(
            body=message.body,
            exchange=Exchange(spec.dead_letter_exchange, type="direct"),
            routing_key=spec.dead_queue,
            headers=headers,
            delivery_mode=2,
            mandatory=True,
            content_type=message.content_type or "application/data",
            content_encoding=message.content_encoding or "binary",
            correlation_id=props.get("correlation_id"),
            declare=[_dead_queue(spec)],
        )

    def queue_depth(self, queue_name):
        """Ready messages in ``queue_name`` (passive declare)."""
        channel = self._consuming.ensure()
        _name, count, _consumers = channel.queue_declare(queue=queue_name, passive=True)
        return count


def _dead_queue(spec):
    """The dead queue of ``spec`` as the topology declares it (declared once per channel when
    a dead letter comes before Odoo's publisher declared the topology)."""
    return next(queue for queue in kombu_queues() if queue.name == spec.dead_queue)


def _dead_headers(reason, marked, queue):
    return {
        "quicksol_dead_reason": str(reason)[:2000],
        "quicksol_dead_at": datetime.now(timezone.utc).isoformat(),
        "quicksol_dead_marked": marked,
        "quicksol_dead_queue": queue,
    }
