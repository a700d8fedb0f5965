"""The fault matrix (issue 7): each case emits a known burst of events (committed and rolled
back), injects one fault into the real stack, restores it, waits for recovery on a condition
with a deadline and reconciles every committed event against its effect rows. A case fails on
any lost or duplicated effect, any trace of a rolled-back event, or any event not done.

How to run it and what each case does: docs/fault-matrix.md.
"""

import signal
import time

import pytest

import devstack

from .conftest import AUDIT, COMMISSION, FAULT_PAIR_EVENT, Amqp, SilentListener

pytestmark = [pytest.mark.integration, pytest.mark.fault]


def _mid_burst(matrix, case, total):
    """Wait until the burst is part-way through the workers: some effects, not all."""
    devstack.wait_for(lambda: matrix.progress(case) > 0, 60, f"{case}: no event ran")
    return matrix.progress(case) < total


# ------------------------------------------------------------------------- broker faults


def test_broker_refusing_connections(fault, broker_control):
    burst = fault.burst("broker_refusing")
    fault.emit(burst, 250, calls=1)
    broker_control.stop()
    try:
        # Saves while nothing listens on the AMQP port: they commit, their events stay pending.
        fault.emit(burst, 250, calls=2, failing_call=True)
    finally:
        broker_control.start()
    restored = time.monotonic()
    fault.finish(burst, fault.recover(burst, restored))


def test_broker_killed_mid_burst(fault, broker_control):
    burst = fault.burst("broker_killed")
    fault.emit(burst, 300, calls=1, extra={"sleep_ms": 5})
    _mid_burst(fault, burst.case, 300)
    import os

    os.kill(fault.broker_pid(), signal.SIGKILL)
    devstack.wait_for(lambda: not broker_control.is_up(), 30, "RabbitMQ survived SIGKILL")
    try:
        fault.emit(burst, 200, calls=1, failing_call=True, extra={"sleep_ms": 5})
    finally:
        broker_control.start()
    restored = time.monotonic()
    fault.finish(burst, fault.recover(burst, restored))


def test_broker_restarted_with_a_backlog(fault, broker_control, services_env):
    fault.workers.stop(COMMISSION)
    burst = fault.burst("broker_backlog")
    fault.emit(burst, 500, calls=2)
    amqp = Amqp(services_env["CELERY_BROKER_URL"])
    try:
        devstack.wait_for(lambda: amqp.depth(COMMISSION) >= 500, 30, "the backlog never reached the queue")
    finally:
        amqp.close()
    broker_control.restart()
    amqp = Amqp(services_env["CELERY_BROKER_URL"])
    try:
        # Persistent messages on a durable queue survive the restart.
        assert amqp.depth(COMMISSION) >= 500
    finally:
        amqp.close()
    restored = time.monotonic()
    fault.workers.ensure(COMMISSION)
    fault.finish(burst, fault.recover(burst, restored, relay=False))
