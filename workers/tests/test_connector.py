"""The connector against a tiny local XML-RPC server (a test double of Odoo's endpoints)."""

import socket
import socketserver
import threading
import xmlrpc.client
from xmlrpc.server import SimpleXMLRPCRequestHandler, SimpleXMLRPCServer

import pytest

from quicksol_workers.connector import OdooConnector
from quicksol_workers.outcome import TransientError, classify_exception


class _Handler(SimpleXMLRPCRequestHandler):
    rpc_paths = ("/xmlrpc/2/common", "/xmlrpc/2/object")
    protocol_version = "HTTP/1.1"  # keep-alive, like Odoo behind werkzeug


class _ThreadedServer(socketserver.ThreadingMixIn, SimpleXMLRPCServer):
    daemon_threads = True


@pytest.fixture
def fake_odoo():
    server = _ThreadedServer(("127.0.0.1", 0), requestHandler=_Handler, logRequests=False, allow_none=True)
    calls, connections = [], set()
    state = {"delay": 0}
    release = threading.Event()

    def authenticate(db, login, key, _ctx):
        calls.append(("authenticate", db, login))
        return 7 if key == "good-key" else False

    def execute_kw(db, uid, key, model, method, args, kwargs):
        calls.append((method, model, uid, args))
        if state["delay"]:
            release.wait(state["delay"])
        if method == "run_async":
            return {"status": "done", "error": False, "permanent": False}
        if method == "run_async_batch":
            return [{"status": "done", "error": False, "permanent": False} for _ in args[0]]
        raise xmlrpc.client.Fault(2, f"no method {method}")

    server.register_function(authenticate, "authenticate")
    server.register_function(lambda: {"server_version": "18.0"}, "version")
    server.register_function(execute_kw, "execute_kw")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", calls, connections, state
    release.set()
    server.shutdown()
    server.server_close()


def test_authenticates_once_and_calls_run_async(fake_odoo):
    url, calls, _conns, _state = fake_odoo
    connector = OdooConnector(url, "db", "event_bus_worker", "good-key", timeout=5)
    assert connector.run_async("e1", "x.obs")["status"] == "done"
    assert connector.run_async_batch([("e1", "x.obs"), ("e2", "x.obs")])[1]["status"] == "done"
    assert [c[0] for c in calls] == ["authenticate", "run_async", "run_async_batch"]
    assert calls[1] == ("run_async", "quicksol.event", 7, ["e1", "x.obs"])


def test_bad_key_is_a_clear_error(fake_odoo):
    url, *_ = fake_odoo
    connector = OdooConnector(url, "db", "event_bus_worker", "wrong", timeout=5)
    with pytest.raises(xmlrpc.client.Fault, match="refused login 'event_bus_worker'"):
        connector.run_async("e1", "x.obs")


def test_every_call_times_out(fake_odoo):
    url, _calls, _conns, state = fake_odoo
    connector = OdooConnector(url, "db", "event_bus_worker", "good-key", timeout=0.3)
    connector.authenticate()
    state["delay"] = 5
    with pytest.raises((socket.timeout, TimeoutError)) as info:
        connector.run_async("e1", "x.obs")
    assert isinstance(classify_exception(info.value), TransientError)


def test_unreachable_odoo_is_transient():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connector = OdooConnector(f"http://127.0.0.1:{port}", "db", "u", "k", timeout=1)
    with pytest.raises(OSError) as info:
        connector.run_async("e1", "x.obs")
    assert isinstance(classify_exception(info.value), TransientError)
