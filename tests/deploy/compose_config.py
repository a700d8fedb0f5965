"""The compose stack as docker-compose resolves it, for the deploy tests.

``docker-compose config`` (Debian's docker-compose, brought by ``make install``) validates the
files and prints them resolved (anchors merged, variables from ``compose/.env.example``
substituted); it is read here with the YAML module of docker-compose's own interpreter, so the
tests need no YAML package of their own.
"""

import functools
import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
ENV_EXAMPLE = COMPOSE / ".env.example"

__all__ = ["COMPOSE", "ENV_EXAMPLE", "ROOT", "docker_compose", "resolved", "run_config"]


def docker_compose():
    """Path of docker-compose; an assertion error (not a skip) when it is missing."""
    path = shutil.which("docker-compose") or (
        "/usr/bin/docker-compose" if Path("/usr/bin/docker-compose").exists() else None
    )
    assert path, "docker-compose is not installed: `make install` installs Debian's docker-compose"
    return path


def run_config(*files, env_file=ENV_EXAMPLE, quiet=False):
    """``docker-compose --env-file .. -f .. config``: the CompletedProcess."""
    cmd = [docker_compose(), "--env-file", str(env_file)]
    for name in files or ("docker-compose.yml",):
        cmd += ["-f", str(COMPOSE / name)]
    cmd += ["config"] + (["-q"] if quiet else [])
    # A clean environment: only .env.example decides the variables.
    return subprocess.run(cmd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, check=False)


@functools.cache
def resolved(*files):
    """The resolved configuration as a dict (computed once per set of files)."""
    result = run_config(*files)
    assert result.returncode == 0, result.stderr
    interpreter = Path(docker_compose()).read_text().splitlines()[0].lstrip("#!").split()
    converted = subprocess.run(
        [*interpreter, "-c", "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"],
        input=result.stdout,
        capture_output=True,
        text=True,
        check=True,
    )
    config = json.loads(converted.stdout)
    for service in config["services"].values():
        service["volumes"] = [_volume(v) for v in service.get("volumes", ())]
        service["ports"] = [_port(p) for p in service.get("ports", ())]
    return config


def _volume(volume):
    """``source:target[:mode]`` (docker-compose 1.x) or the long form (2.x) -> the long form."""
    if isinstance(volume, dict):
        return volume
    source, target = volume.split(":")[:2]
    return {"type": "bind" if source.startswith("/") else "volume", "source": source, "target": target}


def _port(port):
    """``ip:published:target/proto`` (1.x) or the long form (2.x) -> the long form, ints."""
    if isinstance(port, dict):
        return {**port, "target": int(port["target"]), "published": int(port["published"])}
    host_ip, published, target = port.split("/")[0].split(":")
    return {"host_ip": host_ip, "published": int(published), "target": int(target)}
