"""Event bus core: cost of emitting from create(), publishing after commit, broker down."""

import os
import socket
import statistics
import threading
import time

from odoo_env import drop, environment, registry_for

RECORDS = 1000
ROUNDS = 7
DB = "qsb_bench_core"


def _timed(registry, fn, commit=False):
    with environment(registry, commit=commit) as env:
        started = time.perf_counter()
        fn(env)
        env.cr.flush()  # flush and precommit: the outbox rows are written there
        return time.perf_counter() - started


def _median_pair(registry, first, second):
    """Alternate the two so drift of the machine hits both alike; medians of ROUNDS."""
    a, b = [], []
    for _round in range(ROUNDS):
        a.append(_timed(registry, first))
        b.append(_timed(registry, second))
    return statistics.median(a), statistics.median(b)


def _vals():
    return [{"name": f"bench {i}", "value": i} for i in range(RECORDS)]


class SilentBroker:
    """A loopback port that accepts connections and never answers: a hung broker."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.clients = []
        self.url = f"amqp://guest:guest@127.0.0.1:{self.sock.getsockname()[1]}//"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                self.clients.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self):
        self.sock.close()
        for client in self.clients:
            client.close()


def run(environ):
    os.environ.setdefault("EVENT_BUS_SIGNING_KEY", "bench-signing-key")
    os.environ.pop("EVENT_BUS_SYNC", None)
    broker_url = environ["CELERY_BROKER_URL"]
    registry = registry_for(environ["QSB_TEST_DB"], DB)  # first: sets Odoo's addons path

    from kombu import Connection
    from odoo.addons.quicksol_event_bus.models import event_bus

    from quicksol_bus.publisher import drop_publishers
    from quicksol_bus.topology import kombu_queues

    rows = []
    try:
        # 1. create() of 1,000 records, bus on (one inline + one async observer) vs bus off.
        with_bus, without_bus = _median_pair(
            registry,
            lambda env: env["quicksol.bench.record"].create(_vals()),
            lambda env: env["quicksol.test.plain"].create(_vals()),
        )
        ratio = with_bus / without_bus
        rows.append(("create(1,000 records) bus on", f"{with_bus * 1000:.1f} ms", "", ""))
        rows.append(("create(1,000 records) bus off", f"{without_bus * 1000:.1f} ms", "", ""))
        rows.append(
            ("  ratio bus on / off", f"{ratio:.2f}x", "target <= 1.25x", "OK" if ratio <= 1.25 else "MISSED")
        )
        # The same, one create() call per record: 1,000 events, 1,000 outbox rows.
        single_bus, single_plain = _median_pair(
            registry,
            lambda env: [env["quicksol.bench.record"].create(v) for v in _vals()],
            lambda env: [env["quicksol.test.plain"].create(v) for v in _vals()],
        )
        rows.append(
            ("1,000 create() of one record, ratio", f"{single_bus / single_plain:.2f}x", "(1,000 events)", "")
        )

        # 2. Publishing 1,000 events after commit (confirmed by the broker).
        connection = Connection(broker_url)
        connection.connect()
        channel = connection.channel()
        for queue in kombu_queues():
            queue(channel).declare()
            channel.queue_purge(queue.name)
        event_bus._breakers.clear()
        drop_publishers()
        publish_times = []
        for _round in range(3):
            with environment(registry, commit=True) as env:
                for values in _vals():
                    env["quicksol.bench.record"].create(values)
                env.cr.flush()  # flush and precommit: the outbox rows are written there
                started = time.perf_counter()
                env.cr.commit()  # the post-commit hook publishes the 1,000 deliveries
                publish_times.append(time.perf_counter() - started)
                env.cr.execute("SELECT count(*) FROM quicksol_event_delivery WHERE state='queued'")
                queued = env.cr.fetchone()[0]
        published = channel.queue_declare("audit_events", passive=True).message_count
        for queue in kombu_queues():
            channel.queue_purge(queue.name)
        connection.close()
        best = min(publish_times)
        rows.append(
            (
                "commit + publish 1,000 events",
                f"{best:.3f} s",
                "target <= 0.25 s",
                "OK" if best <= 0.25 else "MISSED",
            )
        )
        rows.append(
            (
                "  messages confirmed / queued rows",
                f"{published} / {queued}",
                f"expect {3 * RECORDS}",
                "OK" if published == queued == 3 * RECORDS else "MISMATCH",
            )
        )

        # 3. Broker down: the first save pays the connect timeout, later ones nothing.
        silent = SilentBroker()
        os.environ["CELERY_BROKER_URL"] = silent.url
        try:
            event_bus._breakers.clear()
            drop_publishers()
            costs = []
            for _save in range(3):
                with environment(registry, commit=True) as env:
                    env["quicksol.bench.record"].create({"name": "broker down"})
                    env.cr.flush()  # flush and precommit: the outbox rows are written there
                    started = time.perf_counter()
                    env.cr.commit()
                    costs.append(time.perf_counter() - started)
        finally:
            os.environ["CELERY_BROKER_URL"] = broker_url
            silent.close()
            event_bus._breakers.clear()
            drop_publishers()
        rows.append(
            (
                "broker hung: 1st save's commit",
                f"{costs[0]:.3f} s",
                "target ~<= 1 s",
                "OK" if costs[0] <= 1.5 else "MISSED",
            )
        )
        rows.append(
            (
                "broker hung: 2nd, 3rd save's commit",
                f"{costs[1] * 1000:.1f}/{costs[2] * 1000:.1f} ms",
                "breaker open",
                "",
            )
        )
    finally:
        drop(DB)
    return rows
