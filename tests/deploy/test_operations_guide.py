"""The shell commands of docs/operations.md run against the test stack.

Every ``sh`` block of the guide is marked ``<!-- tested -->`` (run here), ``<!-- tested:
preamble -->`` (run before each tested block) or ``<!-- not tested: why -->``. A tested block
runs in ``bash -euo pipefail`` from a copy of the checkout's ``compose/`` folder, with a
``compose/.env`` that points at the test stack. There is no Docker engine here, so ``docker``
is a small stand-in that only knows ``docker compose exec [-T] SERVICE CMD...`` and runs CMD on
this machine the way it would run in that service's container: ``rabbitmqctl`` against the
test node, ``psql`` and ``pg_dump`` against the test PostgreSQL, ``redis-cli`` against the
test Redis, ``python`` and ``celery`` with the workers' environment. The services answering
are the real ones.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import devstack
from devstack import config as devstack_config
from devstack import odoo as devstack_odoo
from devstack import rabbitmq as devstack_rabbitmq
from devstack import workers as devstack_workers

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "operations.md"
BLOCK = re.compile(r"^(?P<marker><!--[^\n]*-->\n)?```sh\n(?P<body>.*?)^```$", re.M | re.S)

DOCKER_SHIM = '''\
"""docker compose exec, for the operations guide's tests (see test_operations_guide.py)."""
import json, os, sys
args = sys.argv[1:]
if args[:1] != ["compose"]:
    sys.exit(f"docker stand-in: only `docker compose exec` is available here, not {args}")
args = args[1:]
while args and args[0] in ("-f", "--file", "--env-file", "-p", "--project-name"):
    args = args[2:]
if args[:1] != ["exec"]:
    sys.exit(f"docker stand-in: only `docker compose exec` is available here, not {args}")
args = args[1:]
while args and args[0].startswith("-"):
    args = args[1:]
service, command = args[0], args[1:]
services = json.load(open(os.environ["QSB_DOCKER_SHIM"]))
name = "worker" if service.startswith("worker-") else service
if name not in services:
    sys.exit(f"docker stand-in: no service {service!r}")
spec = services[name]
program = spec["commands"].get(command[0])
if program is None:
    sys.exit(f"docker stand-in: {service} has no command {command[0]!r}")
env = {**os.environ, **spec.get("env", {})}
# Like the odoo image's entrypoint, which appends the database options to the command.
os.execvpe(program[0], [*program, *command[1:], *spec.get("append", [])], env)
'''


def _outside_blocks(text):
    """``text`` without its fenced blocks (a ``# comment`` in a block is no heading)."""
    return re.sub(r"^```.*?^```$", "", text, flags=re.M | re.S)


def _blocks():
    text = GUIDE.read_text()
    blocks = []
    for match in BLOCK.finditer(text):
        heading = re.findall(r"^#{1,4} (\S.+)$", _outside_blocks(text[: match.start()]), re.M)
        blocks.append(
            {
                "marker": (match.group("marker") or "").strip(),
                "body": match.group("body"),
                "where": heading[-1] if heading else "top",
                "line": text[: match.start()].count("\n") + 1,
            }
        )
    return blocks


def _tested():
    return [b for b in _blocks() if b["marker"] == "<!-- tested -->"]


def test_every_shell_block_says_whether_it_is_tested():
    blocks = _blocks()
    assert blocks, "no shell block found in docs/operations.md"
    for block in blocks:
        marker = block["marker"]
        assert marker in ("<!-- tested -->", "<!-- tested: preamble -->") or re.fullmatch(
            r"<!-- not tested: \S.{10,} -->", marker
        ), f"docs/operations.md line {block['line']} ({block['where']}): mark the block tested or say why not"
    assert sum(b["marker"] == "<!-- tested: preamble -->" for b in blocks) == 1
    assert len(_tested()) >= 10


@pytest.fixture(scope="module")
def guide_env(tmp_path_factory, services_env, odoo_server):
    """A copy of compose/ with a .env for the test stack, and the docker stand-in on PATH."""
    root = tmp_path_factory.mktemp("guide")
    shutil.copytree(ROOT / "compose", root / "compose", ignore=shutil.ignore_patterns(".env"))
    mgmt = urlsplit(services_env["QSB_RABBITMQ_MGMT_URL"])
    (root / "compose" / ".env").write_text(
        "\n".join(
            [
                f"RABBITMQ_DEFAULT_USER={devstack_config.AMQP_USER}",
                f"RABBITMQ_DEFAULT_PASS={devstack_config.AMQP_PASSWORD}",
                f"RABBITMQ_MANAGEMENT_PORT={mgmt.port}",
                f"ODOO_PORT={odoo_server.port}",
                f"ODOO_DB={odoo_server.db}",
                "FLOWER_BASIC_AUTH=admin:not-used-here",
            ]
        )
        + "\n"
    )
    workers_env = {
        "CELERY_BROKER_URL": services_env["CELERY_BROKER_URL"],
        "CELERY_RESULT_BACKEND": services_env["CELERY_RESULT_BACKEND"],
        "ODOO_URL": odoo_server.url,
        "ODOO_DB": odoo_server.db,
        "ODOO_USER": devstack_workers.WORKER_LOGIN,
        "ODOO_API_KEY": devstack_workers.odoo_api_key(odoo_server.url, odoo_server.db),
        "EVENT_BUS_SIGNING_KEY": devstack_workers.signing_key(),
    }
    sbin = devstack_rabbitmq.SBIN
    node = devstack_config.rabbitmq_node()
    local = ["-h", "127.0.0.1", "-p", str(devstack_config.port("pg"))]
    services = {
        "rabbitmq": {
            "commands": {
                name: [str(sbin / name), "-n", node] for name in ("rabbitmqctl", "rabbitmq-diagnostics")
            },
            "env": devstack_rabbitmq.server_env(),
        },
        "redis": {
            "commands": {
                "redis-cli": ["redis-cli", "-h", "127.0.0.1", "-p", str(devstack_config.port("redis"))]
            }
        },
        "postgres": {
            "commands": {
                name: [name, *local] for name in ("psql", "pg_dump", "pg_restore", "createdb", "dropdb")
            },
            "env": {"PGPASSWORD": devstack_config.PG_PASSWORD},
        },
        "worker": {
            "commands": {"python": [sys.executable], "celery": [sys.executable, "-m", "celery"]},
            "env": workers_env,
        },
        "odoo": {
            "commands": {"odoo": [devstack_odoo.python(), "-m", "odoo"]},
            "append": ["-c", str(odoo_server.conf)],
            "env": {"PYTHONPATH": ""},
        },
    }
    (root / "shim.json").write_text(json.dumps(services))
    bin_dir = root / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(f"#!{sys.executable}\n{DOCKER_SHIM}")
    docker.chmod(0o755)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("HOST", "PORT", "USER", "PASSWORD")},
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "QSB_DOCKER_SHIM": str(root / "shim.json"),
        "ODOO_ADMIN_PASSWORD": odoo_server.admin_password,
    }
    return {"root": root, "env": env, "workers_env": workers_env}


@pytest.fixture(scope="module")
def a_worker(guide_env):
    """One real worker (the periodic jobs' queue), so that ping and inspect get an answer."""
    log = guide_env["root"] / "worker.log"
    node = f"quicksol_maintenance-guide@{socket.gethostname()}"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "quicksol_workers", "worker", "-Q", "quicksol_maintenance",
             "-c", "1", "-n", node, "--loglevel=INFO"],
            cwd=ROOT, env={**guide_env["env"], **guide_env["workers_env"]}, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        try:
            devstack.wait_for(
                lambda: worker.poll() is None and " ready." in log.read_text(errors="replace"),
                90,
                lambda: f"worker not ready:\n{log.read_text(errors='replace')[-2000:]}",
            )
        except devstack.StackError as exc:
            pytest.fail(str(exc), pytrace=False)
        yield node
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


def _preamble():
    return next(b["body"] for b in _blocks() if b["marker"] == "<!-- tested: preamble -->")


@pytest.mark.parametrize("block", _tested(), ids=lambda b: f"line{b['line']}")
def test_the_guide_command_runs(block, guide_env, a_worker):
    script = f"{_preamble()}\n{block['body']}"
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=guide_env["root"],
        env=guide_env["env"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    shown = (
        f"docs/operations.md line {block['line']} ({block['where']}):\n{textwrap.indent(block['body'], '  ')}"
    )
    assert result.returncode == 0, (
        f"{shown}\nexit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    )
    assert result.stdout.strip(), f"{shown}\nprinted nothing"
    compose = guide_env["root"] / "compose"
    if "export_definitions" in block["body"]:
        for name in ("broker-definitions.json", "broker-definitions-ctl.json"):
            queues = {q["name"] for q in json.loads((compose / name).read_text())["queues"]}
            assert {"commission_events", "audit_events.dead"} <= queues, name
    if "pg_dump" in block["body"]:
        dump = next(compose.glob("odoo-*.dump"))
        assert dump.read_bytes()[:5] == b"PGDMP", "not a pg_dump custom-format file"
    if "generate_worker_api_key" in block["body"]:
        assert re.fullmatch(r"[0-9a-f]{40}", result.stdout.strip().splitlines()[-1]), result.stdout
    if "res.users.apikeys" in block["body"]:
        assert "event_bus_worker API keys left: 1" in result.stdout, result.stdout
    if "quicksol_workers.health" in block["body"]:
        assert "ok   worker:" in result.stdout and "FAIL" not in result.stdout, result.stdout
