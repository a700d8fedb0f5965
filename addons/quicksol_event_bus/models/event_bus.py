"""The bus: ``emit`` routes an event to its observers, inline or through the outbox."""

import logging
import os
import threading

from odoo import api, models, tools
from odoo.exceptions import AccessError

from quicksol_bus.breaker import CircuitBreaker
from quicksol_bus.names import is_before_event, validate_event_name
from quicksol_bus.payload import encode_payload, redact_secrets
from quicksol_bus.routing import ObserverIndex
from quicksol_bus.settings import SETTINGS
from quicksol_bus.states import DONE, PENDING

from ..tools import bus_settings, observer_spec_of

_logger = logging.getLogger(__name__)

OBSERVER_BASE = "quicksol.abstract.observer"
# Context keys: run every observer inline / emit nothing at all.
SYNC_CONTEXT_KEY = "quicksol_event_bus_sync"
DISABLED_CONTEXT_KEY = "quicksol_event_bus_disabled"
# cr.postcommit.data key holding the delivery ids this transaction must publish.
OUTBOX_KEY = "quicksol_event_bus.deliveries"

# One breaker per broker URL and process: while it is open no save pays for a broker that is
# known to be down (the relay probes it again after the reset timeout).
_breakers = {}
_breakers_lock = threading.Lock()


def broker_breaker(broker_url, reset_timeout):
    with _breakers_lock:
        breaker = _breakers.get(broker_url)
        if breaker is None or breaker.reset_timeout != reset_timeout:
            breaker = _breakers[broker_url] = CircuitBreaker(reset_timeout=reset_timeout)
        return breaker


_SETTING_ENVS = tuple(setting.env for setting in SETTINGS.values())
_SETTING_ENVS_BYTES = tuple(os.fsencode(name) for name in _SETTING_ENVS)


def _environment_key():
    """The values of the settings' environment variables, as a cache key.

    Every emit asks: a dozen ``os.environ.get`` calls (each encodes its key and decodes its
    value in Python) were a third of an emit's own cost. ``os.environ._data``, the raw mapping
    behind ``os.environ`` (CPython, POSIX), gives the same answer from C; other platforms
    take the public way.
    """
    raw = getattr(os.environ, "_data", None)
    if raw is not None and os.name == "posix":
        return tuple(map(raw.get, _SETTING_ENVS_BYTES))
    return tuple(map(os.environ.get, _SETTING_ENVS))


class QuicksolEventBus(models.AbstractModel):
    _name = "quicksol.event.bus"
    _description = "Event Bus"

    # ------------------------------------------------------------------ observer registry

    def _register_hook(self):
        super()._register_hook()
        # Built at every registry load (module install/uninstall builds a new registry), so a
        # badly declared observer fails loudly here, at load, not at its first event.
        self.pool._quicksol_observer_index = self._build_observer_index()
        self.pool._quicksol_secret_keys = None

    @api.model
    def _build_observer_index(self):
        names = sorted(self.pool.descendants([OBSERVER_BASE], "_inherit") - {OBSERVER_BASE})
        return ObserverIndex([observer_spec_of(self.pool[name], name) for name in names])

    @api.model
    def _observer_index(self):
        index = getattr(self.pool, "_quicksol_observer_index", None)
        if index is None:
            index = self.pool._quicksol_observer_index = self._build_observer_index()
        return index

    @api.model
    def _declared_secret_keys(self):
        """Key words the installed observers declare secret (``_secret_keys``), cached per
        registry: masked in every stored event on top of the built-in patterns."""
        keys = getattr(self.pool, "_quicksol_secret_keys", None)
        if keys is None:
            names = self.pool.descendants([OBSERVER_BASE], "_inherit")
            keys = tuple(sorted({key for name in names for key in (self.pool[name]._secret_keys or ())}))
            self.pool._quicksol_secret_keys = keys
        return keys

    @api.model
    def _has_observers(self, event_name):
        """Tell whether emitting ``event_name`` would reach anyone (observers or a trap)."""
        return bool(self._active_traps()) or self._observer_index().has_observers(event_name)

    # ------------------------------------------------------------------ settings and modes

    @api.model
    def _settings(self):
        """The bus settings (a shared dict: never change it). Resolved once per registry and
        environment: every save reads them, and resolving costs a dozen parameter reads.
        Setting a system parameter clears Odoo's caches, this one with them."""
        # The ormcache's own lookup, without the signature binding its decorator adds to each
        # call (the other half of an emit's settings cost); same cache, same invalidation.
        return QuicksolEventBus._settings_for.__cache__.lookup(None, self, _environment_key())

    @tools.ormcache("environ")
    def _settings_for(self, environ):
        return bus_settings(self.env)

    @api.model
    def _sync_mode(self, settings):
        return bool(
            self.env.context.get(SYNC_CONTEXT_KEY) or settings["sync_mode"] or not settings["broker_url"]
        )

    @api.model
    def _breaker(self, settings):
        return broker_breaker(settings["broker_url"], settings["breaker_reset"])

    # ------------------------------------------------------------------ test traps

    def _active_traps(self):
        return getattr(self.pool, "_quicksol_event_traps", ())

    # ------------------------------------------------------------------ emit

    @api.private  # Python API only: over RPC anyone could forge events for others' observers
    @api.model
    def emit(self, event_name, data, force_sync=False):
        """Publish ``event_name`` with ``data`` (a JSON-serialisable dict of ids and values).

        Before-events run their observers inline (an exception vetoes the operation); other
        events run async-capable observers through the outbox unless ``force_sync`` or sync
        mode. Returns the event UUID when at least one observer was routed async, else None.
        """
        validate_event_name(event_name)
        if self.env.context.get(DISABLED_CONTEXT_KEY):
            return None
        before = is_before_event(event_name)
        settings = self._settings()
        encoded = None
        if not before:
            # Before-events carry the live vals dict and never leave the transaction; every
            # other event may be stored and sent, so it must be JSON within the size limit.
            # What is stored is what the broker carries: no secret-looking value in either
            # (inline observers get the data as it is).
            stored = redact_secrets(data, extra=self._declared_secret_keys())
            encoded = encode_payload(stored, limit=settings["payload_limit"])
        index = self._observer_index()
        traps = self._active_traps()
        if not index.has_observers(event_name) and not traps:
            return None
        sync = self._sync_mode(settings)
        plan = index.plan(event_name, force_sync=force_sync, sync_mode=sync)
        # Admin hook (models/observer_admin.py): observers an administrator disabled are
        # dropped from the plan; ``skipped`` are recorded on the event as such.
        plan, skipped = self._without_disabled(event_name, plan)
        async_observers = plan.async_
        inline_fallback = ()
        if async_observers and settings["broker_down_policy"] == "inline" and not traps:
            breaker = self._breaker(settings)
            if breaker.state != "closed" and breaker.seconds_until_probe() > 0:
                # Documented fallback: the broker is known to be down, run them here instead.
                inline_fallback, async_observers = async_observers, ()
        for spec in plan.inline + inline_fallback:
            self.env[spec.model].handle(event_name, data)
        event_uuid = None
        event, pending = self.env["quicksol.event"], self.env["quicksol.event.delivery"]
        # Inline runs are recorded only when an administrator asked for it (the setting is off
        # by default, so the hot path of inline-only events writes nothing).
        logged_inline = plan.inline if settings["log_inline_events"] else ()
        # Before-events are never stored: their data is the live vals of a write to come.
        if encoded is not None and (async_observers or inline_fallback or skipped or logged_inline):
            deliveries = (
                [(spec, PENDING, "async") for spec in async_observers]
                + [(spec, DONE, "inline_fallback") for spec in inline_fallback]
                + [(spec, DONE, "disabled") for spec in skipped]  # the event says they were skipped
                + [(spec, DONE, "inline") for spec in logged_inline]
            )
            outbox = self.env["quicksol.event"]
            row = outbox._outbox_row(event_name, data, encoded, deliveries)
            event_uuid = row.uuid
            if traps:
                # Test traps see the rows at once (and nothing is published).
                inserted = outbox._insert_outbox_rows([row])
                event = outbox.sudo().browse(inserted[0][0])
                pending = (
                    self.env["quicksol.event.delivery"]
                    .sudo()
                    .browse([delivery_id for _event, delivery_id, state in inserted if state == PENDING])
                )
            else:
                outbox._buffer_outbox(row)  # written at precommit, published after commit
        for trap in traps:
            trap.record(event_name, data, plan.inline, async_observers, event, pending)
        return event_uuid if async_observers else None

    @api.model
    def _publish_after_commit(self, deliveries):
        """Publish ``deliveries`` once the current transaction has committed."""
        cr = self.env.cr
        pending = cr.postcommit.data.get(OUTBOX_KEY)
        if pending is None:
            pending = cr.postcommit.data[OUTBOX_KEY] = []
            dbname = cr.dbname

            @cr.postcommit.add
            def publish():
                ids = cr.postcommit.data.pop(OUTBOX_KEY, [])
                self.env["quicksol.event.delivery"]._publish_committed(dbname, ids)

        pending.extend(deliveries.ids)

    # ------------------------------------------------------------------ administration

    @api.model
    def generate_worker_api_key(self):
        """Return a new RPC API key for the workers' technical user (administrators only)."""
        if not self.env.user.has_group("base.group_system"):
            raise AccessError(self.env._("Only administrators can create worker API keys."))
        worker = self.env.ref("quicksol_event_bus.user_event_bus_worker")
        # sudo - res.users.apikeys: an administrator creates a key owned by the worker user.
        return (
            self.env["res.users.apikeys"]
            .with_user(worker)
            .sudo()
            ._generate("rpc", "quicksol event bus worker", None)
        )
