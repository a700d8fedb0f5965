"""Publish event messages to RabbitMQ as Celery task messages, with batched confirms.

Why not ``send_task`` in a loop: with publisher confirms on, kombu waits for the broker's ack
after every message (a round trip each). Here a batch is published on a channel in confirm
mode and the acks are awaited once at the end, so a transaction's events cost one round trip
more than their bytes. Messages are persistent, ``mandatory`` (an unroutable message is an
error, not a silent drop) and carry the queue's priority. The message itself is built by
Celery (``app.amqp.as_task_v2``), so workers and Flower see ordinary task messages.

One :class:`Publisher` per broker URL and process (:func:`get_publisher`) keeps one
connection; a lock serialises batches from the threads of one Odoo process.

Nothing here waits without a bound. Under a memory or disk alarm RabbitMQ stops reading from
a connection that publishes (and says so with ``connection.blocked``): the confirms never
come and a polite ``connection.close`` would wait for a ``close-ok`` that never comes either.
So every socket read and write has a timeout, a blocked notification fails the batch at once,
and a failed connection is dropped without the close handshake (``collect``): the caller (a
user's save) gets :class:`PublishError` within the confirm timeout and opens its breaker.
"""

import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from .errors import PublisherBusy, PublishError
from .topology import TASK_NAME, kombu_exchange, kombu_queues

__all__ = ["OutgoingMessage", "Publisher", "get_publisher", "drop_publishers"]

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingMessage:
    """One message: a signed envelope for one event and one observer."""

    task_id: str
    envelope: dict
    queue: str
    priority: int


def _celery_app():
    # A bare app only to build protocol-2 task messages; never a worker, never "current".
    from celery import Celery

    return Celery("quicksol-producer", set_as_current=False)


class Publisher:
    """A connection to one broker that publishes batches with publisher confirms."""

    def __init__(self, broker_url, connect_timeout=1.0, confirm_timeout=5.0):
        self.broker_url = broker_url
        self.connect_timeout = connect_timeout
        self.confirm_timeout = confirm_timeout
        self._lock = threading.Lock()
        self._app = _celery_app()
        self._connection = None
        self._channel = None
        self._producer = None
        self._sequence = 0  # delivery tag of the last message published on the channel
        self._unconfirmed = set()
        self._refused = []
        self._blocked = None  # the broker's reason while it blocks this connection
        self._template = None  # (headers, properties, embed) of a task message, see _task_message

    # ------------------------------------------------------------------ connection

    def _connect(self):
        from kombu import Connection, Producer

        connection = Connection(
            self.broker_url,
            connect_timeout=self.connect_timeout,
            transport_options={
                # We handle confirms ourselves, batched (see the module docstring).
                "confirm_publish": False,
                # No socket operation may outlast the confirm wait (see the module docstring).
                "read_timeout": self.confirm_timeout,
                "write_timeout": self.confirm_timeout,
                "on_blocked": self._on_blocked,
                "on_unblocked": self._on_unblocked,
            },
            # No heartbeats (they need a thread of their own): a connection the broker
            # dropped fails at the next publish and is replaced (see _publish_locked); a
            # broker that takes but never confirms fails on the confirm timeout.
            heartbeat=0,
        )
        # One attempt per broker of a failover list (``amqp://a;amqp://b``), no kombu retry
        # loop: a save waits at most the connect timeout per broker that is down (kombu waits
        # no interval within one round of the list), and the relay retries later.
        connection.ensure_connection(
            max_retries=max(0, len(connection.alt) - 1), reraise_as_library_errors=False
        )
        channel = connection.channel()
        for queue in kombu_queues():
            queue(channel).declare()
        channel.confirm_select()
        channel.events["basic_ack"].add(self._on_ack)
        channel.events["basic_nack"].add(self._on_nack)
        channel.events["basic_return"].add(self._on_return)
        self._connection, self._channel = connection, channel
        self._producer = Producer(channel, exchange=kombu_exchange(), serializer="json")
        # Declared now, not by the first publish: a publish's frames are buffered
        # (_coalesced_writes), and a declare waiting for its answer there would never get it.
        self._producer.maybe_declare(self._producer.exchange)
        self._sequence = 0
        self._unconfirmed = set()
        self._blocked = None

    def _on_blocked(self, reason=None):
        self._blocked = reason or "resource alarm"

    def _on_unblocked(self):
        self._blocked = None

    def _abort(self):
        """Drop the connection without the close handshake a blocked broker never answers."""
        connection, self._connection = self._connection, None
        self._channel = self._producer = None
        if connection is not None:
            try:
                connection.collect()
            except Exception:  # noqa: BLE001 - the socket may be broken already
                _logger.debug("dropping broker connection failed", exc_info=True)

    def close(self):
        connection, self._connection = self._connection, None
        self._channel = self._producer = None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # noqa: BLE001 - closing a broken connection may fail any way
                _logger.debug("closing broker connection failed", exc_info=True)

    # ------------------------------------------------------------------ confirms

    def _on_ack(self, delivery_tag, multiple):
        if multiple:
            self._unconfirmed = {tag for tag in self._unconfirmed if tag > delivery_tag}
        else:
            self._unconfirmed.discard(delivery_tag)

    def _on_nack(self, delivery_tag, multiple):
        self._refused.append(f"broker nacked message {delivery_tag}")
        self._on_ack(delivery_tag, multiple)

    def _on_return(self, exc, exchange, routing_key, message):
        self._refused.append(f"unroutable message to {exchange}/{routing_key}: {exc}")

    # ------------------------------------------------------------------ publishing

    def _task_message(self, message):
        """``(body, headers, properties)`` of ``message`` as Celery's ``as_task_v2`` builds it.

        ``as_task_v2`` costs about 80 µs a message, a third of a 1,000-event commit's budget;
        its output differs between two messages of this publisher only by the task id and
        argsrepr. So it is called once per publisher, for a template, and each message copies
        the template with its own id (lib/tests/test_publisher.py checks both agree).
        """
        if self._template is None:
            task = self._app.amqp.as_task_v2("template", TASK_NAME, args=[], kwargs={}, argsrepr="")
            self._template = (dict(task.headers), dict(task.properties), task.body[2])
        headers, properties, embed = self._template
        envelope = message.envelope
        headers = {
            **headers,
            "id": message.task_id,
            "root_id": message.task_id,
            "argsrepr": f"[{envelope.get('event_name')} {message.task_id}]",
            "quicksol_event_id": envelope.get("event_id"),
            "quicksol_observer": envelope.get("observer"),
        }
        properties = {**properties, "correlation_id": message.task_id}
        return ([envelope], {}, embed), headers, properties

    def _publish_all(self, messages):
        self._refused = []
        with _coalesced_writes(self._connection.connection.transport):
            self._publish_each(messages)
        self._await_confirms(len(messages))

    def _publish_each(self, messages):
        for message in messages:
            body, headers, properties = self._task_message(message)
            self._producer.publish(
                body,
                routing_key=message.queue,
                headers=headers,
                priority=message.priority,
                delivery_mode=2,  # persistent
                mandatory=True,
                content_encoding="utf-8",
                **properties,
            )
            self._sequence += 1
            self._unconfirmed.add(self._sequence)

    def _await_confirms(self, count):
        deadline = time.monotonic() + self.confirm_timeout
        while self._unconfirmed:
            if self._blocked:
                raise PublishError(
                    f"broker blocked the connection ({self._blocked}): {len(self._unconfirmed)} of "
                    f"{count} messages unconfirmed"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise PublishError(
                    f"broker did not confirm {len(self._unconfirmed)} of {count} "
                    f"messages within {self.confirm_timeout}s"
                )
            try:
                self._connection.drain_events(timeout=remaining)
            except TimeoutError:
                continue
        if self._refused:
            raise PublishError("; ".join(self._refused[:5]))

    def publish_batch(self, messages, lock_timeout=None):
        """Publish ``messages`` and return once the broker confirmed every one.

        Raises :class:`PublishError` when the broker is unreachable or refuses a message,
        :class:`PublisherBusy` when another thread kept the connection longer than
        ``lock_timeout`` seconds (None: wait). A stale connection (e.g. after a broker
        restart) is replaced once per call; a batch that failed half-way may be published
        again in full by the caller, which is safe because Odoo runs each (event, observer)
        pair at most once.
        """
        messages = list(messages)
        if not messages:
            return
        if not self._lock.acquire(timeout=-1 if lock_timeout is None else lock_timeout):
            raise PublisherBusy(f"broker connection busy for over {lock_timeout}s")
        try:
            self._publish_locked(messages)
        finally:
            self._lock.release()

    def _publish_locked(self, messages):
        for attempt in (1, 2):
            fresh = self._connection is None
            try:
                if fresh:
                    self._connect()
                self._publish_all(messages)
                return
            except PublishError:
                self._abort()
                raise
            except Exception as error:
                self._abort()
                if fresh or attempt == 2:
                    raise PublishError(f"cannot publish to {_redact(self.broker_url)}: {error!r}") from error
                _logger.info("broker connection was stale (%r); reconnecting", error)


# Bytes of frames written to the socket at once (see _coalesced_writes).
WRITE_CHUNK = 256 * 1024


@contextmanager
def _coalesced_writes(transport, limit=WRITE_CHUNK):
    """Send the frames of many messages in a few ``sendall`` calls instead of one each.

    py-amqp writes every message with its own system call, about a third of the cost of a
    1,000-message batch. Inside this block the transport's socket writer appends to a buffer
    that is sent whenever it reaches ``limit`` bytes, and once more at the end; both sends
    go through the transport's ``write``, so its socket timeout and its broken-connection
    handling apply as before. A transport without that writer is left alone.
    """
    send = getattr(transport, "_write", None)
    if send is None:
        yield
        return
    chunks, size = [], 0

    def buffered(data):
        nonlocal size
        chunks.append(bytes(data))  # a copy: py-amqp reuses the buffer this views
        size += len(data)
        if size >= limit:
            data, size = b"".join(chunks), 0
            chunks.clear()
            send(data)

    transport._write = buffered
    try:
        yield
    finally:
        transport._write = send
    if chunks:
        transport.write(b"".join(chunks))


def _redact(url):
    """``amqp://user:secret@host//`` -> ``amqp://user:***@host//`` for logs and errors."""
    if "@" not in url or "://" not in url:
        return url
    scheme, rest = url.split("://", 1)
    credentials, host = rest.rsplit("@", 1)
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}"


_publishers = {}
_publishers_lock = threading.Lock()


def get_publisher(broker_url, connect_timeout=1.0, confirm_timeout=5.0):
    """The process's publisher for ``broker_url`` (created on first use)."""
    key = (broker_url, connect_timeout, confirm_timeout)
    with _publishers_lock:
        publisher = _publishers.get(key)
        if publisher is None:
            publisher = _publishers[key] = Publisher(broker_url, connect_timeout, confirm_timeout)
        return publisher


def drop_publishers():
    """Close and forget every publisher (tests, configuration changes, forked workers)."""
    with _publishers_lock:
        for publisher in _publishers.values():
            publisher.close()
        _publishers.clear()
