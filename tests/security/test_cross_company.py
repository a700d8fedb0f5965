"""A user of estate company A against company B's data, and owners against the user admin:
every read or write across the wall is refused, nothing is written."""

import json
import xmlrpc.client

import pytest
import requests

from .conftest import Caller, JsonRpcError, counts

pytestmark = pytest.mark.integration

AUDIT = "quicksol.observer.security.group.audit"


@pytest.fixture(scope="module")
def estate(admin, login, users, security_server):
    """Per company: a property its owner created (so its event and audit row belong to the
    owner's company), an agent and a commission line."""
    key = admin("quicksol.event.bus", "generate_worker_api_key")
    worker = Caller(security_server, "event_bus_worker", key)
    data = {}
    for company in ("a", "b"):
        estate_id = users["estates"][company]
        owner = login(f"sec_owner_{company}")
        prop = owner(
            "real.estate.property", "create", {"name": f"Secret {company}", "estate_company_id": estate_id}
        )
        agent = admin(
            "real.estate.agent",
            "create",
            {
                "name": f"Agent {company}",
                "user_id": users["ids"][f"sec_agent_{company}"],
                "estate_company_id": estate_id,
            },
        )
        commission = admin(
            "real.estate.commission.transaction",
            "create",
            {"property_id": prop, "agent_id": agent, "amount": 1000.0},
        )
        (event,) = admin(
            "quicksol.event",
            "search_read",
            [("name", "=", "property.created"), ("model", "=", "real.estate.property")],
            ["uuid", "delivery_ids", "company_id", "res_ids"],
            order="id desc",
            limit=1,
            context={"allowed_company_ids": admin("res.company", "search", [])},
        )
        assert event["res_ids"] == [prop]
        assert event["company_id"][0] == users["companies"][company]
        assert worker("quicksol.event", "run_async", event["uuid"], AUDIT)["status"] == "done"
        (audit,) = admin(
            "quicksol.audit.log",
            "search",
            [("model", "=", "real.estate.property"), ("res_id", "=", prop)],
            context={"allowed_company_ids": admin("res.company", "search", [])},
        )
        data[company] = {
            "real.estate.property": prop,
            "real.estate.commission.transaction": commission,
            "real.estate.agent": agent,
            "quicksol.event": event["id"],
            "quicksol.event.delivery": event["delivery_ids"][0],
            "quicksol.audit.log": audit,
        }
    return data


READERS = ["sec_owner_a", "sec_agent_a", "sec_auditor_a", "sec_manager_a"]


def _refused(call, *args):
    try:
        call(*args)
    except (xmlrpc.client.Fault, JsonRpcError) as error:
        return str(error)
    pytest.fail("the call was accepted")


@pytest.mark.parametrize("who", READERS)
def test_company_a_sees_nothing_of_company_b(estate, login, who):
    caller = login(who)
    for model, b_id in estate["b"].items():
        found = _search_or_refused(caller, model, b_id)
        assert b_id not in found, (who, model)
        text = _refused(caller.xmlrpc, model, "read", [b_id], ["display_name"])
        assert "top-secret" in text or "not allowed" in text or "access" in text.lower(), text[-300:]
        _refused(caller.jsonrpc, model, "read", [b_id], ["display_name"])


def _search_or_refused(caller, model, record_id):
    try:
        return caller(model, "search", [("id", "=", record_id)])
    except xmlrpc.client.Fault:
        return []  # no read right at all on that model: refused is also "sees nothing"


def test_a_manager_of_company_a_reads_his_own_events_and_audit_rows(estate, login):
    manager = login("sec_manager_a")
    assert manager("quicksol.event", "search", [("id", "=", estate["a"]["quicksol.event"])]) == [
        estate["a"]["quicksol.event"]
    ]
    assert manager("quicksol.audit.log", "search", [("id", "=", estate["a"]["quicksol.audit.log"])])
    payloads = manager("quicksol.event", "search_read", [], ["payload_text"])
    assert all("Secret b" not in json.dumps(row) for row in payloads)


@pytest.mark.parametrize("who", ["sec_owner_a", "sec_agent_a"])
def test_company_a_writes_nothing_of_company_b(admin, estate, login, who):
    caller = login(who)
    before = admin(
        "real.estate.property", "read", [estate["b"]["real.estate.property"]], ["name", "sale_price"]
    )
    b = estate["b"]
    for model, values in (
        ("real.estate.property", {"name": "Taken over"}),
        ("real.estate.commission.transaction", {"amount": 1.0}),
        ("real.estate.agent", {"name": "Taken over"}),
    ):
        _refused(caller, model, "write", [b[model]], values)
        _refused(caller, model, "unlink", [b[model]])
    # nor move a record of A into B
    _refused(
        lambda: caller(
            "real.estate.property",
            "write",
            [estate["a"]["real.estate.property"]],
            {"estate_company_id": _b_estate(admin, b)},
        )
    )
    assert (
        admin("real.estate.property", "read", [b["real.estate.property"]], ["name", "sale_price"]) == before
    )


def _b_estate(admin, b):
    return admin("real.estate.property", "read", [b["real.estate.property"]], ["estate_company_id"])[0][
        "estate_company_id"
    ][0]


def test_an_owner_grants_neither_administration_nor_a_foreign_company(admin, login, users):
    owner = login("sec_owner_a")
    before = counts(admin, **{"res.users": [("active", "in", [True, False])]})
    own, foreign = users["estates"]["a"], users["estates"]["b"]
    system = admin(
        "ir.model.data", "search_read", [("module", "=", "base"), ("name", "=", "group_system")], ["res_id"]
    )[0]["res_id"]
    attempts = [
        ({"estate_company_ids": [foreign], "roles": ["agent"]}, "estate companies you belong to"),
        ({"estate_company_ids": [own, foreign], "roles": ["agent"]}, "estate companies you belong to"),
        ({"estate_company_ids": [own], "roles": ["admin"]}, "roles an owner may grant"),
        ({"estate_company_ids": [own], "roles": ["owner"]}, "roles an owner may grant"),
        ({"estate_company_ids": [own], "roles": [system]}, "roles an owner may grant"),
        (
            {"estate_company_ids": [own], "roles": ["agent"], "groups_id": [(4, system)]},
            "owners may only set",
        ),
        (
            {"estate_company_ids": [own], "roles": ["agent"], "company_ids": [(6, 0, [1])]},
            "owners may only set",
        ),
    ]
    for extra, reason in attempts:
        values = {"name": "Intruder", "login": "sec_intruder", **extra}
        for transport in ("xmlrpc", "jsonrpc"):
            text = _refused(getattr(owner, transport), "res.users", "create_estate_user", values)
            assert reason in text, text[-400:]
    # the plain ways stay closed: create a user, or give oneself Administration
    _refused(lambda: owner("res.users", "create", {"name": "Intruder", "login": "sec_intruder"}))
    _refused(lambda: owner("res.users", "write", [owner.uid], {"groups_id": [(4, system)]}))
    _refused(lambda: owner("res.users", "write", [owner.uid], {"estate_company_ids": [(4, foreign)]}))
    assert counts(admin, **{"res.users": [("active", "in", [True, False])]}) == before
    assert not admin("res.users", "search", [("id", "=", owner.uid), ("groups_id", "in", [system])])
    # ... and the allowed way works: an agent of his own company, over XML-RPC
    new_id = owner(
        "res.users",
        "create_estate_user",
        {"name": "Agent A2", "login": "sec_agent_a2", "estate_company_ids": [own], "roles": ["agent"]},
    )
    (new,) = admin("res.users", "read", [new_id], ["estate_company_ids", "groups_id", "company_id"])
    assert new["estate_company_ids"] == [own]
    assert system not in new["groups_id"]


def _rpc_with_headers(server, admin, headers, name, estate_id):
    body = xmlrpc.client.dumps(
        (
            server.db,
            admin.uid,
            "admin",
            "real.estate.property",
            "create",
            [{"name": name, "estate_company_id": estate_id}],
            {},
        ),
        "execute_kw",
        allow_none=True,
    )
    response = requests.post(
        f"{server.url}/xmlrpc/2/object",
        data=body,
        headers={"Content-Type": "text/xml", **headers},
        timeout=60,
    )
    response.raise_for_status()
    (result,), _method = xmlrpc.client.loads(response.content)
    return result


def test_behind_a_proxy_the_forwarded_client_address_is_recorded(admin, security_server, users):
    """--proxy-mode: Odoo trusts X-Forwarded-For when the proxy also sends X-Forwarded-Host."""
    estate_id = users["estates"]["a"]

    def recorded_ip(prop_id):
        (event,) = admin(
            "quicksol.event",
            "search_read",
            [("name", "=", "property.created")],
            ["payload_text", "res_ids"],
            order="id desc",
            limit=1,
        )
        assert event["res_ids"] == [prop_id]
        return json.loads(event["payload_text"])["ip_address"]

    forwarded = {
        "X-Forwarded-For": "203.0.113.50",
        "X-Forwarded-Host": "estate.example",
        "X-Forwarded-Proto": "https",
    }
    assert (
        recorded_ip(_rpc_with_headers(security_server, admin, forwarded, "Via proxy", estate_id))
        == "203.0.113.50"
    )
    direct = _rpc_with_headers(security_server, admin, {}, "Direct", estate_id)
    assert recorded_ip(direct) == "127.0.0.1"
