"""One delivered message, whichever way it came (Celery's consumer or a batch pull), and its checks.

A message is a Celery protocol-2 task message for :data:`quicksol_bus.topology.TASK_NAME`
whose only argument is a signed envelope (:mod:`quicksol_bus.envelope`). :func:`verify`
refuses anything else with a reason, before anything calls Odoo.

>>> d = Delivery(task_id="e1:x.obs", args=({"v": 1},), kwargs={}, retries=0,
...              queue="audit_events", priority=5)
>>> verify(d, b"key")
Traceback (most recent call last):
...
quicksol_bus.errors.SignatureError: malformed envelope for event None (observer None): missing event_id, ...
"""

from dataclasses import dataclass, field

from quicksol_bus.envelope import verify_envelope
from quicksol_bus.errors import SignatureError
from quicksol_bus.topology import TASK_NAME

__all__ = [
    "HOLDS_HEADER",
    "OWN_HEADERS",
    "Delivery",
    "UndecodableMessage",
    "verify",
    "from_request",
    "from_kombu_message",
]

# How many times the message was held back because Odoo refused the worker's own credential.
HOLDS_HEADER = "quicksol_holds"

# Headers the bus adds to Celery's: who the message is for, tracing, debounce state.
OWN_HEADERS = (
    "quicksol_event_id",
    "quicksol_observer",
    "quicksol_correlation_id",
    "quicksol_debounce_fire",
    "quicksol_debounced",
    HOLDS_HEADER,
)


class UndecodableMessage(ValueError):
    """A message that is no ``quicksol.event.deliver`` protocol-2 task message we can read."""


@dataclass
class Delivery:
    """A message in hand: what it asks, how often it was tried, and how to settle it."""

    task_id: str
    args: tuple
    kwargs: dict
    retries: int
    queue: str
    priority: int = None
    headers: dict = field(default_factory=dict)
    eta: str = None
    correlation_id: str = None
    redelivered: bool = False
    # Settling: None for the message Celery handed to the task (Celery acks it after the task
    # returns, acks_late); the kombu Message for messages the task pulled itself.
    message: object = None
    envelope: dict = None  # set by verify()

    @property
    def event_id(self):
        env = self.envelope or (self.args[0] if self.args and isinstance(self.args[0], dict) else {})
        return env.get("event_id") or self.headers.get("quicksol_event_id")

    @property
    def observer(self):
        env = self.envelope or (self.args[0] if self.args and isinstance(self.args[0], dict) else {})
        return env.get("observer") or self.headers.get("quicksol_observer")

    @property
    def attempt(self):
        """The publish attempt of the verified envelope (an int), or None when unknown.

        Only a verified envelope counts (:func:`verify` sets it): an unverified message's
        attempt could be anything.
        """
        value = (self.envelope or {}).get("attempt")
        if isinstance(value, bool):
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            return None

    @property
    def holds(self):
        try:
            return max(0, int(self.headers.get(HOLDS_HEADER) or 0))
        except (TypeError, ValueError):
            return 0

    @property
    def raw_envelope(self):
        return self.args[0] if len(self.args) == 1 else None

    def log_extra(self):
        return {
            "event_id": self.event_id,
            "observer": self.observer,
            "queue": self.queue,
            "task_id": self.task_id,
            "correlation_id": self.correlation_id or self.event_id,
            "retries": self.retries,
        }


def verify(delivery, key):
    """Check shape and signature; set and return ``delivery.envelope`` or raise SignatureError."""
    if delivery.kwargs or len(delivery.args) != 1:
        raise SignatureError(
            f"malformed message {delivery.task_id}: expected one envelope argument, got "
            f"{len(delivery.args)} args and {len(delivery.kwargs or {})} kwargs"
        )
    envelope = verify_envelope(delivery.args[0], key)
    expected_id = f"{envelope['event_id']}:{envelope['observer']}"
    if delivery.task_id != expected_id:
        raise SignatureError(
            f"message id {delivery.task_id!r} does not match its signed envelope ({expected_id!r})"
        )
    delivery.envelope = envelope
    return envelope


def from_request(request, args, kwargs):
    """The message Celery handed to the task (``task.request``)."""
    info = request.delivery_info or {}
    headers = dict(getattr(request, "headers", None) or {})
    # Celery puts a message's own headers on the request context as attributes.
    for name in OWN_HEADERS:
        value = getattr(request, name, None)
        if value is not None:
            headers.setdefault(name, value)
    return Delivery(
        task_id=request.id,
        args=tuple(args),
        kwargs=dict(kwargs or {}),
        retries=request.retries or 0,
        queue=info.get("routing_key"),
        priority=info.get("priority"),
        headers=headers,
        eta=request.eta,
        correlation_id=headers.get("quicksol_correlation_id") or request.correlation_id,
        redelivered=bool(info.get("redelivered")),
    )


def from_kombu_message(message, queue):
    """A message the task pulled; raises :class:`UndecodableMessage` (with the reason) when it
    is no task of ours: another task name, not protocol 2, a body kombu cannot decode or does
    not accept (wrong content type), arguments of the wrong shape."""
    headers = message.headers
    if not isinstance(headers, dict) or headers.get("task") != TASK_NAME:
        task = headers.get("task") if isinstance(headers, dict) else None
        raise UndecodableMessage(f"not a {TASK_NAME} task message (task={task!r})")
    try:
        body = message.decode()
    except Exception as error:  # noqa: BLE001 - kombu's DecodeError, ContentDisallowed, ...
        raise UndecodableMessage(
            f"body cannot be decoded ({message.content_type!r}): {type(error).__name__}: {error}"[:500]
        ) from None
    try:
        args, kwargs, _embed = body
        args, kwargs = tuple(args or ()), dict(kwargs or {})
        retries = int(headers.get("retries") or 0)
    except (TypeError, ValueError):
        raise UndecodableMessage("not a protocol-2 task body (args, kwargs, embed)") from None
    if not isinstance(headers.get("id"), str):
        raise UndecodableMessage("task message without an id")
    props = message.properties or {}
    return Delivery(
        task_id=headers["id"],
        args=args,
        kwargs=kwargs,
        retries=retries,
        queue=queue,
        priority=props.get("priority"),
        headers=dict(headers),
        eta=headers.get("eta"),
        correlation_id=headers.get("quicksol_correlation_id") or props.get("correlation_id"),
        redelivered=bool((message.delivery_info or {}).get("redelivered")),
        message=message,
    )
