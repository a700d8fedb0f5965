"""devstack: start and stop the local PostgreSQL, RabbitMQ and Redis of quicksol event bus.

What is it?
    A stdlib-only helper used by `make run`, `make test` and the pytest fixtures. Every
    service listens on 127.0.0.1 on its own port (docs/architecture.md, overridable by the
    QSB_*_PORT variables) and keeps its data, logs and pid file under `.run/`.

How to use it?
    >>> import devstack
    >>> devstack.start("rabbitmq")      # idempotent: True only if this call started it
    >>> devstack.env()["CELERY_BROKER_URL"]
    >>> devstack.stop("rabbitmq")       # stops only what devstack started (pid files)

    or `python tools/devstack start|stop|status|env|...` (see `python tools/devstack -h`).

Caveats:
    PostgreSQL runs as the `postgres` OS user when we are root; its data has fsync off
    (a development and test stack, not a production one).
"""

from . import config, postgres, rabbitmq, redis_server
from .proc import StackError, wait_for

__all__ = ["SERVICES", "StackError", "env", "is_up", "start", "stop", "wait_for"]

#: Service name -> module with start() / stop() / is_up(); start order.
SERVICES = {
    "postgres": postgres,
    "rabbitmq": rabbitmq,
    "redis": redis_server,
}


def _service(name):
    try:
        return SERVICES[name]
    except KeyError:
        raise StackError(f"unknown service {name!r}; known: {', '.join(SERVICES)}") from None


def start(name):
    """Start service `name` if it is not up; return True if this call started it."""
    return _service(name).start()


def stop(name):
    """Stop service `name` if devstack runs it; return True if it was running."""
    return _service(name).stop()


def is_up(name):
    """True when service `name` runs from our pid file and answers on its port."""
    return _service(name).is_up()


def env():
    """Environment variables clients (Odoo, workers, Flower, tests) need to reach the stack."""
    amqp, mgmt, redis = config.port("amqp"), config.port("rabbitmq_mgmt"), config.port("redis")
    user, password = config.AMQP_USER, config.AMQP_PASSWORD
    return {
        "CELERY_BROKER_URL": f"amqp://{user}:{password}@127.0.0.1:{amqp}//",
        "CELERY_RESULT_BACKEND": f"redis://127.0.0.1:{redis}/0",
        "QSB_RABBITMQ_MGMT_URL": f"http://{user}:{password}@127.0.0.1:{mgmt}/",
        "QSB_AMQP_PORT": str(amqp),
        "QSB_RABBITMQ_MGMT_PORT": str(mgmt),
        "QSB_RABBITMQ_NODENAME": config.rabbitmq_node(),
        "QSB_REDIS_URL": f"redis://127.0.0.1:{redis}/0",
        "QSB_REDIS_PORT": str(redis),
        "QSB_PG_HOST": "127.0.0.1",
        "QSB_PG_PORT": str(config.port("pg")),
        "QSB_PG_USER": config.PG_USER,
        "QSB_PG_PASSWORD": config.PG_PASSWORD,
        "QSB_ODOO_PORT": str(config.port("odoo")),
        "QSB_FLOWER_PORT": str(config.port("flower")),
        "QSB_RUN_DIR": str(config.RUN),
    }
