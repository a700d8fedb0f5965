"""Flower set-up: basic auth from ``FLOWER_BASIC_AUTH``, ``/metrics`` protected, worker metrics.

Flower 2.0 serves ``/metrics`` without checking credentials even when ``--basic-auth`` is
set; :func:`protect_metrics` puts that handler behind the same basic auth as the UI. The
per-queue counters of the workers (:mod:`quicksol_workers.metrics`) are added to the
registry Flower exports.
"""

import logging
import os

__all__ = ["protect_metrics", "setup_flower"]

_logger = logging.getLogger(__name__)


def protect_metrics():
    import tornado.web
    from flower.views.monitor import Metrics

    if getattr(Metrics.get, "_quicksol_protected", False):
        return
    original = Metrics.get

    async def get(self):
        if self.application.options.basic_auth or self.application.options.auth:
            if not self.current_user:  # get_current_user raises 401 on wrong credentials
                raise tornado.web.HTTPError(401)
        return await original(self)

    get._quicksol_protected = True
    Metrics.get = get


def setup_flower(app):
    """Called when the app is imported by ``celery ... flower``."""
    from prometheus_client import REGISTRY

    from quicksol_bus.topology import QUEUES

    from .metrics import RedisMetricsCollector
    from .runtime import get_redis

    config = app.quicksol_config
    if config.flower_basic_auth and not os.environ.get("FLOWER_BASIC_AUTH"):
        os.environ["FLOWER_BASIC_AUTH"] = config.flower_basic_auth
    if not os.environ.get("FLOWER_BASIC_AUTH"):
        _logger.warning("FLOWER_BASIC_AUTH is not set: Flower and its /metrics are open")
    protect_metrics()
    try:
        REGISTRY.register(RedisMetricsCollector(get_redis(config), QUEUES))
    except ValueError:  # already registered (imported twice)
        pass
