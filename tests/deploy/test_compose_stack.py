"""The compose stack is valid and says what the code says: one source of truth.

Queues, concurrency and replicas come from ``quicksol_bus.topology``; worker commands are the
ones ``make worker`` runs (``devstack.workers.worker_cmd``); variables are those of
``workers/quicksol_workers/config.py`` and ``lib/quicksol_bus/settings.py``; every variable
the files use is in ``compose/.env.example``.
"""

import re
from urllib.parse import urlsplit

import pytest

from devstack import workers as devstack_workers
from quicksol_bus.settings import SETTINGS
from quicksol_bus.topology import MAINTENANCE_QUEUE, QUEUES
from quicksol_workers.config import VARIABLES

from .compose_config import COMPOSE, ENV_EXAMPLE, resolved, run_config

WORKER_VARIABLES = {var.env for var in VARIABLES}
ODOO_VARIABLES = {setting.env for setting in SETTINGS.values()}
# The odoo image's entrypoint turns these into Odoo's database options.
ODOO_IMAGE_VARIABLES = {"HOST", "PORT", "USER", "PASSWORD"}
OFFICIAL_IMAGES = {"postgres", "rabbitmq", "redis"}
ONE_SHOT = {"broker-init", "odoo-init"}


@pytest.fixture(scope="module")
def stack():
    return resolved()["services"]


def _celery_tail(cmd):
    """``[python, -m, celery, ...]`` (devstack) -> ``[celery, ...]`` (compose)."""
    return ["celery", *cmd[cmd.index("celery") + 1 :]]


def _queue_services(stack):
    return {
        service["environment"]["QSB_WORKER_QUEUE"]: name
        for name, service in stack.items()
        if "QSB_WORKER_QUEUE" in service.get("environment", {})
    }


def _env_example():
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_compose_file_and_tls_override_are_valid():
    # What `make compose-config` runs; resolved() fails with docker-compose's message.
    for files in (("docker-compose.yml",), ("docker-compose.yml", "docker-compose.tls.yml")):
        assert resolved(*files)["services"], files


def test_a_missing_secret_stops_the_stack_from_starting(tmp_path):
    incomplete = tmp_path / ".env"
    incomplete.write_text(
        "\n".join(
            line for line in ENV_EXAMPLE.read_text().splitlines() if not line.startswith("FLOWER_BASIC_AUTH=")
        )
    )
    result = run_config(env_file=incomplete, quiet=True)
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr


def test_env_example_lists_every_variable_the_files_use():
    used = set()
    for path in COMPOSE.glob("docker-compose*.yml"):
        used |= set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", path.read_text()))
    listed = set(_env_example())
    assert used - listed == set(), "variables used by compose/ but missing from .env.example"
    assert listed - used == set(), "variables in .env.example that no compose file uses"


def test_every_worker_and_odoo_setting_can_be_set(stack):
    for name in ("worker-audit", "beat", "flower"):
        env = set(stack[name]["environment"])
        assert WORKER_VARIABLES <= env, f"{name}: {sorted(WORKER_VARIABLES - env)} cannot be set"
        assert env - WORKER_VARIABLES <= {"QSB_WORKER_QUEUE"}, (
            f"{name}: unknown {sorted(env - WORKER_VARIABLES)}"
        )
    for name in ("odoo", "odoo-init"):
        env = set(stack[name]["environment"])
        assert ODOO_VARIABLES | ODOO_IMAGE_VARIABLES == env, name


def test_one_worker_service_per_queue_as_the_topology_says(stack):
    services = _queue_services(stack)
    expected = {name: (spec.workers, spec.concurrency) for name, spec in QUEUES.items()}
    expected[MAINTENANCE_QUEUE] = (1, 1)
    assert set(services) == set(expected)
    for queue, (replicas, concurrency) in expected.items():
        service = stack[services[queue]]
        assert service["command"] == _celery_tail(devstack_workers.worker_cmd(queue, concurrency, queue)), (
            queue
        )
        assert service["deploy"]["replicas"] == replicas, queue
        assert "container_name" not in service, f"{queue}: a fixed container name prevents --scale"
        assert not service.get("ports"), f"{queue}: a published port prevents --scale"
    # No other Celery worker consumes anything the topology does not name.
    for name, service in stack.items():
        command = service.get("command") or []
        if command[:4] == ["celery", "-A", "quicksol_workers", "worker"]:
            assert name in services.values(), name


def test_beat_runs_once_and_flower_is_protected(stack):
    beat, flower = stack["beat"], stack["flower"]
    expected_beat = _celery_tail(devstack_workers.beat_cmd())
    assert [a for a in beat["command"] if not a.startswith("--schedule")] == [
        a for a in expected_beat if not a.startswith("--schedule")
    ]
    assert beat["deploy"]["replicas"] == 1
    schedule = next(a for a in beat["command"] if a.startswith("--schedule=")).split("=", 1)[1]
    assert any(v["type"] == "volume" and schedule.startswith(v["target"]) for v in beat["volumes"]), (
        "beat's schedule is not on a named volume"
    )

    port = next(a for a in flower["command"] if a.startswith("--port=")).split("=", 1)[1]
    assert [p["target"] for p in flower["ports"]] == [int(port)]
    assert f"127.0.0.1:{port}/healthcheck" in " ".join(flower["healthcheck"]["test"])
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == _env_example()["FLOWER_BASIC_AUTH"]


def test_urls_point_at_the_services_and_their_ports(stack):
    env = stack["worker-audit"]["environment"]
    broker = urlsplit(env["CELERY_BROKER_URL"])
    assert (broker.scheme, broker.hostname, broker.port) == ("amqp", "rabbitmq", 5672)
    assert broker.username == stack["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"]
    assert broker.password == stack["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"]
    assert "listeners.tcp.default = 5672" in (COMPOSE / "rabbitmq" / "rabbitmq.conf").read_text()
    assert stack["odoo"]["environment"]["CELERY_BROKER_URL"] == env["CELERY_BROKER_URL"]
    assert stack["odoo"]["environment"]["EVENT_BUS_SIGNING_KEY"] == env["EVENT_BUS_SIGNING_KEY"]

    backend = urlsplit(env["CELERY_RESULT_BACKEND"])
    assert (backend.scheme, backend.hostname, backend.port) == ("redis", "redis", 6379)

    odoo = urlsplit(env["ODOO_URL"])
    assert (odoo.hostname, odoo.port) == ("odoo", 8069)
    assert [p["target"] for p in stack["odoo"]["ports"]] == [odoo.port]
    assert f"127.0.0.1:{odoo.port}/web/health" in " ".join(stack["odoo"]["healthcheck"]["test"])
    assert f"--database={env['ODOO_DB']}" in stack["odoo"]["command"]
    assert env["ODOO_USER"] == devstack_workers.WORKER_LOGIN

    for name, service in stack.items():
        for port in service.get("ports", ()):
            assert port.get("host_ip") == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_images_are_built_official_or_pinned_and_services_are_supervised(stack):
    for name, service in stack.items():
        image = service["image"]
        if "build" in service:
            assert service["build"]["dockerfile"] in ("compose/odoo/Dockerfile", "compose/workers/Dockerfile")
            assert (COMPOSE.parent / service["build"]["dockerfile"]).exists()
        else:
            assert image.split(":")[0] in OFFICIAL_IMAGES, f"{name}: image {image} is built by nothing"
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin a version"
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        assert service["restart"] == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), f"{name}: no health check"
        limits = service["deploy"]["resources"]["limits"]
        assert limits.get("cpus") and limits.get("memory"), f"{name}: no resource limits"
        for dependency, condition in service.get("depends_on", {}).items():
            wanted = "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            assert condition["condition"] == wanted, f"{name} -> {dependency}"
    stateful = {
        "postgres": "/var/lib/postgresql/data",
        "rabbitmq": "/var/lib/rabbitmq",
        "redis": "/data",
        "odoo": "/var/lib/odoo",
    }
    for name, path in stateful.items():
        assert any(
            isinstance(v, dict) and v["type"] == "volume" and v["target"] == path
            for v in stack[name]["volumes"]
        ), f"{name}: {path} is not on a named volume"
    assert stack["rabbitmq"]["hostname"] == "rabbitmq", (
        "the node name (and its data folder) follows the hostname"
    )


def test_redis_keeps_every_key_and_its_writes(stack):
    command = stack["redis"]["command"]
    options = dict(zip(command[1::2], command[2::2], strict=False))
    assert options["--maxmemory-policy"] == "noeviction"
    assert options["--appendonly"] == "yes"


def test_broker_init_loads_the_generated_definitions(stack):
    init = stack["broker-init"]
    assert init["depends_on"]["rabbitmq"]["condition"] == "service_healthy"
    sources = {v["target"]: v["source"] for v in init["volumes"]}
    assert sources[init["command"][-1]] == str(COMPOSE / "rabbitmq" / "definitions.json")
    for name in _queue_services(stack):
        if name != MAINTENANCE_QUEUE:
            assert stack[_queue_services(stack)[name]]["depends_on"]["broker-init"]


def test_tls_override_switches_the_broker_to_amqps():
    stack = resolved("docker-compose.yml", "docker-compose.tls.yml")["services"]
    volumes = [v["target"] for v in stack["rabbitmq"]["volumes"]]
    assert "/etc/rabbitmq/conf.d/20-tls.conf" in volumes
    tls = (COMPOSE / "rabbitmq" / "rabbitmq-tls.conf").read_text()
    assert "listeners.ssl.default = 5671" in tls and "listeners.tcp = none" in tls
    for name in (
        "worker-commission",
        "worker-audit",
        "worker-notification",
        "worker-maintenance",
        "beat",
        "flower",
    ):
        assert stack[name]["environment"]["SSL_CERT_FILE"] == "/etc/quicksol/tls/ca.pem", name
