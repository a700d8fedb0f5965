"""Estate flows: the original plan's latency table, measured here next to its own figures.

What runs: the ORM calls of each flow, in this process, on a copy of the test database
(``qsb_bench_estate``), as an estate owner (record rules and access rights apply), each one
flushed and committed like a request would be (the commit publishes the async deliveries).
Async figures have real workers behind them: an Odoo HTTP server subprocess on the same
database and one ``celery worker -c 1`` process each for ``audit_events`` and
``commission_events`` (API key of ``event_bus_worker``). "the user waits" = the ORM call +
commit; "total" = from the call's start until the worker's delivery is ``done`` in the
database (polled with a deadline).

Sync figures run every observer inline (context ``quicksol_event_bus_sync``); "bus off"
figures disable the emitter (``quicksol_event_bus_disabled``) and are the baselines.

The peer: OCA ``auditlog`` (18.0, from PyPI) in a separate copy (``qsb_bench_estate_auditlog``)
with a rule logging creates on ``real.estate.property`` (log type ``full``, its default),
our bus disabled there, so that the same 1,000-property create is audited by auditlog alone.

The plan's figures come from its "Latency Benchmarks" table (a different machine and stack:
they are printed for comparison, not as pass/fail targets). Medians of a few rounds.
"""

import os
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from odoo_env import drop, registry_for, start_worker, stop_process

DB = "qsb_bench_estate"
DB_AUDITLOG = "qsb_bench_estate_auditlog"
AUDIT = "quicksol.observer.security.group.audit"
SPLIT = "quicksol.observer.commission.split"
BULK = 1000
COMMISSIONS = 100
SINGLE_ROUNDS = 7
BULK_ROUNDS = 3
EMIT_ROUNDS = 20
DEADLINE = 240  # seconds a worker may take to finish one round's work before the bench fails
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "tools") not in sys.path:
    sys.path.insert(0, str(ROOT / "tools"))  # devstack: Odoo server, run directory
SYNC = {"quicksol_event_bus_sync": True}
BUS_OFF = {"quicksol_event_bus_disabled": True}
# What the import wizard uses for its batch create.
IMPORT_CTX = {"mail_create_nolog": True, "mail_create_nosubscribe": True}

# Seed 001, "Performance Characteristics / Latency Benchmarks" (milliseconds).
SEED = {
    "user": "150",
    "property": "200",
    "bulk_sync": "30,000-50,000",
    "bulk_async_total": "120,000-180,000",
    "bulk_async_user": "5,000",
    "commission": "300",
    "commissions_sync": "12,000",
    "commissions_async_total": "30,000",
    "commissions_async_user": "2,000",
    "audit_sync": "50",
    "audit_async_total": "5,000-10,000",
    "audit_async_user": "<1",
}


# ---------------------------------------------------------------------------------------
# Odoo side: fixtures and timed calls
# ---------------------------------------------------------------------------------------


def _env(cr, uid, context=None):
    from odoo import api

    return api.Environment(cr, uid, dict(context or {}))


def _fixtures(registry, tag):
    """Two estate companies, an owner who may manage users, an agent and a prospector."""
    from odoo import SUPERUSER_ID, Command

    with registry.cursor() as cr:
        env = _env(cr, SUPERUSER_ID, {"tracking_disable": True})
        companies = env["real.estate.company"].create(
            [
                {
                    "name": f"Bench A {tag}",
                    "code": f"BA{tag}",
                    "commission_rate": 3.0,
                    "prospector_share": 30.0,
                },
                {
                    "name": f"Bench B {tag}",
                    "code": f"BB{tag}",
                    "commission_rate": 6.0,
                    "prospector_share": 40.0,
                },
            ]
        )
        groups = [
            env.ref(x).id
            for x in (
                "base.group_user",
                "quicksol_estate.group_real_estate_owner",
                "base.group_erp_manager",
                "base.group_partner_manager",
            )
        ]
        owner = env["res.users"].create(
            {
                "name": f"Bench owner {tag}",
                "login": f"bench_owner_{tag}",
                "groups_id": [Command.set(groups)],
                "estate_company_ids": [Command.set(companies[:1].ids)],
            }
        )
        agent_user = env["res.users"].create(
            {
                "name": f"Bench agent {tag}",
                "login": f"bench_agent_{tag}",
                "groups_id": [Command.set([env.ref("quicksol_estate.group_real_estate_agent").id])],
                "estate_company_ids": [Command.set(companies[:1].ids)],
            }
        )
        Agent = env["real.estate.agent"]
        agent = Agent.create(
            {"name": f"Agent {tag}", "user_id": agent_user.id, "estate_company_id": companies[0].id}
        )
        prospector = Agent.create({"name": f"Prospector {tag}", "estate_company_id": companies[0].id})
        cr.commit()
        return SimpleNamespace(
            company=companies[0].id, owner=owner.id, agent=agent.id, prospector=prospector.id, tag=tag
        )


def _timed(registry, fx, fn, context=None):
    """Run ``fn(env)`` as the owner, flush and commit; return (seconds, fn's result)."""
    with registry.cursor() as cr:
        env = _env(cr, fx.owner, context)
        started = time.perf_counter()
        result = fn(env)
        env.cr.flush()  # flush and precommit: the outbox rows are written there
        cr.commit()
        return time.perf_counter() - started, result


def _property_vals(fx, label, count, state="available"):
    return [
        {
            "name": f"{label} {fx.tag} {i}",
            "estate_company_id": fx.company,
            "agent_id": fx.agent,
            "prospector_id": fx.prospector,
            "sale_price": 400000.0 + i,
            "state": state,
        }
        for i in range(count)
    ]


def _create_properties(fx, label, count):
    """``fn(env)`` creating ``count`` properties in one create() (fresh names each call)."""

    def create(env):
        return (
            env["real.estate.property"]
            .create(_property_vals(fx, f"{label} {time.monotonic_ns()}", count))
            .ids
        )

    return create


def _last_event_id(registry):
    with registry.cursor() as cr:
        cr.execute("SELECT coalesce(max(id), 0) FROM quicksol_event")
        return cr.fetchone()[0]


def _wait_done(registry, since, observer, started, timeout=DEADLINE):
    """Seconds from ``started`` until every delivery to ``observer`` of events after
    ``since`` is done (failed/dead deliveries fail the bench)."""
    deadline = time.monotonic() + timeout
    while True:
        with registry.cursor() as cr:
            cr.execute(
                """SELECT d.state, count(*) FROM quicksol_event_delivery d
                           WHERE d.event_id > %s AND d.observer = %s GROUP BY d.state""",
                [since, observer],
            )
            states = dict(cr.fetchall())
        if any(states.get(s) for s in ("failed", "dead")):
            raise RuntimeError(f"bench_estate: {observer} deliveries failed: {states}")
        if states and set(states) == {"done"}:
            return time.perf_counter() - started
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench_estate: {observer} not done after {timeout} s: {states}")
        time.sleep(0.02)  # polling interval of a measurement, not a synchronisation


def _median(values):
    return statistics.median(values)


# ---------------------------------------------------------------------------------------
# Worker side: Odoo server + worker processes
# ---------------------------------------------------------------------------------------


class Stack:
    """An Odoo HTTP server on ``db`` and one worker process per queue; stop() ends them all."""

    def __init__(self, registry, db, queues):
        from odoo import SUPERUSER_ID

        from devstack import config
        from devstack import odoo as devstack_odoo

        self.name = f"odoo-bench-{db}"
        self.procs = []
        self._odoo = devstack_odoo
        port = _free_port()
        server_env = {k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "USER", "PASSWORD")}
        devstack_odoo.start_server(
            Path(os.environ["QSB_ODOO_CONF"]),
            db,
            port,
            self.name,
            extra=["--max-cron-threads=0"],
            env=server_env,
        )
        with registry.cursor() as cr:
            env = _env(cr, SUPERUSER_ID)
            admin = env.ref("base.user_admin")
            key = env["quicksol.event.bus"].with_user(admin).generate_worker_api_key()
            cr.commit()
        worker_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("ODOO_", "QSB_WORKER_"))},
            "ODOO_URL": f"http://127.0.0.1:{port}",
            "ODOO_DB": db,
            "ODOO_USER": "event_bus_worker",
            "ODOO_API_KEY": key,
            "QSB_WORKER_LOG_JSON": "0",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "lib"), str(ROOT / "workers")]),
        }
        try:
            for queue in queues:
                log = config.RUN / f"bench-estate-worker-{queue}.log"
                proc, handle = start_worker(queue, f"bench-estate-{queue}", worker_env, log)
                self.procs.append((proc, handle))
                _poll(
                    lambda q=queue, p=proc: p.poll() is not None or _consumers(q) > 0,
                    60,
                    f"worker of {queue} not ready (log {log})",
                )
                if proc.poll() is not None:
                    raise RuntimeError(f"worker exited: {log.read_text(errors='replace')[-2000:]}")
        except BaseException:
            self.stop()
            raise

    def stop(self):
        for proc, handle in self.procs:
            stop_process(proc, handle)
        self.procs = []
        self._odoo.stop_server(self.name)


def _consumers(queue):
    from kombu import Connection

    with Connection(os.environ["CELERY_BROKER_URL"]) as conn:
        try:
            return conn.default_channel.queue_declare(queue, passive=True)[2]
        except Exception:  # noqa: BLE001 - the queue is not declared yet
            return 0


def _purge_queues():
    from kombu import Connection

    from quicksol_bus.topology import QUEUES

    with Connection(os.environ["CELERY_BROKER_URL"]) as conn:
        for spec in QUEUES.values():
            for name in (spec.name, spec.dead_queue):
                try:
                    conn.default_channel.queue_purge(name)
                except Exception:  # noqa: BLE001 - not declared yet
                    pass


def _poll(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench_estate: {what} (after {timeout} s)")
        time.sleep(0.05)


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------------------------------
# The measurements
# ---------------------------------------------------------------------------------------


def _ms(seconds):
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.01 else f"{seconds * 1000:.2f} ms"


def _row(figure, seconds, seed_key):
    seed = SEED.get(seed_key)
    return (figure, _ms(seconds), f"seed: {seed} ms" if seed else "", "")


def _single_user(registry, fx, context):
    times = []
    for _ in range(SINGLE_ROUNDS):
        login = f"bench_user_{fx.tag}_{time.monotonic_ns()}"
        elapsed, _ids = _timed(
            registry,
            fx,
            lambda env, login=login: env["res.users"]
            .create({"name": login, "login": login, "estate_company_ids": [(6, 0, [fx.company])]})
            .ids,
            context,
        )
        times.append(elapsed)
    return _median(times)


def _single_property(registry, fx, context):
    return _median(
        [_timed(registry, fx, _create_properties(fx, "Single", 1), context)[0] for _ in range(SINGLE_ROUNDS)]
    )


def _bulk_properties(registry, fx, mode):
    """One create() of 1,000 properties: ``off`` / ``sync`` / ``async`` -> (user waits, total)."""
    context = {**IMPORT_CTX, **({"off": BUS_OFF, "sync": SYNC}.get(mode) or {})}
    since = _last_event_id(registry)
    started = time.perf_counter()
    user, ids = _timed(registry, fx, _create_properties(fx, f"Bulk {mode}", BULK), context)
    assert len(ids) == BULK
    total = _wait_done(registry, since, AUDIT, started) if mode == "async" else user
    if mode != "off":
        _check_audited(registry, ids)
    return user, total


def _check_audited(registry, ids):
    with registry.cursor() as cr:
        cr.execute(
            """SELECT count(*), count(DISTINCT res_id) FROM quicksol_audit_log
                       WHERE event_name = 'property.created' AND res_id = ANY(%s)""",
            [ids],
        )
        rows, distinct = cr.fetchone()
    if rows != len(ids) or distinct != len(ids):
        raise RuntimeError(f"bench_estate: {rows} audit rows for {len(ids)} properties")


def _sell(registry, fx, count, mode):
    """Sell ``count`` fresh properties in one write -> (user waits, total until lines exist)."""
    _t, ids = _timed(registry, fx, _create_properties(fx, f"Sale {mode}", count), {**IMPORT_CTX, **BUS_OFF})
    since = _last_event_id(registry)
    started = time.perf_counter()
    user, _r = _timed(
        registry,
        fx,
        lambda env: env["real.estate.property"].browse(ids).write({"state": "sold"}),
        SYNC if mode == "sync" else {},
    )
    total = _wait_done(registry, since, SPLIT, started) if mode == "async" else user
    with registry.cursor() as cr:
        cr.execute(
            "SELECT count(*) FROM real_estate_commission_transaction WHERE property_id = ANY(%s)", [ids]
        )
        if cr.fetchone()[0] != 2 * count:
            raise RuntimeError(f"bench_estate: commission lines of {count} sales missing")
    return user, total


def _audit_event(registry, fx):
    """One audited event (``property.created`` of one property): its audit inline vs async.

    Inline: emit + flush (the audit row is written in the transaction), rolled back.
    Async: what the save pays (emit + flush: the outbox rows), rolled back; and the total,
    from the emit through commit and publish until the worker's row is in the database.
    """
    with registry.cursor() as cr:
        env = _env(cr, fx.owner, {**IMPORT_CTX, **BUS_OFF})
        prop = env["real.estate.property"].create(_property_vals(fx, "Audited", 1))
        cr.commit()
        prop_id = prop.id

    def emit_once(context):
        with registry.cursor() as cr:
            env = _env(cr, fx.owner, context)
            record = env["real.estate.property"].browse(prop_id)
            data = record._event_ids_data(record.ids)
            started = time.perf_counter()
            env["quicksol.event.bus"].emit("property.created", data)
            env.cr.flush()  # flush and precommit: the outbox rows are written there
            elapsed = time.perf_counter() - started
            cr.rollback()
            return elapsed

    inline = _median([emit_once(SYNC) for _ in range(EMIT_ROUNDS)])
    user = _median([emit_once({}) for _ in range(EMIT_ROUNDS)])
    totals = []
    for _ in range(SINGLE_ROUNDS):
        since = _last_event_id(registry)
        with registry.cursor() as cr:
            env = _env(cr, fx.owner)
            record = env["real.estate.property"].browse(prop_id)
            started = time.perf_counter()
            env["quicksol.event.bus"].emit("property.created", record._event_ids_data(record.ids))
            env.cr.flush()  # flush and precommit: the outbox rows are written there
            cr.commit()
        totals.append(_wait_done(registry, since, AUDIT, started))
    return inline, user, _median(totals)


def _auditlog_peer(environ):
    """1,000 properties created with OCA auditlog logging them (our bus off), median."""
    from odoo import SUPERUSER_ID

    from devstack import odoo as devstack_odoo

    registry_for(environ["QSB_TEST_DB"], DB_AUDITLOG)  # fresh copy
    import odoo

    odoo.modules.registry.Registry.delete(DB_AUDITLOG)
    odoo.sql_db.close_db(DB_AUDITLOG)
    devstack_odoo.create_database(
        Path(environ["QSB_ODOO_CONF"]),
        DB_AUDITLOG,
        ["auditlog"],
        demo=False,
        log=Path(os.environ.get("QSB_RUN_DIR") or ROOT / ".run") / "bench-auditlog-install.log",
    )
    registry = odoo.modules.registry.Registry(DB_AUDITLOG)
    fx = _fixtures(registry, "al")
    with registry.cursor() as cr:
        env = _env(cr, SUPERUSER_ID)
        env["auditlog.rule"].create(
            {
                "name": "bench: property creates",
                "model_id": env["ir.model"]._get_id("real.estate.property"),
                "log_create": True,
                "log_write": False,
                "log_unlink": False,
                "log_read": False,
                "log_type": "full",
                "state": "subscribed",
            }
        )
        cr.commit()
    times = []
    for _ in range(BULK_ROUNDS):
        elapsed, ids = _timed(
            registry, fx, _create_properties(fx, "Auditlog", BULK), {**IMPORT_CTX, **BUS_OFF}
        )
        times.append(elapsed)
        with registry.cursor() as cr:
            cr.execute(
                """SELECT count(DISTINCT l.res_id) FROM auditlog_log l JOIN ir_model m
                           ON m.id = l.model_id WHERE m.model = 'real.estate.property'
                           AND l.method = 'create' AND l.res_id = ANY(%s)""",
                [ids],
            )
            logged = cr.fetchone()[0]
        if logged != BULK:
            raise RuntimeError(f"bench_estate: auditlog logged {logged} of {BULK} creates")
    return _median(times)


def run(environ):
    os.environ.setdefault("EVENT_BUS_SIGNING_KEY", "bench-signing-key")
    os.environ.pop("EVENT_BUS_SYNC", None)
    registry = registry_for(environ["QSB_TEST_DB"], DB)

    from quicksol_bus.publisher import drop_publishers

    fx = _fixtures(registry, "es")
    _purge_queues()
    stack = Stack(registry, DB, ("audit_events", "commission_events"))
    rows = []
    try:
        rows.append(_row("create one user, bus off (baseline)", _single_user(registry, fx, BUS_OFF), ""))
        rows.append(_row("create one user, sync mode (all inline)", _single_user(registry, fx, SYNC), "user"))
        rows.append(_row("create one user, async audit: user waits", _single_user(registry, fx, {}), ""))
        rows.append(
            _row("create one property, bus off (baseline)", _single_property(registry, fx, BUS_OFF), "")
        )
        rows.append(_row("create one property, sync mode", _single_property(registry, fx, SYNC), "property"))
        rows.append(
            _row("create one property, async audit: user waits", _single_property(registry, fx, {}), "")
        )

        bulk = {"off": [], "sync": [], "async": []}
        for _round in range(BULK_ROUNDS):  # alternated, so drift hits all three alike
            for mode in bulk:
                bulk[mode].append(_bulk_properties(registry, fx, mode))
        off = _median([u for u, _t in bulk["off"]])
        sync = _median([u for u, _t in bulk["sync"]])
        a_user = _median([u for u, _t in bulk["async"]])
        a_total = _median([t for _u, t in bulk["async"]])
        rows += [
            _row(f"{BULK:,} properties, bus off (baseline)", off, ""),
            _row(f"{BULK:,} properties, sync (audit inline)", sync, "bulk_sync"),
            _row(f"{BULK:,} properties, async: user waits", a_user, "bulk_async_user"),
            _row(f"{BULK:,} properties, async: total, audit done", a_total, "bulk_async_total"),
            ("  sync / bus off", f"{sync / off:.2f}x", "", ""),
            ("  async user waits / bus off", f"{a_user / off:.2f}x", "", ""),
        ]

        rows.append(
            _row(
                "one commission split (inline)",
                _median([_sell(registry, fx, 1, "default")[0] for _ in range(SINGLE_ROUNDS)]),
                "commission",
            )
        )
        sales = {"sync": [], "async": []}
        for _round in range(BULK_ROUNDS):
            for mode in sales:
                sales[mode].append(_sell(registry, fx, COMMISSIONS, mode))
        rows += [
            _row(
                f"{COMMISSIONS} commissions (one write), sync",
                _median([u for u, _t in sales["sync"]]),
                "commissions_sync",
            ),
            _row(
                f"{COMMISSIONS} commissions, async: user waits",
                _median([u for u, _t in sales["async"]]),
                "commissions_async_user",
            ),
            _row(
                f"{COMMISSIONS} commissions, async: total, lines done",
                _median([t for _u, t in sales["async"]]),
                "commissions_async_total",
            ),
        ]

        inline, user, total = _audit_event(registry, fx)
        rows += [
            _row("audit log of one event, inline (emit)", inline, "audit_sync"),
            _row("audit log, async: the save pays (emit)", user, "audit_async_user"),
            _row("audit log, async: total, row written", total, "audit_async_total"),
        ]
    finally:
        stack.stop()
        _purge_queues()
        drop_publishers()
        import odoo

        odoo.sql_db.close_db(DB)
        drop(DB)

    try:
        peer = _auditlog_peer(environ)
    finally:
        import odoo

        odoo.sql_db.close_db(DB_AUDITLOG)
        drop(DB_AUDITLOG)
    rows += [
        _row(f"{BULK:,} properties, OCA auditlog (full), bus off", peer, ""),
        ("  ours sync / auditlog", f"{sync / peer:.2f}x", "", ""),
        ("  ours async user waits / auditlog", f"{a_user / peer:.2f}x", "", ""),
        ("  auditlog / bus off", f"{peer / off:.2f}x", "", ""),
    ]
    return rows
