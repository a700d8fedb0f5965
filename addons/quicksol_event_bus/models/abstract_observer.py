"""Base class of every observer: declare the events, implement ``handle``."""

from odoo import api, models

from ..tools import observer_spec_of


class QuicksolAbstractObserver(models.AbstractModel):
    """Subclass this (``_inherit = 'quicksol.abstract.observer'``) to react to events.

    Class attributes (the contract: docs/observers.md, ADR 0001):

    ``_observe_events``  exact event names this observer reacts to (required);
    ``_async_capable``   False (default): always inline in the emitter's transaction;
                         True: run by a worker, unless sync mode or ``force_sync``;
    ``_async_queue``     one of the declared queues (default ``audit_events``);
    ``_async_priority``  message priority within the queue (default: the queue's);
    ``_async_batch``     True: a worker may hand many events to one
                         :meth:`handle_async_batch` call;
    ``_sequence``        order among observers of one event (lower first, then by name);
    ``_debounce_seconds``, ``_dedup_window``, ``_rate_limit``: worker-side throttling
                         (see docs/adr), exposed to workers by ``quicksol.event.observer_info``;
    ``_secret_keys``     more key words whose values the bus masks in every stored event
                         (on top of ``quicksol_bus.payload.SECRET_KEY_PATTERNS``).

    ``handle``/``handle_async``/``handle_async_batch`` are private to RPC (``@api.private``
    applies to every override), so no user can call an observer with data of their own.
    """

    _name = "quicksol.abstract.observer"
    _description = "Event Bus Observer (base)"

    _observe_events = []
    _async_capable = False
    _async_queue = None
    _async_priority = None
    _async_batch = False
    _sequence = 10
    _debounce_seconds = 0
    _dedup_window = 0
    _rate_limit = None
    _secret_keys = ()

    @api.private
    @api.model
    def handle(self, event_name, data):
        """React to ``event_name`` inline; raise to veto a before-event."""
        raise NotImplementedError(f"observer {self._name} must implement handle()")

    @api.private
    @api.model
    def handle_async(self, event_name, data):
        """React on behalf of a worker; defaults to :meth:`handle`."""
        return self.handle(event_name, data)

    @api.private
    @api.model
    def handle_async_batch(self, events):
        """React to many ``(event_name, data)`` pairs at once (``_async_batch = True``).

        The default runs :meth:`handle_async` for each; override to batch writes.
        """
        for event_name, data in events:
            self.handle_async(event_name, data)

    @api.model
    def _quicksol_observer_spec(self):
        """This observer's declaration, checked (raises on a bad declaration)."""
        return observer_spec_of(type(self), self._name)
