"""Celery workers and Flower for `make run` / `make worker` (once workers/ is installable)."""

import os
import secrets
import subprocess

from . import config
from .odoo import python
from .proc import alive, kill_tree, read_pid

__all__ = ["available", "flower_cmd", "plan", "signing_key", "spawn", "stop", "worker_cmd"]

# Contract table of docs (DESIGN "Contract: queues"): queue -> (workers, concurrency).
# Used until quicksol_bus exposes the topology (see plan()).
DEFAULT_PLAN = {
    "commission_events": (2, 2),
    "audit_events": (1, 1),
    "notification_events": (1, 1),
}


def available():
    """True when the workers package is there to run (workers/pyproject.toml exists)."""
    return (config.ROOT / "workers" / "pyproject.toml").exists()


def plan():
    """[(queue, workers, concurrency)] from quicksol_bus's topology when it offers one.

    quicksol_bus.topology.QUEUES maps queue names to specs with `name`, `workers` and
    `concurrency`; when it cannot be imported, the design table above is used.
    """
    code = (
        "from quicksol_bus import topology as t\n"
        "for q in t.QUEUES.values(): print(q.name, q.workers, q.concurrency)\n"
    )
    res = subprocess.run([python(), "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    rows = [line.split() for line in res.stdout.splitlines() if len(line.split()) == 3]
    if res.returncode == 0 and rows:
        return [(q, int(w), int(c)) for q, w, c in rows]
    return [(q, w, c) for q, (w, c) in DEFAULT_PLAN.items()]


def signing_key():
    """The local stack's HMAC key (EVENT_BUS_SIGNING_KEY), made once in .run."""
    path = config.RUN / "signing.key"
    if not path.exists():
        config.RUN.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _celery():
    return [python(), "-m", "celery", "-A", "quicksol_workers"]


def worker_cmd(queue, concurrency, name):
    return [*_celery(), "worker", "-Q", queue, "-c", str(concurrency), "-n", f"{name}@%h", "--loglevel=INFO"]


def flower_cmd():
    return [*_celery(), "flower", "--address=127.0.0.1", f"--port={config.port('flower')}"]


def spawn(name, cmd, env):
    """Start `cmd` in the background, log to .run/<name>.log, pid in .run/<name>.pid."""
    log = config.RUN / f"{name}.log"
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env},
            start_new_session=True,
            cwd=config.ROOT,
        )
    (config.RUN / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc


def stop(name, timeout=30):
    pidfile = config.RUN / f"{name}.pid"
    pid = read_pid(pidfile)
    running = alive(pid, "celery")
    if running:
        kill_tree(pid, timeout=timeout, cmd_hint="celery")
    pidfile.unlink(missing_ok=True)
    return running
