"""The Celery tasks: thin — build the delivery, hand it to the plain logic, report."""

import logging

from amqp.exceptions import AMQPError
from celery.exceptions import Reject
from kombu.exceptions import OperationalError

from quicksol_bus.topology import TASK_NAME

from .broker import PublishFailed
from .celery_app import app
from .delivery import HeadRequeued
from .messages import from_request
from .runtime import get_deliverer

# The broker failed while settling: the head goes back to its queue (nothing is lost).
_REQUEUE_ON = (HeadRequeued, PublishFailed, OSError, AMQPError, OperationalError)

__all__ = ["deliver", "reconcile", "cleanup"]

_logger = logging.getLogger(__name__)


@app.task(
    bind=True,
    name=TASK_NAME,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    Request="quicksol_workers.consumer:DeliveryRequest",
)
def deliver(self, *args, **kwargs):
    """Deliver one event message (and a batch pulled after it) to Odoo.

    Any other error escapes: :class:`~quicksol_workers.consumer.DeliveryRequest` then
    dead-letters the message with the error as its reason (it never loops)."""
    head = from_request(self.request, args, kwargs)
    try:
        settled = get_deliverer(self.app).process(head)
    except _REQUEUE_ON as error:
        _logger.warning("delivery interrupted (%r); message requeued", error, extra=head.log_extra())
        raise Reject(str(error), requeue=True) from error
    return settled.counts()


@app.task(name="quicksol.workers.reconcile", ignore_result=True)
def reconcile():
    """Tell Odoo about dead letters it does not know of yet (Odoo was down at the time)."""
    from .maintenance import reconcile_dead_letters

    return reconcile_dead_letters(app)


@app.task(name="quicksol.workers.cleanup", ignore_result=True)
def cleanup():
    """Ask Odoo to delete done events older than the retention."""
    from .maintenance import cleanup_done_events

    return cleanup_done_events(app)
