"""The event bus in a real Odoo HTTP server with the real RabbitMQ: what users see over RPC."""

import json
import xmlrpc.client

import pytest
from kombu import Connection

from quicksol_bus.topology import kombu_queues

pytestmark = pytest.mark.integration


class Rpc:
    """XML-RPC as a given user (admin by default) on the test server."""

    def __init__(self, server, login="admin", password="admin"):
        self.db = server.db
        common = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/common", allow_none=True)
        self.uid = common.authenticate(self.db, login, password, {})
        assert self.uid, f"cannot log in as {login}"
        self.password = password
        self.proxy = xmlrpc.client.ServerProxy(f"{server.url}/xmlrpc/2/object", allow_none=True)

    def __call__(self, model, method, *args, **kwargs):
        return self.proxy.execute_kw(self.db, self.uid, self.password, model, method, list(args), kwargs)


@pytest.fixture
def rpc(odoo_server):
    return Rpc(odoo_server)


@pytest.fixture
def broker(services_env):
    """A channel on the real broker, every work queue purged before and after the test."""
    connection = Connection(services_env["CELERY_BROKER_URL"])
    connection.connect()
    channel = connection.channel()
    for queue in kombu_queues():
        queue(channel).declare()
        channel.queue_purge(queue.name)
    yield connection
    connection.close()


def queue_messages(connection, queue):
    """Take every message of ``queue`` (acked): [(task id, envelope)]."""
    channel = connection.channel()
    taken = []
    while (message := channel.basic_get(queue, no_ack=True)) is not None:
        args = json.loads(message.body)[0]
        taken.append((message.properties["application_headers"]["id"], args[0]))
    return taken


def test_installing_and_uninstalling_an_observer_addon_takes_effect_without_restart(rpc):
    extra = "quicksol.test.observer.extra"

    def extra_logs():
        return rpc("quicksol.test.log", "search_count", [("observer", "=", extra)])

    module = rpc("ir.module.module", "search", [("name", "=", "test_quicksol_event_bus_extra")])
    assert rpc("ir.module.module", "read", module, ["state"])[0]["state"] == "installed"
    start = extra_logs()
    rpc("quicksol.test.record", "create", {"name": "before uninstall"})
    assert extra_logs() == start + 1
    rpc("ir.module.module", "button_immediate_uninstall", module)
    assert rpc("ir.module.module", "read", module, ["state"])[0]["state"] == "uninstalled"
    rpc("quicksol.test.record", "create", {"name": "while uninstalled"})
    assert extra_logs() == start + 1  # the log model stays (another addon's); no new line
    rpc("ir.module.module", "button_immediate_install", module)
    rpc("quicksol.test.record", "create", {"name": "after install"})
    assert extra_logs() == start + 2


def test_a_rolled_back_request_publishes_nothing(rpc, broker):
    record_id = rpc("quicksol.test.record", "create", {"name": "will fail"})
    queue_messages(broker, "audit_events")  # the create's own event
    with pytest.raises(xmlrpc.client.Fault, match="failing on purpose"):
        rpc("quicksol.test.record", "action_emit_then_fail", [record_id])
    assert queue_messages(broker, "audit_events") == []
    assert queue_messages(broker, "commission_events") == []
    assert rpc("quicksol.event", "search_count", [("name", "=", "testrec.custom")]) == 0


def test_committed_save_is_published_with_its_event_id(rpc, broker):
    record_id = rpc("quicksol.test.record", "create", {"name": "published"})
    events = rpc(
        "quicksol.event",
        "search_read",
        [("res_ids", "!=", False)],
        ["uuid", "name", "state", "res_ids"],
        order="id desc",
        limit=1,
    )
    assert events[0]["name"] == "testrec.created" and events[0]["res_ids"] == [record_id]
    assert events[0]["state"] == "queued"
    messages = queue_messages(broker, "audit_events")
    assert [task_id for task_id, _envelope in messages] == [
        f"{events[0]['uuid']}:quicksol.test.observer.async"
    ]


@pytest.fixture
def relay_takes_everything(rpc):
    """The relay takes pending rows at once (not after 10 s), for this test only."""
    key = "quicksol_event_bus.relay_min_age"
    previous = rpc("ir.config_parameter", "get_param", key)
    rpc("ir.config_parameter", "set_param", key, "0")
    yield
    rpc("ir.config_parameter", "set_param", key, previous or False)


def test_broker_down_saves_succeed_then_the_relay_publishes_each_event_once(
    rpc, broker, broker_control, relay_takes_everything
):
    broker_control.stop()
    created = [rpc("quicksol.test.record", "create", {"name": f"down {n}"}) for n in range(3)]
    assert len(created) == 3  # every save succeeded with the broker down
    pending = rpc(
        "quicksol.event.delivery",
        "search_read",
        [("state", "=", "pending"), ("event_id.name", "=", "testrec.created")],
        ["event_uuid", "observer"],
    )
    assert len(pending) == 3
    broker_control.start()
    relay = rpc("ir.model.data", "check_object_reference", "quicksol_event_bus", "ir_cron_relay")
    rpc("ir.cron", "method_direct_trigger", [relay[1]])
    rpc("ir.cron", "method_direct_trigger", [relay[1]])  # a second run finds nothing to do
    connection = Connection(broker.as_uri(include_password=True))
    messages = queue_messages(connection, "audit_events")
    connection.close()
    expected = {f"{p['event_uuid']}:{p['observer']}" for p in pending}
    assert sorted(task_id for task_id, _envelope in messages) == sorted(expected)
    states = rpc("quicksol.event.delivery", "read", [p["id"] for p in pending], ["state"])
    assert {s["state"] for s in states} == {"queued"}
