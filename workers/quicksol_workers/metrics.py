"""Per-queue worker metrics kept in Redis, exported to Prometheus through Flower's ``/metrics``.

Every worker process adds its counts to the hash ``qsb:metrics:<queue>`` (processed, failed,
retried, dead_lettered, run time sum and count); :class:`RedisMetricsCollector` reads them
when Prometheus scrapes, so counts from every process and host add up without a
multiprocess registry. Metrics never fail a delivery: a Redis error is logged and dropped.

Exported (label ``queue``): ``quicksol_worker_processed_total``, ``quicksol_worker_failed_total``,
``quicksol_worker_retried_total``, ``quicksol_worker_dead_lettered_total`` and the summary
``quicksol_worker_run_seconds`` (``_sum``: seconds spent delivering, ``_count``: batches).
"""

import logging

__all__ = ["Metrics", "RedisMetricsCollector", "FIELDS", "metrics_key"]

_logger = logging.getLogger(__name__)

PREFIX = "qsb:metrics"
# decision action -> counter field
_ACTION_FIELD = {"ack": "processed", "failed": "failed", "retry": "retried", "dead": "dead_lettered"}
FIELDS = ("processed", "failed", "retried", "dead_lettered", "runtime_seconds_sum", "runtime_seconds_count")


def metrics_key(queue):
    return f"{PREFIX}:{queue}"


class Metrics:
    """Adds counts to Redis; ``client`` is a ``redis.Redis``."""

    def __init__(self, client):
        self.client = client

    def record_batch(self, queue, settled, runtime):
        counts = {}
        for _delivery, decision in settled:
            name = _ACTION_FIELD.get(decision.action)
            if name:
                counts[name] = counts.get(name, 0) + 1
        try:
            pipe = self.client.pipeline(transaction=False)
            key = metrics_key(queue or "unknown")
            for name, value in counts.items():
                pipe.hincrby(key, name, value)
            pipe.hincrbyfloat(key, "runtime_seconds_sum", float(runtime))
            pipe.hincrby(key, "runtime_seconds_count", 1)
            pipe.execute()
        except Exception:  # noqa: BLE001 - metrics must never fail a delivery
            _logger.debug("could not record metrics", exc_info=True)

    def read(self, queue):
        raw = self.client.hgetall(metrics_key(queue))
        return {(k.decode() if isinstance(k, bytes) else k): float(v) for k, v in raw.items()}


class RedisMetricsCollector:
    """A Prometheus collector for the per-queue counters (register it in Flower's registry)."""

    def __init__(self, client, queues):
        self.client = client
        self.queues = list(queues)

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, SummaryMetricFamily

        families = {
            name: CounterMetricFamily(
                f"quicksol_worker_{name}", f"Event messages {name} per queue", labels=["queue"]
            )
            for name in ("processed", "failed", "retried", "dead_lettered")
        }
        # quicksol_worker_run_seconds_sum / _count: time spent delivering batches, batches
        runtime = SummaryMetricFamily(
            "quicksol_worker_run_seconds", "Time spent delivering batches per queue", labels=["queue"]
        )
        metrics = Metrics(self.client)
        for queue in self.queues:
            try:
                values = metrics.read(queue)
            except Exception:  # noqa: BLE001 - a scrape must not fail because Redis is down
                _logger.warning("cannot read worker metrics of %s", queue, exc_info=True)
                continue
            for name, family in families.items():
                family.add_metric([queue], values.get(name, 0.0))
            runtime.add_metric(
                [queue],
                count_value=values.get("runtime_seconds_count", 0.0),
                sum_value=values.get("runtime_seconds_sum", 0.0),
            )
        yield from families.values()
        yield runtime
