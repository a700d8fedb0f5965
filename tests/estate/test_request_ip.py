"""The audit trail over a real Odoo HTTP server: the client's IP is captured at emit time and
reaches the audit row that the worker API writes later, outside any request."""

import json
import xmlrpc.client

import pytest
import requests

from tests.bus.test_bus_server import Rpc

pytestmark = pytest.mark.integration

AUDIT = "quicksol.observer.security.group.audit"


def web_client_call(session, url, model, method, *args):
    """What the web client does: JSON-RPC /web/dataset/call_kw in a logged-in session."""
    response = session.post(
        f"{url}/web/dataset/call_kw",
        timeout=60,
        json={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"model": model, "method": method, "args": list(args), "kwargs": {}},
        },
    )
    response.raise_for_status()
    body = response.json()
    assert "error" not in body, body.get("error")
    return body["result"]


def test_audit_row_carries_the_client_ip_and_the_acting_user(odoo_server):
    admin = Rpc(odoo_server)
    company = admin("real.estate.company", "create", {"name": "Http Estate", "code": "HTTPIP"})
    # The web client's JSON-RPC, not XML-RPC: Odoo hides the request from RPC services.
    session = requests.Session()
    login = session.post(
        f"{odoo_server.url}/web/session/authenticate",
        timeout=60,
        json={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"db": odoo_server.db, "login": "admin", "password": "admin"},
        },
    )
    assert login.json().get("result", {}).get("uid") == admin.uid
    prop_id = web_client_call(
        session,
        odoo_server.url,
        "real.estate.property",
        "create",
        {"name": "Over HTTP", "estate_company_id": company},
    )
    events = admin(
        "quicksol.event",
        "search_read",
        [("name", "=", "property.created")],
        ["uuid", "res_ids", "payload_text"],
        order="id desc",
        limit=1,
    )
    assert events and events[0]["res_ids"] == [prop_id]
    assert json.loads(events[0]["payload_text"])["ip_address"] == "127.0.0.1"
    key = admin("quicksol.event.bus", "generate_worker_api_key")
    worker = Rpc(odoo_server, login="event_bus_worker", password=key)
    assert worker("quicksol.event", "run_async", events[0]["uuid"], AUDIT)["status"] == "done"
    rows = admin(
        "quicksol.audit.log",
        "search_read",
        [("event_name", "=", "property.created"), ("res_id", "=", prop_id)],
        ["ip_address", "user_id"],
    )
    assert len(rows) == 1
    assert rows[0]["ip_address"] == "127.0.0.1"
    assert rows[0]["user_id"][0] == admin.uid
    assert worker("quicksol.event", "run_async", events[0]["uuid"], AUDIT)["status"] == ("already_done")
    with pytest.raises(xmlrpc.client.Fault):
        admin("quicksol.audit.log", "unlink", [rows[0]["id"]])
