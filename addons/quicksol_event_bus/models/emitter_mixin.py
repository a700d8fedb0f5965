"""Mixin that makes a model emit before/after events from create, write and unlink."""

from odoo import api, models

from quicksol_bus.names import lifecycle_event
from quicksol_bus.payload import redact_secrets
from quicksol_bus.write_values import trim_write_values

from ..tools import json_safe


class QuicksolEventEmitterMixin(models.AbstractModel):
    """Inherit with ``_event_prefix = 'property'`` to emit:

    ``property.before_create``  once per record, data ``{'model', 'vals'}``; inline observers
                                may change ``vals`` in place or veto by raising;
    ``property.created``        once per ``create()`` batch, ``{'model', 'res_ids', 'res_id'}``;
    ``property.before_write``   ``{'model', 'res_ids', 'vals'}`` (vals changeable in place);
    ``property.updated``        ``{'model', 'res_ids', 'res_id', 'vals', 'changed', 'omitted'}``:
                                ``changed`` names every written field; ``vals`` carries the
                                new values with secret-looking fields (password, token, ...)
                                masked, except binary and oversized values, which are named
                                in ``omitted`` (read them from the record): the event of a
                                save is never too large, and never fails the save;
    ``property.before_unlink`` / ``property.deleted``: ``{'model', 'res_ids', 'res_id'}``.

    ``res_id`` is set only when one record is concerned. After-events of more than
    ``_event_ids_per_event`` records (10,000) are split into several events, so that a large
    import stays within the payload limit instead of failing. Set the context key
    ``quicksol_event_bus_disabled`` to write without events (data migrations).
    """

    _name = "quicksol.event.emitter.mixin"
    _description = "Event Bus Emitter Mixin"

    _event_prefix = None
    # Ids per after-event. Each id costs at most 8 bytes of JSON (7 digits and a comma), so
    # 10,000 ids are about 80 KB: under a third of quicksol_bus.payload.DEFAULT_PAYLOAD_LIMIT
    # (256 KiB), which leaves room for the other keys (e.g. ``vals`` of ``updated``) and for
    # a lower EVENT_BUS_PAYLOAD_LIMIT. Raise it only together with the limit.
    _event_ids_per_event = 10000

    def _event_name(self, operation, before):
        if not self._event_prefix:
            raise NotImplementedError(f"{self._name} inherits the emitter mixin without _event_prefix")
        return lifecycle_event(self._event_prefix, operation, before)

    def _event_emitting(self):
        return not self.env.context.get("quicksol_event_bus_disabled")

    def _emit_after(self, bus, operation, ids, **extra):
        """Emit the after-event of ``operation`` for ``ids``, in chunks of ids."""
        if not ids:
            return  # create([]) and the like: nothing happened
        name = self._event_name(operation, before=False)
        size = max(1, self._event_ids_per_event)
        for start in range(0, len(ids), size):
            data = self._event_ids_data(ids[start : start + size])
            data.update(extra)
            bus.emit(name, data)

    def _event_ids_data(self, ids):
        data = {"model": self._name, "res_ids": list(ids)}
        if len(ids) == 1:
            data["res_id"] = ids[0]
        return data

    @api.model_create_multi
    def create(self, vals_list):
        if not self._event_emitting():
            return super().create(vals_list)
        bus = self.env["quicksol.event.bus"]
        before = self._event_name("create", before=True)
        if bus._has_observers(before):
            for vals in vals_list:
                bus.emit(before, {"model": self._name, "vals": vals})
        records = super().create(vals_list)
        self._emit_after(bus, "create", records.ids)
        return records

    def write(self, vals):
        if not self._event_emitting() or not self:
            return super().write(vals)
        bus = self.env["quicksol.event.bus"]
        bus.emit(
            self._event_name("write", before=True), {"model": self._name, "res_ids": self.ids, "vals": vals}
        )
        result = super().write(vals)
        after = self._event_name("write", before=False)
        if bus._has_observers(after):  # json_safe() costs; skip it when nobody listens
            values, omitted = self._event_write_values(vals)
            self._emit_after(bus, "write", self.ids, vals=values, changed=sorted(vals), omitted=omitted)
        return result

    def _event_write_values(self, vals):
        """Hook: the ``(vals, omitted)`` of an after-write event (see the class docstring)."""
        binary = {name for name in vals if name in self._fields and self._fields[name].type == "binary"}
        return trim_write_values(json_safe(redact_secrets(vals)), binary=binary)

    def unlink(self):
        if not self._event_emitting() or not self:
            return super().unlink()
        bus = self.env["quicksol.event.bus"]
        ids = self.ids
        bus.emit(self._event_name("unlink", before=True), self._event_ids_data(ids))
        result = super().unlink()
        self._emit_after(bus, "unlink", ids)
        return result
