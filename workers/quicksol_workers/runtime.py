"""The process's collaborators (Odoo connector, Redis, broker link), built once per process."""

import os
import threading

__all__ = ["get_broker", "get_deliverer", "get_redis", "reset"]

_state = {}
_lock = threading.Lock()


def get_redis(config):
    import redis

    key = ("redis", os.getpid())
    with _lock:
        client = _state.get(key)
        if client is None:
            client = _state[key] = redis.Redis.from_url(
                config.redis_url,
                socket_timeout=config.redis_timeout,
                socket_connect_timeout=config.redis_timeout,
                health_check_interval=30,
            )
        return client


def get_broker(app):
    """This process's :class:`~quicksol_workers.broker.BrokerLink`."""
    from .broker import BrokerLink

    key = ("broker", os.getpid())
    with _lock:
        link = _state.get(key)
        if link is None:
            link = _state[key] = BrokerLink(app, timeout=app.quicksol_config.broker_timeout)
        return link


def get_deliverer(app):
    """This process's :class:`~quicksol_workers.delivery.Deliverer`."""
    from .connector import get_connector
    from .delivery import Deliverer
    from .guards import Guards
    from .idempotency import DoneCache
    from .metrics import Metrics

    key = ("deliverer", os.getpid())
    with _lock:
        deliverer = _state.get(key)
    if deliverer is None:
        config = app.quicksol_config
        client = get_redis(config)
        connector = get_connector(config)
        deliverer = Deliverer(
            config,
            connector,
            get_broker(app),
            DoneCache(client, config.done_ttl),
            Metrics(client),
            Guards(config, client, connector),
        )
        with _lock:
            _state[key] = deliverer
    return deliverer


def reset():
    """Forget everything (a forked child must not use its parent's sockets)."""
    from .connector import drop_connector

    with _lock:
        _state.clear()
    drop_connector()
