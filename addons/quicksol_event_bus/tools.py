"""Small adapters between Odoo objects and the Odoo-free core (``quicksol_bus``)."""

import json
import os

from quicksol_bus.routing import ObserverSpec
from quicksol_bus.settings import SETTINGS, resolve

__all__ = ["observer_spec_of", "bus_settings", "json_safe"]


def observer_spec_of(model_class, model_name):
    """Read an observer model's class attributes into a checked ``ObserverSpec``."""
    return ObserverSpec.declared(
        model_name,
        model_class._observe_events,
        async_capable=model_class._async_capable,
        queue=model_class._async_queue,
        sequence=model_class._sequence,
        priority=model_class._async_priority,
        batchable=model_class._async_batch,
    )


def bus_settings(env):
    """The bus settings for ``env``'s database: environment > odoo.conf > system parameters."""
    from odoo.tools import config

    params = {}
    # sudo - ir.config_parameter: bus settings are read for any user who saves a record.
    icp = env["ir.config_parameter"].sudo()
    for setting in SETTINGS.values():
        params[setting.param_key] = icp.get_param(setting.param_key)
    conf = {setting.conf_key: config.get(setting.conf_key) for setting in SETTINGS.values()}
    return {name: resolve(name, os.environ, conf, params) for name in SETTINGS}


def json_safe(value):
    """Turn ORM write values into JSON-safe ones (dates as ISO text, bytes dropped)."""
    return json.loads(json.dumps(value, default=_default))


def _default(value):
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if hasattr(value, "_name") and hasattr(value, "ids"):
        return value.ids
    return str(value)
