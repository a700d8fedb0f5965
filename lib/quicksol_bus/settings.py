"""The bus's settings: one declared table and their resolution.

Each setting may come from the environment, from ``odoo.conf`` (``[options]`` key) or from an
Odoo system parameter; the first that is set wins, in that order (docs/operations.md: "the environment
wins").

>>> resolve("payload_limit", environ={}, conf={}, params={})
262144
>>> resolve("payload_limit", environ={"EVENT_BUS_PAYLOAD_LIMIT": "1024"}, conf={},
...         params={"quicksol_event_bus.payload_limit": "2048"})
1024
>>> resolve("sync_mode", environ={"EVENT_BUS_SYNC": "yes"}, conf={}, params={})
True
"""

from dataclasses import dataclass

from .payload import DEFAULT_PAYLOAD_LIMIT

__all__ = ["Setting", "SETTINGS", "BROKER_DOWN_POLICIES", "resolve", "resolve_all", "as_bool"]

BROKER_DOWN_POLICIES = ("relay", "inline")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def as_bool(value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r} (use 1/0, true/false, yes/no, on/off)")


def _policy(value):
    value = str(value).strip().lower()
    if value not in BROKER_DOWN_POLICIES:
        raise ValueError(f"broker-down policy must be one of {BROKER_DOWN_POLICIES}, got {value!r}")
    return value


@dataclass(frozen=True)
class Setting:
    name: str
    env: str
    default: object
    parse: object
    help: str

    @property
    def conf_key(self):
        return f"quicksol_event_bus_{self.name}"

    @property
    def param_key(self):
        return f"quicksol_event_bus.{self.name}"


SETTINGS = {
    s.name: s
    for s in (
        Setting(
            "broker_url",
            "CELERY_BROKER_URL",
            None,
            str,
            "AMQP URL of RabbitMQ; unset means sync mode (every observer inline)",
        ),
        Setting(
            "signing_key",
            "EVENT_BUS_SIGNING_KEY",
            None,
            str,
            "HMAC key shared with the workers to sign messages",
        ),
        Setting(
            "sync_mode",
            "EVENT_BUS_SYNC",
            False,
            as_bool,
            "run every observer inline even when a broker is configured",
        ),
        Setting(
            "payload_limit",
            "EVENT_BUS_PAYLOAD_LIMIT",
            DEFAULT_PAYLOAD_LIMIT,
            int,
            "largest event data accepted, in bytes of JSON",
        ),
        Setting(
            "broker_down_policy",
            "EVENT_BUS_BROKER_DOWN_POLICY",
            "relay",
            _policy,
            "relay: keep events pending for the relay; inline: run async observers inline "
            "while the circuit breaker is open",
        ),
        Setting(
            "connect_timeout",
            "EVENT_BUS_CONNECT_TIMEOUT",
            1.0,
            float,
            "seconds a save may spend reaching the broker before it is declared down",
        ),
        Setting(
            "breaker_reset",
            "EVENT_BUS_BREAKER_RESET",
            30.0,
            float,
            "seconds the circuit breaker stays open before one probe",
        ),
        Setting(
            "relay_batch",
            "EVENT_BUS_RELAY_BATCH",
            1000,
            int,
            "largest number of deliveries the relay publishes in one batch",
        ),
        Setting(
            "republish_queued_after",
            "EVENT_BUS_REPUBLISH_QUEUED_AFTER",
            3600.0,
            float,
            "seconds beyond its queue's message TTL after which the relay publishes a delivery "
            "still queued again (its message was lost outside the broker's care: before the "
            "TTL it may only be waiting in a backlog); 0 never",
        ),
        Setting(
            "log_inline_events",
            "EVENT_BUS_LOG_INLINE_EVENTS",
            False,
            as_bool,
            "also record events whose observers ran inline (done deliveries, run mode inline), "
            "so administrators see them in the event history; off: inline runs write nothing",
        ),
        Setting(
            "max_expiries",
            "EVENT_BUS_MAX_EXPIRIES",
            3,
            int,
            "times a delivery whose message expired unconsumed (its queue's TTL) is published "
            "again before it is parked as dead for an administrator",
        ),
        Setting(
            "relay_min_age",
            "EVENT_BUS_RELAY_MIN_AGE",
            10.0,
            float,
            "seconds a pending delivery waits for its own post-commit publish before the relay takes it",
        ),
        # Monitoring (the Broker and workers screen, the status API, alerts, metrics).
        Setting(
            "rabbitmq_mgmt_url",
            "EVENT_BUS_RABBITMQ_MGMT_URL",
            None,
            str,
            "URL of the RabbitMQ management API, with its credentials (http://user:password@host:15672/)",
        ),
        Setting(
            "flower_url",
            "EVENT_BUS_FLOWER_URL",
            None,
            str,
            "URL of Flower, linked from the Broker and workers screen",
        ),
        Setting(
            "monitor_timeout",
            "EVENT_BUS_MONITOR_TIMEOUT",
            1.5,
            float,
            "seconds each broker or workers check may take before it is reported as timed out",
        ),
        # Alert thresholds (quicksol_bus.alerts); 0 turns an alert off.
        Setting(
            "alert_queue_depth",
            "EVENT_BUS_ALERT_QUEUE_DEPTH",
            1000,
            int,
            "messages waiting in a work queue from which an incident is opened",
        ),
        Setting(
            "alert_dead_letters",
            "EVENT_BUS_ALERT_DEAD_LETTERS",
            1,
            int,
            "dead letters of a queue (in <queue>.dead or recorded in Odoo) from which an incident is opened",
        ),
        Setting(
            "alert_outbox_lag",
            "EVENT_BUS_ALERT_OUTBOX_LAG",
            300.0,
            float,
            "age in seconds of the oldest unpublished delivery from which an incident is opened",
        ),
        Setting(
            "alert_failure_rate",
            "EVENT_BUS_ALERT_FAILURE_RATE",
            0.1,
            float,
            "share (0..1) of failed or dead deliveries in the last hour from which an incident is opened",
        ),
        Setting(
            "alert_min_workers",
            "EVENT_BUS_ALERT_MIN_WORKERS",
            1,
            int,
            "workers that must answer a ping; fewer opens an incident (a broker down opens one too)",
        ),
    )
}


def resolve(name, environ, conf, params):
    """Value of setting ``name`` from the first source that sets it, parsed."""
    setting = SETTINGS[name]
    for source, key in ((environ, setting.env), (conf, setting.conf_key), (params, setting.param_key)):
        value = source.get(key)
        if value not in (None, "", False):
            try:
                return setting.parse(value)
            except (TypeError, ValueError) as error:
                raise ValueError(f"invalid value for {key}: {error}") from None
    return setting.default


def resolve_all(environ, conf, params):
    return {name: resolve(name, environ, conf, params) for name in SETTINGS}
