"""`make install`: Debian packages (only those missing), the .venv and its pinned packages."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import config
from .proc import StackError, tail

__all__ = ["APT_PACKAGES", "apt_install", "install", "venv"]

APT_PACKAGES = [
    "postgresql",
    "rabbitmq-server",
    "redis-server",
    "libpq-dev",
    "libldap2-dev",
    "libsasl2-dev",
    "build-essential",
    "python3-dev",
    "chromium",  # the admin screens' browser tests (Playwright drives it; no browser download)
    # Debian's docker-compose (1.29, no engine): `make compose-config` and
    # tests/deploy validate compose/ with it on machines that have no Docker.
    "docker-compose",
]
POLICY_RC = Path("/usr/sbin/policy-rc.d")


def _installed(pkg):
    res = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return res.returncode == 0 and res.stdout.strip().endswith("install ok installed")


def apt_install(packages):
    """Install the Debian `packages` that are missing; never let their services start."""
    if not shutil.which("dpkg-query") or not shutil.which("apt-get"):
        print("devstack: not a Debian system, skipping system packages: " + " ".join(packages))
        return []
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return []
    prefix = []
    if os.geteuid() != 0:
        if not shutil.which("sudo"):
            raise StackError(f"missing Debian packages {' '.join(missing)}: run as root or install sudo")
        prefix = ["sudo", "-n"]
    print(f"devstack: installing Debian packages: {' '.join(missing)}", flush=True)
    log = config.RUN / "apt.log"
    config.RUN.mkdir(parents=True, exist_ok=True)
    # Debian starts a package's service on install: policy-rc.d answering 101 forbids that.
    # Ours is written only when none exists, and removed right after.
    own_policy = not POLICY_RC.exists() and os.geteuid() == 0
    if own_policy:
        POLICY_RC.write_text(
            "#!/bin/sh\n# temporary, written by quicksol devstack during apt-get install\nexit 101\n"
        )
        POLICY_RC.chmod(0o755)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        for cmd in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *missing]):
            with log.open("ab") as fh:
                res = subprocess.run(
                    prefix + cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
                )
            if res.returncode != 0:
                raise StackError(
                    f"command failed (exit {res.returncode}): {' '.join(prefix + cmd)}\n"
                    f"--- {log} ---\n{tail(log)}"
                )
    finally:
        if own_policy:
            POLICY_RC.unlink(missing_ok=True)
    return missing


def _pip(args, log):
    cmd = [str(config.VENV / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", *args]
    with log.open("ab") as fh:
        res = subprocess.run(
            cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=config.ROOT
        )
    if res.returncode != 0:
        raise StackError(
            f"command failed (exit {res.returncode}): {' '.join(cmd)}\n--- {log} ---\n{tail(log)}"
        )


def venv():
    """Create .venv (with system site-packages) and install the pinned and local packages."""
    log = config.RUN / "pip.log"
    config.RUN.mkdir(parents=True, exist_ok=True)
    vpy = config.VENV / "bin" / "python"
    if not vpy.exists():
        print(f"devstack: creating virtualenv {config.VENV} (--system-site-packages)", flush=True)
        res = subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", str(config.VENV)],
            capture_output=True,
            text=True,
        )
        if res.returncode != 0:
            raise StackError(f"`{sys.executable} -m venv` failed: {res.stderr.strip()[-1500:]}")
    # Reinstall only when a requirements file or a local package's pyproject changed.
    inputs = [config.ROOT / "requirements.txt", config.ROOT / "requirements-dev.txt"]
    local = [d for d in ("lib", "workers") if (config.ROOT / d / "pyproject.toml").exists()]
    inputs += [config.ROOT / d / "pyproject.toml" for d in local]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in inputs if p.exists())).hexdigest()
    stamp = config.VENV / ".qsb-install.sha256"
    if stamp.exists() and stamp.read_text() == digest:
        return
    print(f"devstack: installing Python packages into {config.VENV} (log: {log})", flush=True)
    _pip(["-r", str(config.ROOT / "requirements-dev.txt")], log)
    editable = []
    for d in local:
        editable += ["-e", str(config.ROOT / d)]
    if editable:
        _pip(editable, log)
    for d in ("lib", "workers"):
        if d not in local:
            print(f"devstack: {d}/pyproject.toml not there yet, {d} not installed")
    _report_pip_check()
    stamp.write_text(digest)


def _report_pip_check():
    """Show `pip check` problems that involve our own requirements (not the machine's)."""
    ours = set()
    for req in ("requirements.txt", "requirements-dev.txt"):
        for line in (config.ROOT / req).read_text().splitlines():
            line = line.split("#")[0].strip()
            if line and not line.startswith("-"):
                ours.add(line.split("==")[0].split(">")[0].split("<")[0].strip().lower())
    res = subprocess.run(
        [str(config.VENV / "bin" / "python"), "-m", "pip", "check"], capture_output=True, text=True
    )
    for line in res.stdout.splitlines():
        words = {w.lower().strip(",.") for w in line.split()}
        if words & ours:
            print(f"devstack: pip check: {line}")


def install():
    """Everything `make install` does."""
    packages = list(APT_PACKAGES)
    if subprocess.run([sys.executable, "-c", "import ensurepip, venv"], capture_output=True).returncode:
        packages.append("python3-venv")
    apt_install(packages)
    venv()
