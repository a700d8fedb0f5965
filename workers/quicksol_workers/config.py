"""Worker configuration: one declared table of environment variables, read once per process.

The contract variables are the documented ones (docs/operations.md: ``CELERY_BROKER_URL``, ``CELERY_RESULT_BACKEND``,
``ODOO_URL``, ``ODOO_DB``, ``ODOO_USER``, ``ODOO_API_KEY`` or ``ODOO_PASSWORD``,
``EVENT_BUS_SIGNING_KEY``, ``FLOWER_BASIC_AUTH``); the ``QSB_WORKER_*`` ones tune the workers
and all have defaults.

>>> cfg = WorkerConfig.from_env({"ODOO_URL": "http://odoo:8069", "ODOO_DB": "prod",
...     "ODOO_USER": "event_bus_worker", "ODOO_API_KEY": "k", "EVENT_BUS_SIGNING_KEY": "s",
...     "QSB_WORKER_RATE_LIMITS": "notification_events=100/m"})
>>> cfg.odoo_secret, cfg.max_retries, cfg.rate_limits
('k', 3, {'notification_events': '100/m'})
"""

import os
from dataclasses import dataclass, field, fields

__all__ = ["ConfigError", "Var", "VARIABLES", "WorkerConfig"]


class ConfigError(ValueError):
    """A worker setting is missing or malformed."""


def _rate_map(text):
    """``"audit_events=1000/m,quicksol.observer.x=10/s"`` -> dict (queue or observer -> rate)."""
    result = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, rate = item.partition("=")
        if not sep or not name.strip() or not rate.strip():
            raise ConfigError(f"QSB_WORKER_RATE_LIMITS: expected name=rate, got {item!r}")
        result[name.strip()] = rate.strip()
    return result


@dataclass(frozen=True)
class Var:
    attr: str
    env: str
    default: object
    parse: object
    help: str


VARIABLES = (
    Var(
        "broker_url", "CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//", str, "AMQP URL of RabbitMQ"
    ),
    Var(
        "result_backend",
        "CELERY_RESULT_BACKEND",
        "redis://127.0.0.1:6379/0",
        str,
        "Redis URL: Celery results, idempotency keys, debounce/dedup state",
    ),
    Var(
        "redis_url",
        "QSB_WORKER_REDIS_URL",
        None,
        str,
        "Redis URL for the worker's own keys (default: CELERY_RESULT_BACKEND)",
    ),
    Var("odoo_url", "ODOO_URL", "http://127.0.0.1:8069", str, "base URL of Odoo"),
    Var("odoo_db", "ODOO_DB", None, str, "Odoo database"),
    Var(
        "odoo_user",
        "ODOO_USER",
        "event_bus_worker",
        str,
        "login of the bus technical user (group quicksol_event_bus.group_event_bus_worker)",
    ),
    Var("odoo_api_key", "ODOO_API_KEY", None, str, "API key of the technical user"),
    Var("odoo_password", "ODOO_PASSWORD", None, str, "password, when no API key (dev only)"),
    Var("signing_key", "EVENT_BUS_SIGNING_KEY", None, str, "HMAC key of message signatures"),
    Var("flower_basic_auth", "FLOWER_BASIC_AUTH", None, str, "user:password for Flower"),
    Var(
        "odoo_timeout",
        "QSB_WORKER_ODOO_TIMEOUT",
        30.0,
        float,
        "seconds one XML-RPC call may take (connect and read)",
    ),
    Var("redis_timeout", "QSB_WORKER_REDIS_TIMEOUT", 2.0, float, "seconds per Redis command"),
    Var("max_retries", "QSB_WORKER_MAX_RETRIES", 3, int, "retries after the first try for transient errors"),
    Var(
        "retry_base",
        "QSB_WORKER_RETRY_BASE",
        2.0,
        float,
        "bound of the first retry delay in seconds (doubles each retry, full jitter)",
    ),
    Var("retry_cap", "QSB_WORKER_RETRY_CAP", 300.0, float, "largest retry delay bound"),
    Var(
        "poison_max_deliveries",
        "QSB_WORKER_POISON_MAX_DELIVERIES",
        3,
        int,
        "deliveries of a message failing with an unexpected error before it is dead-lettered",
    ),
    Var(
        "broker_timeout",
        "QSB_WORKER_BROKER_TIMEOUT",
        10.0,
        float,
        "seconds a republish waits for RabbitMQ's confirm (and a broker socket read/write)",
    ),
    Var(
        "batch_size",
        "QSB_WORKER_BATCH_SIZE",
        500,
        int,
        "most messages one Odoo call carries (1: one call per event)",
    ),
    Var(
        "done_ttl",
        "QSB_WORKER_DONE_TTL",
        86400,
        int,
        "seconds the Redis 'done' key of an event/observer pair lives",
    ),
    Var(
        "rate_limits",
        "QSB_WORKER_RATE_LIMITS",
        {},
        _rate_map,
        "rate limits by queue or observer, e.g. notification_events=100/m",
    ),
    Var(
        "retention_days",
        "QSB_WORKER_RETENTION_DAYS",
        30,
        int,
        "days done events are kept in Odoo before the beat clean-up removes them",
    ),
    Var(
        "cleanup_interval",
        "QSB_WORKER_CLEANUP_INTERVAL",
        3600.0,
        float,
        "seconds between clean-up runs (beat)",
    ),
    Var(
        "reconcile_interval",
        "QSB_WORKER_RECONCILE_INTERVAL",
        60.0,
        float,
        "seconds between dead-letter/state reconciliation runs (beat)",
    ),
    Var(
        "observer_info_ttl",
        "QSB_WORKER_OBSERVER_INFO_TTL",
        60.0,
        float,
        "seconds the observers' declarations read from Odoo are cached",
    ),
    Var(
        "metrics_port",
        "QSB_WORKER_METRICS_PORT",
        0,
        int,
        "port of the worker's Prometheus endpoint (0: none)",
    ),
    Var(
        "log_json",
        "QSB_WORKER_LOG_JSON",
        True,
        lambda v: str(v).strip().lower() not in ("0", "false", "no", "off"),
        "structured JSON logs",
    ),
)


@dataclass(frozen=True)
class WorkerConfig:
    broker_url: str = None
    result_backend: str = None
    redis_url: str = None
    odoo_url: str = None
    odoo_db: str = None
    odoo_user: str = None
    odoo_api_key: str = None
    odoo_password: str = None
    signing_key: str = None
    flower_basic_auth: str = None
    odoo_timeout: float = 30.0
    redis_timeout: float = 2.0
    max_retries: int = 3
    retry_base: float = 2.0
    retry_cap: float = 300.0
    poison_max_deliveries: int = 3
    broker_timeout: float = 10.0
    batch_size: int = 500
    done_ttl: int = 86400
    rate_limits: dict = field(default_factory=dict)
    retention_days: int = 30
    cleanup_interval: float = 3600.0
    reconcile_interval: float = 60.0
    observer_info_ttl: float = 60.0
    metrics_port: int = 0
    log_json: bool = True

    @classmethod
    def from_env(cls, environ=None):
        environ = os.environ if environ is None else environ
        values = {}
        for var in VARIABLES:
            raw = environ.get(var.env)
            if raw in (None, ""):
                values[var.attr] = var.default
                continue
            try:
                values[var.attr] = var.parse(raw)
            except (TypeError, ValueError) as error:
                raise ConfigError(f"invalid {var.env}={raw!r}: {error}") from None
        if not values["redis_url"]:
            values["redis_url"] = values["result_backend"]
        if values["batch_size"] < 1:
            raise ConfigError("QSB_WORKER_BATCH_SIZE must be 1 or more")
        if values["poison_max_deliveries"] < 1:
            raise ConfigError("QSB_WORKER_POISON_MAX_DELIVERIES must be 1 or more")
        if values["broker_timeout"] <= 0:
            raise ConfigError("QSB_WORKER_BROKER_TIMEOUT must be more than 0")
        return cls(**values)

    @property
    def odoo_secret(self):
        """The credential the connector sends: the API key, else the password."""
        return self.odoo_api_key or self.odoo_password

    def require_odoo(self):
        """Raise a clear :class:`ConfigError` when Odoo cannot be called with this config."""
        missing = [
            name
            for name, value in (
                ("ODOO_URL", self.odoo_url),
                ("ODOO_DB", self.odoo_db),
                ("ODOO_USER", self.odoo_user),
                ("ODOO_API_KEY or ODOO_PASSWORD", self.odoo_secret),
            )
            if not value
        ]
        if missing:
            raise ConfigError(f"workers cannot call Odoo: set {', '.join(missing)}")

    def describe(self):
        """Settings safe to log (no secrets)."""
        secret = {"odoo_api_key", "odoo_password", "signing_key", "flower_basic_auth"}
        return {
            f.name: ("***" if f.name in secret and getattr(self, f.name) else getattr(self, f.name))
            for f in fields(self)
        }
