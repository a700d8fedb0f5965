"""Fixtures of the security suite: one Odoo server (``--proxy-mode``) on its own database copy,
callers of every kind, one worker consuming the three event queues, raw broker access.

Every attack runs against real processes: the server, RabbitMQ, Redis and a Celery worker.
The suite shares one server for all its modules and one worker per module, so it stays fast.
"""

import importlib.util
import json
import xmlrpc.client
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


root_conftest = _load("qsb_security_root_conftest", ROOT / "conftest.py")
workers_conftest = _load("qsb_security_workers_conftest", ROOT / "tests" / "workers" / "conftest.py")
WorkerProcess = workers_conftest.WorkerProcess
worker_environment = workers_conftest._worker_env


class Caller:
    """One user over XML-RPC (``/xmlrpc/2/object``) and JSON-RPC (``/jsonrpc``).

    ``password=None`` is the unauthenticated caller: it still sends a uid (the admin's) with
    a wrong password, as an attacker would.
    """

    def __init__(self, server, login, password, uid=None):
        self.server, self.login, self.password = server, login, password
        common = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/common", allow_none=True)
        self.uid = uid or common.authenticate(server.db, login, password, {})
        assert self.uid, f"cannot log in as {login}"
        self.object = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/object", allow_none=True)

    def xmlrpc(self, model, method, *args, **kwargs):
        return self.object.execute_kw(
            self.server.db, self.uid, self.password, model, method, list(args), kwargs
        )

    def jsonrpc(self, model, method, *args, **kwargs):
        """Returns the result, or raises ``JsonRpcError`` with Odoo's error data."""
        response = requests.post(
            f"{self.server.url}/jsonrpc",
            timeout=60,
            json={
                "jsonrpc": "2.0",
                "method": "call",
                "params": {
                    "service": "object",
                    "method": "execute_kw",
                    "args": [self.server.db, self.uid, self.password, model, method, list(args), kwargs],
                },
            },
        )
        body = response.json()
        if "error" in body:
            raise JsonRpcError(body["error"])
        return body["result"]

    __call__ = xmlrpc


class JsonRpcError(Exception):
    def __init__(self, error):
        data = error.get("data") or {}
        super().__init__(f"{data.get('name')}: {data.get('message') or error.get('message')}")
        self.name = data.get("name") or ""
        self.message = data.get("message") or error.get("message") or ""


@pytest.fixture(scope="session")
def security_server(services_env):
    """The suite's Odoo server: its own copy ``qsb_security`` of the test database, behind a
    (pretend) reverse proxy: ``--proxy-mode``."""
    with root_conftest.odoo_test_server(
        services_env, "qsb_security", "odoo-security", extra=["--proxy-mode"]
    ) as server:
        yield server
    _purge_work_queues(services_env)


def _purge_work_queues(services_env):
    """The broker is shared by every suite: leave no message of this suite's database for
    another suite's workers."""
    from kombu import Connection

    from quicksol_bus.topology import QUEUES

    with Connection(services_env["CELERY_BROKER_URL"]) as connection:
        channel = connection.channel()
        for spec in QUEUES.values():
            for name in (spec.name, spec.dead_queue):
                try:
                    channel.queue_purge(name)
                except Exception:  # noqa: BLE001 - a queue nobody declared yet holds nothing
                    channel = connection.channel()


@pytest.fixture(scope="session")
def admin(security_server):
    return Caller(security_server, "admin", "admin")


@pytest.fixture(scope="session")
def users(admin):
    """Logins of an internal user, a portal user, and owners, agents, auditors and event-bus
    managers of two estate companies (A and B, each in its own Odoo company)."""

    def ref(xmlid):
        module, name = xmlid.split(".")
        rows = admin(
            "ir.model.data", "search_read", [("module", "=", module), ("name", "=", name)], ["res_id"]
        )
        return rows[0]["res_id"]

    companies = {
        key: admin("res.company", "create", {"name": f"Security Co {key.upper()}"}) for key in ("a", "b")
    }
    estates = {
        key: admin(
            "real.estate.company", "create", {"name": f"Security Estate {key.upper()}", "code": f"SEC{key}"}
        )
        for key in ("a", "b")
    }
    internal = ref("base.group_user")
    made = {}

    def user(login, groups, company="a", estate=True):
        values = {
            "name": login,
            "login": login,
            "password": f"{login}-pw-1",
            "groups_id": [(6, 0, groups)],
            "company_id": companies[company],
            "company_ids": [(6, 0, [companies[company]])],
        }
        if estate:
            values["estate_company_ids"] = [(6, 0, [estates[company]])]
        made[login] = admin("res.users", "create", values, context={"quicksol_event_bus_disabled": True})

    user("sec_internal", [internal], estate=False)
    user("sec_portal", [ref("base.group_portal")], estate=False)
    for key in ("a", "b"):
        user(f"sec_owner_{key}", [internal, ref("quicksol_estate.group_real_estate_owner")], key)
        user(f"sec_agent_{key}", [internal, ref("quicksol_estate.group_real_estate_agent")], key)
        user(f"sec_auditor_{key}", [internal, ref("quicksol_estate.group_real_estate_auditor")], key)
        user(
            f"sec_manager_{key}",
            [
                internal,
                ref("quicksol_event_bus.group_event_bus_manager"),
                ref("quicksol_estate.group_real_estate_auditor"),
            ],
            key,
        )
    return {"ids": made, "companies": companies, "estates": estates}


@pytest.fixture(scope="session")
def login(security_server, users):
    """``login("sec_owner_a")`` -> a :class:`Caller` for that user."""
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = Caller(security_server, name, f"{name}-pw-1")
        return cache[name]

    return get


@pytest.fixture(scope="session")
def anonymous(security_server, admin):
    """The unauthenticated caller: the admin's uid with a wrong password."""
    return Caller(security_server, "admin", "not-the-password", uid=admin.uid)


@pytest.fixture(scope="session")
def signing_key(security_server):
    return security_server.env["EVENT_BUS_SIGNING_KEY"]


def counts(admin, **domains):
    """Rows of each model (sudo-free: the admin sees every company's)."""
    return {
        model: admin(model, "search_count", domain, context={"allowed_company_ids": _all_companies(admin)})
        for model, domain in domains.items()
    }


def _all_companies(admin):
    return admin("res.company", "search", [])


def decode_headers(message):
    """Headers of a message fetched with the management API."""
    return (message.get("properties") or {}).get("headers") or {}


def decode_body(message):
    return json.loads(message["payload"])
