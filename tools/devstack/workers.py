"""Celery workers, beat and Flower for `make run` / `make worker` / `make health`.

What runs (names are the .run/<name>.pid and .run/<name>.log files):

- ``worker-<queue>-<i>``: ``celery -A quicksol_workers worker -Q <queue> -c <concurrency>``,
  as many per queue as ``quicksol_bus.topology.QUEUES[queue].workers`` says;
- ``worker-quicksol_maintenance-1``: the worker of the periodic jobs (``MAINTENANCE_QUEUE``);
- ``beat``: ``celery -A quicksol_workers beat`` (clean-up and reconciliation schedule);
- ``flower``: ``celery -A quicksol_workers flower`` behind ``FLOWER_BASIC_AUTH``.

Credentials made once and kept in .run with mode 0600: the HMAC signing key
(``signing.key``), the workers' Odoo API key (``worker-api-key.json``, re-made when Odoo no
longer accepts it) and Flower's ``user:password`` (``flower.auth``, unless
``FLOWER_BASIC_AUTH`` is set).
"""

import json
import os
import secrets
import signal
import subprocess
import xmlrpc.client
from pathlib import Path

from . import config
from .odoo import python
from .proc import StackError, alive, read_pid, wait_for

__all__ = [
    "WORKER_LOGIN",
    "available",
    "beat_cmd",
    "flower_auth",
    "flower_cmd",
    "maintenance_queue",
    "odoo_api_key",
    "plan",
    "running",
    "signing_key",
    "spawn",
    "stop",
    "stop_many",
    "stored_api_key",
    "wait_ready",
    "worker_cmd",
    "worker_env",
]

#: The bus technical user the workers call Odoo as (created by quicksol_event_bus).
WORKER_LOGIN = "event_bus_worker"
#: Seconds a worker gets after SIGTERM (warm shutdown: it finishes the tasks in hand) before
#: it is killed; longer than one Odoo call (QSB_WORKER_ODOO_TIMEOUT, 30 s by default).
STOP_TIMEOUT = int(os.environ.get("QSB_WORKER_STOP_TIMEOUT") or 60)


def available():
    """True when the workers package is there to run (workers/pyproject.toml exists)."""
    return (config.ROOT / "workers" / "pyproject.toml").exists()


def _topology(code):
    res = subprocess.run([python(), "-c", code], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if res.returncode != 0:
        raise StackError(f"cannot read quicksol_bus.topology (is .venv installed?):\n{res.stderr[-2000:]}")
    return res.stdout


def plan():
    """[(queue, workers, concurrency)] of the event queues, from quicksol_bus.topology.QUEUES."""
    out = _topology(
        "from quicksol_bus import topology as t\n"
        "for q in t.QUEUES.values(): print(q.name, q.workers, q.concurrency)\n"
    )
    return [(q, int(w), int(c)) for q, w, c in (line.split() for line in out.splitlines())]


def maintenance_queue():
    """The queue of the beat jobs (quicksol_bus.topology.MAINTENANCE_QUEUE)."""
    return _topology("from quicksol_bus.topology import MAINTENANCE_QUEUE as q; print(q)").strip()


def _secret_file(name, make):
    """Content of .run/<name>, created by `make()` with mode 0600 when missing."""
    path = config.RUN / name
    if not path.exists():
        config.RUN.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(make())
    return path.read_text().strip()


def signing_key():
    """The local stack's HMAC key (EVENT_BUS_SIGNING_KEY), made once in .run."""
    return _secret_file("signing.key", lambda: secrets.token_hex(32))


def flower_auth():
    """Flower's `user:password`: FLOWER_BASIC_AUTH, else one generated once into .run/flower.auth."""
    return os.environ.get("FLOWER_BASIC_AUTH") or _secret_file(
        "flower.auth", lambda: f"admin:{secrets.token_urlsafe(18)}"
    )


def _key_valid(url, db, key):
    try:
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common", allow_none=True)
        return bool(common.authenticate(db, WORKER_LOGIN, key, {}))
    except (OSError, xmlrpc.client.Error):
        return False


def odoo_api_key(url, db, admin_login="admin", admin_password="admin"):
    """The workers' API key for `db`: the one kept in .run if Odoo still accepts it, else a new
    one from ``quicksol.event.bus.generate_worker_api_key()`` called as the administrator."""
    path = config.RUN / "worker-api-key.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    key = stored.get(db)
    if key and _key_valid(url, db, key):
        return key
    try:
        common = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/common", allow_none=True)
        uid = common.authenticate(db, admin_login, admin_password, {})
        if not uid:
            raise StackError(f"Odoo refused the administrator login {admin_login!r} on {db}")
        models = xmlrpc.client.ServerProxy(f"{url}/xmlrpc/2/object", allow_none=True)
        key = models.execute_kw(
            db, uid, admin_password, "quicksol.event.bus", "generate_worker_api_key", [], {}
        )
    except (OSError, xmlrpc.client.Error) as exc:
        raise StackError(f"could not get an API key for {WORKER_LOGIN} from Odoo at {url}: {exc}") from exc
    stored[db] = key
    config.RUN.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(stored, fh)
    os.chmod(path, 0o600)
    return key


def stored_api_key(db):
    """The key kept in .run for `db` (None if none); used by `make health`."""
    try:
        return json.loads((config.RUN / "worker-api-key.json").read_text()).get(db)
    except (OSError, ValueError):
        return None


def worker_env(stack_env, odoo_url, db, api_key):
    """Environment of workers, beat and Flower (docs/operations.md, configuration)."""
    return {
        "CELERY_BROKER_URL": stack_env["CELERY_BROKER_URL"],
        "CELERY_RESULT_BACKEND": stack_env["CELERY_RESULT_BACKEND"],
        "ODOO_URL": odoo_url,
        "ODOO_DB": db,
        "ODOO_USER": WORKER_LOGIN,
        "ODOO_API_KEY": api_key or "",
        "EVENT_BUS_SIGNING_KEY": signing_key(),
        "FLOWER_BASIC_AUTH": flower_auth(),
    }


def _celery():
    return [python(), "-m", "celery", "-A", "quicksol_workers"]


def worker_cmd(queue, concurrency, name):
    return [*_celery(), "worker", "-Q", queue, "-c", str(concurrency), "-n", f"{name}@%h", "--loglevel=INFO"]


def beat_cmd():
    return [*_celery(), "beat", f"--schedule={config.RUN / 'celerybeat-schedule'}", "--loglevel=INFO"]


def flower_cmd():
    return [*_celery(), "flower", "--address=127.0.0.1", f"--port={config.port('flower')}"]


def spawn(name, cmd, env):
    """Start `cmd` in the background, log to .run/<name>.log, pid in .run/<name>.pid."""
    log = config.RUN / f"{name}.log"
    offset = log.stat().st_size if log.exists() else 0
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**{k: v for k, v in os.environ.items() if k not in env}, **env},
            start_new_session=True,
            cwd=config.ROOT,
        )
    (config.RUN / f"{name}.pid").write_text(f"{proc.pid}\n")
    proc.qsb_name, proc.qsb_log, proc.qsb_log_offset = name, log, offset
    return proc


def wait_ready(procs, timeout=120):
    """Wait until every worker of `procs` (from :func:`spawn`) logged that it is ready."""

    def new_text(proc):
        with open(proc.qsb_log, "rb") as fh:
            fh.seek(proc.qsb_log_offset)
            return fh.read().decode("utf-8", "replace")

    def ready():
        for proc in procs:
            if proc.poll() is not None:
                raise StackError(f"{proc.qsb_name} exited with {proc.returncode}; see {proc.qsb_log}")
        return all(" ready." in new_text(p) for p in procs if p.qsb_name.startswith("worker-"))

    wait_for(ready, timeout, lambda: f"workers not ready; see {config.RUN}/worker-*.log")


def _group_alive(pgid):
    """True while a process (not a zombie) of process group `pgid` runs."""
    alive(pgid)  # reaps the leader when it is our child
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def running(name):
    """True while the Celery process started under `name` runs."""
    return alive(read_pid(config.RUN / f"{name}.pid"), "celery")


def stop_many(names, timeout=STOP_TIMEOUT):
    """Stop Celery processes started by :func:`spawn`; return the names that were running.

    SIGTERM goes to each main process only (Celery's warm shutdown: the pool finishes the
    tasks in hand, unacknowledged messages go back to RabbitMQ; the pool children are not
    signalled, so no task is cut). All of them share one deadline of `timeout` seconds, after
    which what is left of their process groups is killed.
    """
    pids = {}
    for name in names:
        pid = read_pid(config.RUN / f"{name}.pid")
        if alive(pid, "celery"):
            pids[name] = pid
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    try:
        wait_for(
            lambda: not any(_group_alive(pid) for pid in pids.values()),
            timeout,
            lambda: f"{', '.join(n for n, p in pids.items() if _group_alive(p))} still running",
        )
    except StackError as exc:
        print(f"devstack: {exc} {timeout}s after SIGTERM: killing", flush=True)
        for pid in pids.values():
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(lambda: not any(_group_alive(pid) for pid in pids.values()), 10, "survived SIGKILL")
    for name in names:
        (config.RUN / f"{name}.pid").unlink(missing_ok=True)
    return [name for name in names if name in pids]


def stop(name, timeout=STOP_TIMEOUT):
    """Stop one Celery process started by :func:`spawn` (see :func:`stop_many`); True if it ran."""
    return bool(stop_many([name], timeout))
