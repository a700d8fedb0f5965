"""OCA queue_job as the peer: enqueue 1,000 jobs vs create() of 1,000 records with the bus on.

The core issue's figure is the cost the bus adds to ``create()``; OCA queue_job (18.0, from
PyPI) is the usual way Odoo developers defer work, so its enqueue cost is the peer. All in one
run, on one copy of the test database with ``queue_job`` installed (``qsb_bench_queue_job``),
in this process (no runner: enqueueing only needs the module installed), alternated round by
round, each flushed and rolled back (the in-transaction cost, as in bench_bus_core):

- enqueue: 1,000 ``with_delay()`` calls of a trivial method (``exists()`` on an empty
  ``quicksol.test.plain`` recordset), one transaction;
- plain: ``create()`` of 1,000 ``quicksol.test.plain`` records (no bus) — the baseline;
- bus on: ``create()`` of 1,000 ``quicksol.bench.record`` records (one inline + one async
  observer: one event, one outbox row per async observer);
- bus on, one by one: 1,000 ``create()`` calls of one ``quicksol.bench.record`` (1,000 events),
  next to 1,000 ``create()`` calls of one plain record.
"""

import os
import statistics
import time
from pathlib import Path

from odoo_env import drop, environment, registry_for

RECORDS = 1000
ROUNDS = 5
TARGET_EMIT_MS = 0.3
DB = "qsb_bench_queue_job"
ROOT = Path(__file__).resolve().parents[2]


def _vals():
    return [{"name": f"bench {i}", "value": i} for i in range(RECORDS)]


def _enqueue(env):
    plain = env["quicksol.test.plain"]
    for _i in range(RECORDS):
        plain.with_delay().exists()


CASES = {
    "enqueue": _enqueue,
    "plain": lambda env: env["quicksol.test.plain"].create(_vals()),
    "bus": lambda env: env["quicksol.bench.record"].create(_vals()),
    "bus_single": lambda env: [env["quicksol.bench.record"].create(v) for v in _vals()],
    "plain_single": lambda env: [env["quicksol.test.plain"].create(v) for v in _vals()],
}


def _timed(registry, fn):
    with environment(registry) as env:  # rolled back
        started = time.perf_counter()
        fn(env)
        env.cr.flush()  # flush and run the precommit hooks, as a commit would
        return time.perf_counter() - started


def _install_queue_job(environ):
    import sys

    import odoo

    if str(ROOT / "tools") not in sys.path:
        sys.path.insert(0, str(ROOT / "tools"))
    from devstack import odoo as devstack_odoo

    registry_for(environ["QSB_TEST_DB"], DB)  # fresh copy (and Odoo's configuration)
    odoo.modules.registry.Registry.delete(DB)
    odoo.sql_db.close_db(DB)
    run_dir = Path(os.environ.get("QSB_RUN_DIR") or ROOT / ".run")
    devstack_odoo.create_database(
        Path(environ["QSB_ODOO_CONF"]),
        DB,
        ["queue_job"],
        demo=False,
        log=run_dir / "bench-queue-job-install.log",
    )
    return odoo.modules.registry.Registry(DB)


def run(environ):
    os.environ.setdefault("EVENT_BUS_SIGNING_KEY", "bench-signing-key")
    os.environ.pop("EVENT_BUS_SYNC", None)  # async mode: the bus writes its outbox
    registry = _install_queue_job(environ)
    try:
        with environment(registry) as env:  # check: one with_delay() stores one queue.job
            before = env["queue.job"].search_count([])
            env["quicksol.test.plain"].with_delay().exists()
            env.cr.flush()  # flush and run the precommit hooks, as a commit would
            if env["queue.job"].search_count([]) != before + 1:
                raise RuntimeError("bench_queue_job: with_delay() stored no queue.job")
        times = {name: [] for name in CASES}
        for _round in range(ROUNDS):  # alternated, so drift of the machine hits all alike
            for name, fn in CASES.items():
                times[name].append(_timed(registry, fn))
        med = {name: statistics.median(values) for name, values in times.items()}
    finally:
        import odoo

        odoo.sql_db.close_db(DB)
        drop(DB)

    plain = med["plain"]
    # The bus's share of a one-record save: 1,000 create() calls with the bus on (1,000 events,
    # 1,000 outbox rows written at precommit) minus the same calls without it, per event.
    emit_ms = (med["bus_single"] - med["plain_single"]) / RECORDS * 1000
    enqueue_ms = med["enqueue"] / RECORDS * 1000  # with_delay() is all of a job's enqueue cost

    def ms(name):
        return f"{med[name] * 1000:,.1f} ms"

    return [
        (f"queue_job: enqueue {RECORDS:,} jobs (with_delay)", ms("enqueue"), "", ""),
        (f"create({RECORDS:,} plain records), no bus", ms("plain"), "baseline", ""),
        (f"create({RECORDS:,} records), bus on", ms("bus"), "", ""),
        (f"{RECORDS:,} create() of one record, bus on", ms("bus_single"), "", ""),
        (f"{RECORDS:,} create() of one plain record", ms("plain_single"), "", ""),
        ("  enqueue / plain create", f"{med['enqueue'] / plain:.2f}x", "", ""),
        (
            "  bus on / plain create",
            f"{med['bus'] / plain:.2f}x",
            "target <= 1.25x",
            "OK" if med["bus"] / plain <= 1.25 else "MISSED",
        ),
        ("  bus on one by one / plain create", f"{med['bus_single'] / plain:.2f}x", "(1,000 events)", ""),
        ("  bus on one by one / plain one by one", f"{med['bus_single'] / med['plain_single']:.2f}x", "", ""),
        ("  enqueue / bus on", f"{med['enqueue'] / med['bus']:.2f}x", "", ""),
        ("  enqueue / bus on one by one", f"{med['enqueue'] / med['bus_single']:.2f}x", "(1,000 each)", ""),
        (
            "emit cost per event in the transaction",
            f"{emit_ms:.3f} ms",
            f"target <= {TARGET_EMIT_MS} ms",
            "OK" if emit_ms <= TARGET_EMIT_MS else "MISSED",
        ),
        ("queue_job with_delay() per unit", f"{enqueue_ms:.3f} ms", "", ""),
        (
            "  emit per event / with_delay per unit",
            f"1/{enqueue_ms / emit_ms:.1f}" if emit_ms > 0 else "~0",
            "target <= 1/5",
            "OK" if emit_ms * 5 <= enqueue_ms else "MISSED",
        ),
    ]
