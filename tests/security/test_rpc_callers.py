"""Internal, portal and unauthenticated callers against every public method of the bus models,
over XML-RPC and JSON-RPC: each call is refused with its reason, and nothing is written."""

import xmlrpc.client

import pytest

from .conftest import Caller, JsonRpcError, counts

pytestmark = pytest.mark.integration

ASYNC = "quicksol.test.observer.async"
COMMISSION = "quicksol.test.observer.commission"
PRIVATE = "Private methods"  # Odoo's refusal of @api.private and _underscore methods
WORKER_ONLY = "reserved to the group quicksol_event_bus.group_event_bus_worker"
MANAGER_ONLY = "reserved to the group quicksol_event_bus.group_event_bus_manager"
NO_ACCESS = "You are not allowed to"


@pytest.fixture(scope="module")
def target(admin):
    """A real event with two queued deliveries that an attacker would like to run or bury."""
    first = admin("quicksol.test.record", "emit_for_test", "testrec.custom", {"res_ids": [1]})
    second = admin("quicksol.test.record", "emit_for_test", "testrec.custom", {"res_ids": [2]})
    event_id = admin("quicksol.event", "search", [("uuid", "=", first)])[0]
    delivery_ids = admin("quicksol.event.delivery", "search", [("event_id", "=", event_id)])
    return {"uuid": first, "other": second, "event_id": event_id, "delivery_ids": delivery_ids}


def calls(t):
    """(model, method, args, the refusal an authenticated non-worker gets)."""
    pair = [t["uuid"], ASYNC]
    return [
        ("quicksol.event.bus", "emit", ["testrec.custom", {"res_ids": [9]}], PRIVATE),
        ("quicksol.event", "_buffer_outbox", [{}], PRIVATE),
        (
            "quicksol.event.bus",
            "generate_worker_api_key",
            [],
            "Only administrators can create worker API keys",
        ),
        ("quicksol.event", "run_async", pair, WORKER_ONLY),
        ("quicksol.event", "run_async_batch", [[pair]], WORKER_ONLY),
        ("quicksol.event", "mark_dead", [*pair, "buried", 1], WORKER_ONLY),
        ("quicksol.event", "mark_coalesced", [*pair, t["other"]], WORKER_ONLY),
        ("quicksol.event", "confirm_dead_letter", [*pair, "buried", 1], WORKER_ONLY),
        ("quicksol.event", "observer_info", [], WORKER_ONLY),
        ("quicksol.event", "purge_done", [1], WORKER_ONLY),
        ("quicksol.event", "_insert_outbox_rows", [[]], PRIVATE),
        ("quicksol.event", "mark_expired", [*pair, 1], WORKER_ONLY),
        ("quicksol.event", "action_requeue", [[t["event_id"]]], MANAGER_ONLY),
        ("quicksol.event", "action_run_inline", [[t["event_id"]]], MANAGER_ONLY),
        (
            "quicksol.event",
            "create",
            [{"uuid": "forged", "name": "a.b"}],
            "Events are created by the event bus only",
        ),
        ("quicksol.event", "write", [[t["event_id"]], {"payload": {}}], "Events cannot be edited"),
        ("quicksol.event", "unlink", [[t["event_id"]]], NO_ACCESS),
        ("quicksol.event.delivery", "write", [t["delivery_ids"], {"state": "done"}], ""),
        ("quicksol.event.delivery", "action_requeue", [t["delivery_ids"]], ""),
        ("quicksol.event.delivery", "unlink", [t["delivery_ids"]], ""),
        (ASYNC, "handle", ["testrec.custom", {"res_ids": [9]}], PRIVATE),
        (ASYNC, "handle_async", ["testrec.custom", {"res_ids": [9]}], PRIVATE),
        (ASYNC, "handle_async_batch", [[["testrec.custom", {"res_ids": [9]}]]], PRIVATE),
        (
            "quicksol.test.record",
            "emit_for_test",
            ["testrec.custom", {"res_ids": [9]}],
            "reserved to administrators",
        ),
        ("quicksol.audit.log", "create", [{"event_name": "forged", "timestamp": "2026-01-01 00:00:00"}], ""),
    ]


def snapshot(admin, t):
    state = admin(
        "quicksol.event.delivery",
        "read",
        t["delivery_ids"],
        ["state", "attempts", "last_error", "run_mode", "publish_attempt"],
    )
    return (
        state,
        counts(
            admin,
            **{
                "quicksol.event": [],
                "quicksol.audit.log": [],
                "quicksol.test.log": [],
                "res.users.apikeys": [],
            },
        ),
    )


def _refused(reason, call, *args):
    try:
        call(*args)
    except xmlrpc.client.Fault as fault:
        text = str(fault.faultString)
    except JsonRpcError as error:
        text = f"{error.name}: {error.message}"
    else:
        pytest.fail("the call was accepted")
    reasons = reason if isinstance(reason, tuple) else (reason,)
    assert any(r in text for r in reasons), text[-600:]
    return text


@pytest.mark.parametrize("who", ["sec_internal", "sec_portal", "sec_manager_a"])
@pytest.mark.parametrize("transport", ["xmlrpc", "jsonrpc"])
def test_authenticated_non_workers_are_refused_every_bus_method(admin, login, target, who, transport):
    caller = login(who)
    before = snapshot(admin, target)
    for model, method, args, reason in calls(target):
        if who == "sec_manager_a" and (reason == MANAGER_ONLY or method == "unlink"):
            # managers may requeue, run inline and delete finished events, but not this
            # event of another company: refused by the record rules, whatever the wording
            reason = ""
        _refused(reason, getattr(caller, transport), model, method, *args)
    assert snapshot(admin, target) == before


@pytest.mark.parametrize("transport", ["xmlrpc", "jsonrpc"])
def test_unauthenticated_callers_are_refused_before_any_method(
    admin, anonymous, security_server, target, transport
):
    """A wrong password (slow: Odoo hashes it) once, then every method as a uid that does not
    exist, which Odoo refuses just the same, without hashing."""
    nobody = Caller(security_server, "nobody", "guess", uid=987654321)
    before = snapshot(admin, target)
    _refused(
        "Access Denied", getattr(anonymous, transport), "quicksol.event", "run_async", target["uuid"], ASYNC
    )
    for model, method, args, _reason in calls(target):
        _refused(("Access Denied", "does not exist"), getattr(nobody, transport), model, method, *args)
    assert snapshot(admin, target) == before


def test_the_only_public_answer_is_the_list_of_queue_names(login):
    """``queue_names`` is public on purpose (the admin UI's filter): names, nothing else."""
    assert login("sec_portal")("quicksol.event", "queue_names") == [
        "audit_events",
        "commission_events",
        "notification_events",
    ]
