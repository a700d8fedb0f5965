"""The operators' doors: Flower (UI, API, /metrics), the RabbitMQ management API, and the
workers' Odoo API key once revoked. Without or with wrong credentials: refused."""

import os
import signal
import subprocess
import xmlrpc.client

import pytest
import requests

from .conftest import ROOT, Caller, counts, root_conftest, worker_environment

pytestmark = pytest.mark.integration

PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv/bin/python").exists() else "python3"
FLOWER_AUTH = ("ops", "flower-s3cret")
WRONG = [None, ("ops", "wrong"), ("admin", "admin"), ("guest", "guest"), ("", "")]


@pytest.fixture(scope="module")
def flower(security_server, services_env, admin, tmp_path_factory):
    key = admin("quicksol.event.bus", "generate_worker_api_key")
    port = root_conftest.free_port()
    env = {
        **worker_environment(security_server, services_env, key),
        "FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH),
    }
    log = tmp_path_factory.mktemp("flower") / "flower.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "quicksol_workers",
                "flower",
                "--address=127.0.0.1",
                f"--port={port}",
            ],
            env=env,
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"

    def answers():
        if proc.poll() is not None:
            raise AssertionError(f"Flower exited:\n{log.read_text()[-2000:]}")
        try:
            return requests.get(f"{base}/healthcheck", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        root_conftest.wait_for(answers, 60, "Flower did not answer")
        yield base
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


FLOWER_GETS = [
    "/",
    "/workers",
    "/tasks",
    "/broker",
    "/metrics",
    "/api/workers",
    "/api/tasks",
    "/api/task/types",
    "/api/queues/length",
]
FLOWER_POSTS = [
    "/api/task/async-apply/quicksol.deliver",
    "/api/task/send-task/quicksol.workers.cleanup",
    "/api/task/revoke/some-task",
    "/api/worker/shutdown/somebody@host",
    "/api/worker/pool/restart/somebody@host",
    "/api/task/rate-limit/somebody@host",
]


def test_flower_refuses_every_page_api_and_metrics_without_the_right_credentials(flower):
    for path in FLOWER_GETS:
        for auth in WRONG:
            response = requests.get(flower + path, auth=auth, timeout=30, allow_redirects=False)
            assert response.status_code == 401, (path, auth, response.status_code)
            assert "quicksol" not in response.text  # nothing of ours in the refusal
        assert requests.get(flower + path, auth=FLOWER_AUTH, timeout=30).status_code == 200, path
    for path in FLOWER_POSTS:
        for auth in WRONG:
            response = requests.post(flower + path, auth=auth, json={"args": [{}]}, timeout=30)
            assert response.status_code == 401, (path, auth, response.status_code)


def test_rabbitmq_management_api_refuses_unknown_and_default_credentials(services_env, rabbitmq_admin):
    base = rabbitmq_admin.base
    for path, method in (
        ("/api/overview", "GET"),
        ("/api/queues", "GET"),
        ("/api/definitions", "GET"),  # would list users and their password hashes
        ("/api/queues/%2F/audit_events/get", "POST"),
        ("/api/users/intruder", "PUT"),
        ("/api/exchanges/%2F/amq.default/publish", "POST"),
    ):
        for auth in WRONG:
            response = requests.request(method, base + path, auth=auth, json={}, timeout=30)
            assert response.status_code == 401, (path, auth, response.status_code)
    assert rabbitmq_admin.queue("audit_events") is not None  # the right credentials still work
    assert (
        requests.get(base + "/api/users/intruder", auth=("quicksol", "quicksol"), timeout=30).status_code
        == 404
    )


def test_a_revoked_worker_api_key_is_refused_at_once(admin, security_server):
    key = admin("quicksol.event.bus", "generate_worker_api_key")
    worker = Caller(security_server, "event_bus_worker", key)
    assert "quicksol.test.observer.async" in worker("quicksol.event", "observer_info")
    revoke_in_the_web_client(security_server, admin, worker.uid)
    before = counts(admin, **{"quicksol.event": [], "quicksol.event.delivery": [("state", "=", "dead")]})
    for call in (
        lambda: worker("quicksol.event", "observer_info"),
        lambda: worker("quicksol.event", "mark_dead", "x", "y", "z", 1),
        lambda: worker.jsonrpc("quicksol.event", "run_async_batch", [["x", "y"]]),
    ):
        with pytest.raises(Exception) as caught:
            call()
        assert "Access Denied" in str(caught.value) or "AccessDenied" in str(caught.value), caught.value
    common = xmlrpc.client.ServerProxy(f"{security_server.url}/xmlrpc/2/common", allow_none=True)
    assert common.authenticate(security_server.db, "event_bus_worker", key, {}) is False
    assert (
        counts(admin, **{"quicksol.event": [], "quicksol.event.delivery": [("state", "=", "dead")]}) == before
    )


def revoke_in_the_web_client(server, admin, user_id):
    """What an administrator does: the user form's "remove" button on each API key, which
    asks for the administrator's password first (res.users.identitycheck)."""
    session = requests.Session()

    def call(model, method, *args, **kwargs):
        response = session.post(
            f"{server.url}/web/dataset/call_kw",
            timeout=60,
            json={
                "jsonrpc": "2.0",
                "method": "call",
                "params": {"model": model, "method": method, "args": list(args), "kwargs": kwargs},
            },
        )
        body = response.json()
        assert "error" not in body, body["error"]
        return body["result"]

    login = session.post(
        f"{server.url}/web/session/authenticate",
        timeout=60,
        json={
            "jsonrpc": "2.0",
            "method": "call",
            "params": {"db": server.db, "login": "admin", "password": "admin"},
        },
    )
    assert login.json()["result"]["uid"] == admin.uid
    keys = admin("res.users.apikeys", "search", [("user_id", "=", user_id)])
    assert keys
    action = call("res.users.apikeys", "remove", keys)
    if action and action.get("res_model") == "res.users.identitycheck":
        call("res.users.identitycheck", "write", [action["res_id"]], {"password": "admin"})
        call("res.users.identitycheck", "run_check", [action["res_id"]])
    assert admin("res.users.apikeys", "search", [("user_id", "=", user_id)]) == []
