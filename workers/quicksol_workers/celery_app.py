"""The Celery app of the workers, configured from the environment and the one queue topology.

``celery -A quicksol_workers worker -Q audit_events`` runs a worker for one queue;
``celery -A quicksol_workers beat`` the periodic jobs (they run on the ``quicksol_maintenance``
queue: ``celery -A quicksol_workers worker -Q quicksol_maintenance -c 1``);
``celery -A quicksol_workers flower`` Flower, with ``/metrics`` behind ``FLOWER_BASIC_AUTH``.
"""

import sys

from celery import Celery, signals
from kombu import Exchange, Queue

from quicksol_bus.topology import QUEUES, TASK_NAME, kombu_queues

from .config import WorkerConfig

__all__ = ["MAINTENANCE_QUEUE", "app", "build_app", "work_queues"]

# Periodic jobs (clean-up, reconciliation) go to their own plain queue so that they never mix
# with event messages (which the event workers pull in batches).
MAINTENANCE_QUEUE = "quicksol_maintenance"


def work_queues():
    """The event queues exactly as :func:`quicksol_bus.topology.kombu_queues` declares them."""
    return [queue for queue in kombu_queues() if queue.name in QUEUES]


def build_app(config=None):
    config = config or WorkerConfig.from_env()
    app = Celery("quicksol_workers", set_as_current=True)
    maintenance = Queue(
        MAINTENANCE_QUEUE,
        Exchange(MAINTENANCE_QUEUE, type="direct"),
        routing_key=MAINTENANCE_QUEUE,
        durable=True,
    )
    app.conf.update(
        broker_url=config.broker_url,
        result_backend=config.result_backend,
        broker_connection_retry_on_startup=True,
        # Celery's own publishes (task events, beat's periodic tasks) do not wait for a confirm:
        # under a memory or disk alarm none comes, and the wait would freeze the worker's main
        # loop. Retries and dead letters go through BrokerLink, which confirms with a timeout
        # (docs/adr/0005-workers-delivery.md §12).
        broker_transport_options={"write_timeout": config.broker_timeout},
        task_queues=[*work_queues(), maintenance],
        task_default_queue=MAINTENANCE_QUEUE,
        task_routes={
            TASK_NAME: {"queue": "audit_events"},
            "quicksol.workers.*": {"queue": MAINTENANCE_QUEUE},
        },
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        # Delivery guarantees (ADR 0005).
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=False,  # an unexpected error dead-letters via the DLX
        worker_prefetch_multiplier=1,
        # Undecodable messages and unknown tasks go to <queue>.dead with a reason (consumer.py).
        worker_consumer="quicksol_workers.consumer:PoisonConsumer",
        task_default_delivery_mode="persistent",
        task_time_limit=max(120, int(config.odoo_timeout * 4)),
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=True,
        timezone="UTC",
        enable_utc=True,
        beat_schedule={
            "quicksol-reconcile": {
                "task": "quicksol.workers.reconcile",
                "schedule": config.reconcile_interval,
            },
            "quicksol-cleanup": {"task": "quicksol.workers.cleanup", "schedule": config.cleanup_interval},
        },
    )
    app.quicksol_config = config
    return app


app = build_app()


@signals.celeryd_after_setup.connect
def _apply_queue_rate_limit(sender, instance, conf, **kwargs):
    """A rate limit configured for the worker's queue becomes the task's rate limit."""
    config = app.quicksol_config
    queues = list(instance.app.amqp.queues.consume_from or {})
    limits = {config.rate_limits[q] for q in queues if q in config.rate_limits}
    if len(limits) == 1:
        app.tasks[TASK_NAME].rate_limit = limits.pop()


@signals.after_setup_logger.connect
@signals.after_setup_task_logger.connect
def _json_logs(logger, **kwargs):
    if app.quicksol_config.log_json:
        from .logs import install_json_logging

        install_json_logging(logger)


@signals.worker_process_init.connect
def _fresh_process_state(**kwargs):
    """A forked pool child opens its own Odoo, Redis and broker connections."""
    from .runtime import reset

    reset()


if "flower" in sys.argv:  # `celery -A quicksol_workers flower`
    from .flower import setup_flower

    setup_flower(app)
