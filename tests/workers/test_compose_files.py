"""The committed broker definitions are the ones the topology generates; compose is valid."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from quicksol_bus.topology import rabbitmq_definitions

COMPOSE = Path(__file__).resolve().parents[2] / "compose"


def test_definitions_file_equals_the_generated_one():
    committed = json.loads((COMPOSE / "rabbitmq" / "definitions.json").read_text())
    assert committed == rabbitmq_definitions(), (
        "compose/rabbitmq/definitions.json is stale: regenerate it with "
        "`python -m quicksol_bus.topology definitions > compose/rabbitmq/definitions.json`"
    )


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose is not installed")
def test_compose_file_is_valid():
    env = {"PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [
            "docker-compose",
            "--env-file",
            str(COMPOSE / ".env.example"),
            "-f",
            str(COMPOSE / "docker-compose.yml"),
            "config",
            "-q",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
