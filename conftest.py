"""Shared pytest fixtures: real services from devstack, RabbitMQ admin, broker and Odoo control.

Fixtures (any test under lib/, workers/, addons/ or tests/ can use them):

- ``services_env``: dict of the variables clients need (CELERY_BROKER_URL,
  CELERY_RESULT_BACKEND, QSB_RABBITMQ_MGMT_URL, QSB_PG_*, ...). Services that are not up
  are started for the session and stopped at its end.
- ``rabbitmq_admin``: :class:`RabbitAdmin`, the management HTTP API (queues, counts, get,
  purge, delete).
- ``broker_control``: :class:`BrokerControl`, stop/start the broker for fault tests; the
  broker is up again after the test whatever it did.
- ``odoo_server``: :class:`OdooServer`, a real Odoo HTTP server on a fresh copy
  (``qsb_e2e``) of the test database; skipped with the reason when Odoo is absent.
- ``wait_for``: :func:`wait_for`, poll a predicate with a deadline (never sleep to sync).

Tests using the service fixtures are marked ``integration`` automatically.
"""

import os
import socket
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

import devstack
from devstack import config, odoo, postgres, workers

ROOT = Path(__file__).resolve().parent
SERVICE_FIXTURES = {"services_env", "rabbitmq_admin", "broker_control", "odoo_server"}

__all__ = ["BrokerControl", "OdooServer", "RabbitAdmin", "free_port", "odoo_test_server", "wait_for"]


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def wait_for(predicate, timeout=30, message="condition not met"):
    """Poll `predicate` until truthy (returned) or fail the test after `timeout` seconds."""
    try:
        return devstack.wait_for(predicate, timeout, message)
    except devstack.StackError as exc:
        pytest.fail(str(exc), pytrace=False)


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def pytest_ignore_collect(collection_path, config):
    """Without pytest-odoo, addons/ can't be imported: don't collect it (test_odoo_runtime says so)."""
    addons = ROOT / "addons"
    if addons in collection_path.parents or collection_path == addons:
        if not config.pluginmanager.hasplugin("pytest_odoo"):
            return True
    return None


# ---------------------------------------------------------------------------------------
# Services
# ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def services_env():
    """Environment of the running stack; starts (and later stops) services that are down."""
    started = []
    for name in devstack.SERVICES:
        if not devstack.is_up(name):
            try:
                if devstack.start(name):
                    started.append(name)
            except devstack.StackError as exc:
                pytest.fail(f"could not start {name} for the tests: {exc}", pytrace=False)
    yield devstack.env()
    for name in reversed(started):
        devstack.stop(name)


class RabbitAdmin:
    """The RabbitMQ management HTTP API on our node, for assertions in tests."""

    def __init__(self, base_url, vhost="/"):
        import requests  # runtime dependency; imported here so conftest loads without it

        self._session = requests.Session()
        self._session.auth = (config.AMQP_USER, config.AMQP_PASSWORD)
        self.base = base_url.rstrip("/").split("@")[-1]
        self.base = f"http://{self.base}" if not self.base.startswith("http") else self.base
        self.vhost = quote(vhost, safe="")

    def _url(self, path):
        return f"{self.base}/api/{path}"

    def _call(self, method, path, **kw):
        resp = self._session.request(method, self._url(path), timeout=10, **kw)
        if resp.status_code >= 400:
            raise AssertionError(f"RabbitMQ API {method} {path}: {resp.status_code} {resp.text[:300]}")
        return resp.json() if resp.content else None

    def queues(self):
        """[{name, arguments, messages, messages_ready, messages_unacknowledged, durable, ...}]."""
        return self._call("GET", f"queues/{self.vhost}")

    def queue(self, name):
        """One queue's details, or None when it does not exist."""
        resp = self._session.get(self._url(f"queues/{self.vhost}/{quote(name, safe='')}"), timeout=10)
        return None if resp.status_code == 404 else resp.json()

    def message_count(self, name):
        """Messages in queue `name` (ready + unacked) as the management API last sampled it."""
        info = self.queue(name)
        return 0 if info is None else int(info.get("messages", 0) or 0)

    def get_messages(self, name, count=10, ack=False, encoding="auto"):
        """Fetch up to `count` messages; ack=False rejects without requeue, True acks them.

        Either way the messages leave the queue (a dead-letter exchange sees rejected ones).
        """
        body = {
            "count": count,
            "ackmode": "ack_requeue_false" if ack else "reject_requeue_false",
            "encoding": encoding,
        }
        return self._call("POST", f"queues/{self.vhost}/{quote(name, safe='')}/get", json=body)

    def purge(self, name):
        self._call("DELETE", f"queues/{self.vhost}/{quote(name, safe='')}/contents")

    def delete_queue(self, name):
        resp = self._session.delete(self._url(f"queues/{self.vhost}/{quote(name, safe='')}"), timeout=10)
        if resp.status_code not in (204, 404):
            raise AssertionError(f"RabbitMQ API DELETE queue {name}: {resp.status_code} {resp.text[:300]}")

    def overview(self):
        return self._call("GET", "overview")


@pytest.fixture(scope="session")
def rabbitmq_admin(services_env):
    return RabbitAdmin(services_env["QSB_RABBITMQ_MGMT_URL"])


class BrokerControl:
    """Stop and start our RabbitMQ node (same data dir, same queues) from a test."""

    name = "rabbitmq"

    def is_up(self):
        return devstack.is_up(self.name)

    def stop(self):
        devstack.stop(self.name)
        if devstack.is_up(self.name):
            pytest.fail("RabbitMQ is still up after stop", pytrace=False)

    def start(self, timeout=120):
        """Start the broker and return once AMQP and the management API answer."""
        try:
            devstack.start(self.name)
        except devstack.StackError as exc:
            pytest.fail(f"RabbitMQ did not restart: {exc}", pytrace=False)
        wait_for(self.is_up, timeout, "RabbitMQ did not become ready again")

    def restart(self):
        self.stop()
        self.start()


@pytest.fixture
def broker_control(services_env):
    control = BrokerControl()
    yield control
    if not control.is_up():  # leave the broker up for the next test
        control.start()


# ---------------------------------------------------------------------------------------
# Odoo
# ---------------------------------------------------------------------------------------


class OdooServer:
    """A real Odoo HTTP server (workers=0, no cron) on database `db` of the test stack."""

    name = "odoo-e2e"
    admin_login = "admin"
    admin_password = "admin"

    def __init__(self, conf, db, port, env, extra=()):
        self.conf, self.db, self.port, self.env = conf, db, port, env
        self.extra = list(extra)
        self.url = f"http://127.0.0.1:{port}"
        self.log = config.RUN / f"{self.name}.log"

    def start(self, timeout=180, env=None):
        """Start (or restart) the server and wait for /web/health; `env` replaces its env."""
        if env is not None:
            self.env = env
        try:
            odoo.start_server(
                self.conf,
                self.db,
                self.port,
                self.name,
                extra=["--max-cron-threads=0", *self.extra],
                env=self.env,
                timeout=timeout,
            )
        except devstack.StackError as exc:
            pytest.fail(f"Odoo server did not start: {exc}", pytrace=False)

    def stop(self):
        odoo.stop_server(self.name)

    def is_up(self):
        return odoo.health(self.port)


@contextmanager
def odoo_test_server(services_env, db, name="odoo-e2e", extra=()):
    """A real Odoo HTTP server on a fresh copy ``db`` of the test database, stopped at exit;
    skips (saying why) when no Odoo can be had. Suites that need a server of their own (the
    workers' fault tests) call it with another database and name; ``extra``: more Odoo
    options (e.g. ``--proxy-mode``)."""
    reason = odoo.unavailable_reason()
    if reason:
        pytest.skip(f"ODOO NOT AVAILABLE: {reason}")
    conf = Path(os.environ.get("QSB_ODOO_CONF") or config.RUN / "odoo-test.conf")
    src = os.environ.get("QSB_TEST_DB") or "qsb_test"
    if not postgres.database_exists(src):
        pytest.fail(
            f"test database {src} does not exist: run `make test` or `python tools/devstack test-prepare`",
            pytrace=False,
        )
    data_dir = next(
        (ln.split("=", 1)[1].strip() for ln in conf.read_text().splitlines() if ln.startswith("data_dir")),
        str(config.RUN / "odoo-test-data"),
    )
    try:
        odoo.copy_database(src, db, data_dir)
    except devstack.StackError as exc:
        pytest.fail(f"could not copy {src} to {db}: {exc}", pytrace=False)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "USER", "PASSWORD")},
        **services_env,
        "EVENT_BUS_SIGNING_KEY": os.environ.get("EVENT_BUS_SIGNING_KEY") or workers.signing_key(),
        # Opens the fixture addon's RPC helper (emit_for_test) on this server only.
        "QSB_TEST_FIXTURES": "1",
    }
    server = OdooServer(conf, db, free_port(), env, extra)
    server.name = name
    server.log = config.RUN / f"{name}.log"
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def odoo_server(services_env):
    """Session Odoo server on a fresh copy `qsb_e2e` of the test database."""
    with odoo_test_server(services_env, "qsb_e2e") as server:
        yield server


@pytest.fixture(name="wait_for")
def wait_for_fixture():
    """The :func:`wait_for` helper as a fixture."""
    return wait_for
