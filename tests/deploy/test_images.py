"""The images' install steps, run outside a container in fresh virtualenvs.

There is no Docker engine here, so each Dockerfile keeps its install steps in a script
(``compose/odoo/install.sh``, ``compose/workers/install.sh``) and these tests run that very
script the way the image does, into an interpreter that has nothing of ours:

- Odoo: a virtualenv that sees only the machine's Odoo and its dependencies (as the odoo:18
  image has them), without the addon's ``external_dependencies``; after the script, Odoo's own
  check (the one it runs before installing a module) accepts ``quicksol_event_bus`` and the
  addon loads, from the copied addons folder.
- Workers: a bare virtualenv (as python:3.11-slim). After the script, the compose command of a
  worker runs against the test stack and the image's HEALTHCHECK command passes: broker,
  Redis, Odoo (with the workers' API key) and that very worker answering ping.
"""

import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devstack import workers as devstack_workers

from .compose_config import COMPOSE, ROOT, resolved

# What each Dockerfile copies into the image before running install.sh.
ODOO_IMAGE_SOURCES = ("requirements.txt", "lib", "addons")
WORKERS_IMAGE_SOURCES = ("requirements.txt", "lib", "workers")

ODOO_CHECK = """
import importlib, json, sys
import odoo
from odoo.modules import module
odoo.tools.config.parse_config(["--addons-path", sys.argv[1]])
module.initialize_sys_path()
manifest = module.get_manifest("quicksol_event_bus")
assert manifest, "quicksol_event_bus not found in " + sys.argv[1]
module.check_manifest_dependencies(manifest)   # what Odoo runs before installing a module
importlib.import_module("odoo.addons.quicksol_event_bus")
print(json.dumps({
    "addon": sys.modules["odoo.addons.quicksol_event_bus"].__file__,
    **{name: importlib.import_module(name).__file__ for name in ("quicksol_bus", "kombu", "celery")},
}))
"""


FIND_SPECS = (
    "import importlib.util, json, sys; "
    "print(json.dumps({n: importlib.util.find_spec(n) is not None for n in sys.argv[1:]}))"
)


def _base_python():
    """The interpreter .venv was made from (the machine's python3, which imports Odoo)."""
    return getattr(sys, "_base_executable", None) or sys.executable


def _fresh_venv(path, system_site_packages):
    """A new virtualenv; unless ``system_site_packages``, with pip only.

    ``--without-pip`` plus a copy of the base interpreter's pip (which vendors all it needs) is
    much quicker than ensurepip."""
    cmd = [_base_python(), "-m", "venv", "--without-pip", str(path)]
    if system_site_packages:
        cmd.insert(3, "--system-site-packages")
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    python = path / "bin" / "python"
    if not system_site_packages:  # with them, the base interpreter's pip is already visible
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        source = Path(importlib.util.find_spec("pip").origin).parent  # found without importing it
        shutil.copytree(source, Path(site) / "pip", ignore=shutil.ignore_patterns("__pycache__"))
    return python


def _copy_sources(dest, names):
    """The image's build context: the files the Dockerfile copies, without build leftovers."""
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "tests")
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=ignore)
        else:
            shutil.copy2(source, dest / name)
    return dest


def _clean_env(**extra):
    """An environment without our virtualenv or source tree on any path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    env.update(extra)
    return env


def _start_install(script, python, src, log, **extra):
    """Start ``sh install.sh SRC`` as the image does, into ``python``; output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(
            ["sh", str(script), str(src)],
            # No byte-compiling: quicker, and nothing of what is checked depends on it.
            env=_clean_env(PYTHON=str(python), PIP_NO_COMPILE="1", **extra),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Both images' install scripts, run side by side (pip waits on I/O most of the time)."""
    root = tmp_path_factory.mktemp("images")
    odoo_python = _fresh_venv(root / "odoo-venv", system_site_packages=True)
    workers_python = _fresh_venv(root / "workers-venv", system_site_packages=False)
    addons = root / "extra-addons"
    runs = {
        "odoo": _start_install(
            COMPOSE / "odoo" / "install.sh",
            odoo_python,
            _copy_sources(root / "odoo-src", ODOO_IMAGE_SOURCES),
            root / "odoo-install.log",
            ADDONS_DEST=str(addons),
        ),
        "workers": _start_install(
            COMPOSE / "workers" / "install.sh",
            workers_python,
            _copy_sources(root / "workers-src", WORKERS_IMAGE_SOURCES),
            root / "workers-install.log",
        ),
    }
    codes = {name: proc.wait(timeout=600) for name, proc in runs.items()}
    return {
        "root": root,
        "odoo_python": odoo_python,
        "workers_python": workers_python,
        "addons": addons,
        "codes": codes,
    }


def _assert_installed(installed, name):
    log = installed["root"] / f"{name}-install.log"
    assert installed["codes"][name] == 0, f"compose/{name}/install.sh failed:\n{log.read_text()[-4000:]}"


def _dockerfile_runs(dockerfile, script):
    """The Dockerfile copies ``script`` and runs it (so the test below tests the image's steps)."""
    text = (COMPOSE / dockerfile).read_text().replace("\\\n", " ")
    assert f"COPY compose/{script} " in text, dockerfile
    assert re.search(r"^RUN .*sh /tmp/quicksol/install\.sh /tmp/quicksol", text, re.M), dockerfile


def test_odoo_image_install_makes_odoo_accept_the_addon(tmp_path, installed):
    _dockerfile_runs("odoo/Dockerfile", "odoo/install.sh")
    dockerfile = (COMPOSE / "odoo" / "Dockerfile").read_text()
    assert re.search(r"^FROM odoo:18$", dockerfile, re.M)
    # The folder install.sh fills is the one the image puts first on Odoo's addons path.
    dest = re.search(r"ADDONS_DEST=(\S+) sh /tmp/quicksol/install\.sh", dockerfile).group(1)
    assert f"addons_path = {dest}," in dockerfile
    # Before the install: a fresh virtualenv like the image's python has Odoo but none of the
    # addon's external dependencies (so Odoo's check below can only pass thanks to install.sh).
    untouched = _fresh_venv(tmp_path / "untouched", system_site_packages=True)
    probe = subprocess.run(
        [str(untouched), "-c", FIND_SPECS, "odoo", "quicksol_bus", "kombu", "celery"],
        capture_output=True,
        text=True,
        env=_clean_env(),
        check=True,
    )
    found = json.loads(probe.stdout)
    if not found["odoo"]:
        pytest.skip(f"ODOO NOT AVAILABLE to a fresh virtualenv of {_base_python()}")
    assert found == {"odoo": True, "quicksol_bus": False, "kombu": False, "celery": False}, found

    _assert_installed(installed, "odoo")
    addons, python = installed["addons"], installed["odoo_python"]
    deployed = sorted(p.name for p in addons.iterdir())
    expected = sorted(
        p.parent.name
        for p in (ROOT / "addons").glob("*/__manifest__.py")
        if not p.parent.name.startswith("test_")
    )
    assert deployed == expected, "the image carries every addon except the test_* fixtures"

    after = subprocess.run(
        [str(python), "-c", ODOO_CHECK, str(addons)], capture_output=True, text=True, env=_clean_env()
    )
    assert after.returncode == 0, after.stderr[-3000:]
    files = json.loads(after.stdout.strip().splitlines()[-1])
    assert files["addon"].startswith(str(addons))
    venv = python.parent.parent
    for name in ("quicksol_bus", "kombu", "celery"):
        assert files[name].startswith(str(venv)), f"{name} does not come from the install: {files[name]}"


def _dockerfile_healthcheck(text):
    """The shell command of the Dockerfile's HEALTHCHECK (continuation lines joined)."""
    joined = text.replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*?\bCMD (.+)$", joined, re.M)
    assert match, "the workers image has no HEALTHCHECK"
    return match.group(1).strip()


def test_workers_image_install_runs_the_compose_worker_and_its_health_check(
    tmp_path, installed, services_env, odoo_server, wait_for
):
    _dockerfile_runs("workers/Dockerfile", "workers/install.sh")
    dockerfile = (COMPOSE / "workers" / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.\d+-slim", dockerfile, re.M)
    user = re.findall(r"^USER (\S+)", dockerfile, re.M)
    assert user and user[-1] not in ("root", "0"), "the workers run as root"
    # The image's default command is `make worker`'s (devstack's worker_cmd).
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert cmd == ["celery", *devstack_workers.worker_cmd("audit_events", 1, "audit_events")[3:]]

    _assert_installed(installed, "workers")
    python = installed["workers_python"]

    service = resolved()["services"]["worker-maintenance"]
    queue = service["environment"]["QSB_WORKER_QUEUE"]
    api_key = devstack_workers.odoo_api_key(odoo_server.url, odoo_server.db)
    env = _clean_env(
        PATH=f"{python.parent}{os.pathsep}{_clean_env()['PATH']}",
        CELERY_BROKER_URL=services_env["CELERY_BROKER_URL"],
        CELERY_RESULT_BACKEND=services_env["CELERY_RESULT_BACKEND"],
        ODOO_URL=odoo_server.url,
        ODOO_DB=odoo_server.db,
        ODOO_USER=devstack_workers.WORKER_LOGIN,
        ODOO_API_KEY=api_key,
        EVENT_BUS_SIGNING_KEY=devstack_workers.signing_key(),
        QSB_WORKER_QUEUE=queue,
        HOSTNAME=socket.gethostname(),  # docker sets it to the container's hostname, Celery's %h
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen(
            service["command"],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(
            lambda: worker.poll() is None and " ready." in log.read_text(errors="replace"),
            90,
            lambda: f"the compose worker command did not get ready:\n{log.read_text(errors='replace')[-3000:]}",
        )
        health = subprocess.run(
            ["sh", "-c", _dockerfile_healthcheck(dockerfile)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert health.returncode == 0, health.stdout + health.stderr
        lines = health.stdout.splitlines()
        assert [line.split()[:2] for line in lines] == [
            ["ok", "broker:"],
            ["ok", "redis:"],
            ["ok", "odoo:"],
            ["ok", "worker:"],
        ], health.stdout
        assert f"{queue}@{socket.gethostname()}" in lines[-1]
    finally:
        worker.send_signal(signal.SIGTERM)  # Celery's warm shutdown, as `docker stop` does
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
