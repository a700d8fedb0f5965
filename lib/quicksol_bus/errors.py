"""Errors raised by the quicksol event bus core.

    QuicksolBusError
     ├── InvalidEventName          an event name breaks the grammar in :mod:`names`
     ├── InvalidPayload            event data the bus refuses to carry
     │    ├── PayloadNotSerializable   a value JSON cannot carry (recordsets, objects)
     │    └── PayloadTooLarge          encoded data over the configured limit
     ├── ObserverDeclarationError  an observer class declares events/queue/sequence badly
     ├── UnknownQueue              a queue name missing from :mod:`topology`
     ├── SignatureError            a message whose HMAC signature is missing or wrong
     └── PublishError              the broker did not take (confirm) a batch of messages
          └── PublisherBusy            another thread held the connection past the wait

Every error is a ``ValueError`` too (except :class:`PublishError`), so Odoo turns it into a
clear message for the user rather than a server error trace.
"""

__all__ = [
    "QuicksolBusError",
    "InvalidEventName",
    "InvalidPayload",
    "PayloadNotSerializable",
    "PayloadTooLarge",
    "ObserverDeclarationError",
    "UnknownQueue",
    "SignatureError",
    "PublishError",
    "PublisherBusy",
]


class QuicksolBusError(Exception):
    """Base class of every error of the event bus core."""


class InvalidEventName(QuicksolBusError, ValueError):
    """The event name does not follow the grammar (see :mod:`quicksol_bus.names`)."""


class InvalidPayload(QuicksolBusError, ValueError):
    """The event data cannot be carried by the bus."""


class PayloadNotSerializable(InvalidPayload):
    """A value in the event data is not JSON-serialisable."""


class PayloadTooLarge(InvalidPayload):
    """The encoded event data is larger than the configured limit."""


class ObserverDeclarationError(QuicksolBusError, ValueError):
    """An observer declares its events, queue or sequence badly."""


class UnknownQueue(ObserverDeclarationError):
    """The queue is not one of the declared queues."""


class SignatureError(QuicksolBusError, ValueError):
    """A message envelope is unsigned or its signature does not match."""


class PublishError(QuicksolBusError):
    """The broker was unreachable, refused, or did not confirm a batch of messages."""


class PublisherBusy(PublishError):
    """The process's broker connection stayed busy with another batch past the wait."""
