"""Ports, folders and credentials of the local stack, with their environment overrides."""

import os
from pathlib import Path

__all__ = [
    "AMQP_PASSWORD",
    "AMQP_USER",
    "CACHE",
    "PG_PASSWORD",
    "PG_USER",
    "ROOT",
    "RUN",
    "VENV",
    "port",
    "rabbitmq_node",
]

#: The checkout: tools/devstack/config.py -> the repository root.
ROOT = Path(__file__).resolve().parents[2]
#: Run state (data folders, logs, pid files, generated configs); never committed.
RUN = Path(os.environ.get("QSB_RUN_DIR") or ROOT / ".run")
#: Downloads that survive `make clean` (an upstream Odoo clone).
CACHE = ROOT / ".cache"
VENV = Path(os.environ.get("QSB_VENV") or ROOT / ".venv")

# Default ports: docs/architecture.md, "Local ports and folders". The last three are
# devstack's own: Erlang needs a distribution port and a private epmd so that our
# broker never shares (or kills) the machine's epmd on 4369.
_PORTS = {
    "pg": ("QSB_PG_PORT", 55432),
    "amqp": ("QSB_AMQP_PORT", 55672),
    "rabbitmq_mgmt": ("QSB_RABBITMQ_MGMT_PORT", 55673),
    "redis": ("QSB_REDIS_PORT", 56379),
    "odoo": ("QSB_ODOO_PORT", 58069),
    "flower": ("QSB_FLOWER_PORT", 55555),
    "rabbitmq_dist": ("QSB_RABBITMQ_DIST_PORT", 55674),
    "epmd": ("QSB_EPMD_PORT", 55675),
}

PG_USER = "odoo"
PG_PASSWORD = "odoo"
AMQP_USER = "quicksol"
AMQP_PASSWORD = "quicksol"


def port(name):
    """Return the TCP port of `name` (a key of the table above), honouring its variable."""
    var, default = _PORTS[name]
    value = os.environ.get(var)
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise SystemExit(f"devstack: {var}={value!r} is not a port number") from None


def rabbitmq_node():
    """Erlang node name of our broker; the AMQP port keeps two checkouts apart."""
    return os.environ.get("QSB_RABBITMQ_NODENAME") or f"qsb{port('amqp')}@localhost"
