"""Odoo runtime: find an Odoo 18, write its config files, create databases, run its server.

Where Odoo comes from, first match wins:
  (a) an Odoo 18 the virtualenv's python can already import;
  (b) the source tree named by $ODOO_SRC (its requirements installed into .venv, the tree
      put on the path with a .pth file);
  (c) Odoo 18.0 cloned from upstream into .cache/odoo-18.0 (bounded by a timeout), then (b).
If none works, Odoo is reported unavailable; callers skip what needs it and say so.
"""

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from . import config, postgres
from .proc import StackError, alive, kill_tree, read_pid, tail, wait_for

__all__ = [
    "copy_database",
    "UPSTREAM",
    "addon_names",
    "create_database",
    "drop_database",
    "health",
    "python",
    "resolve",
    "start_server",
    "stop_server",
    "unavailable_reason",
    "write_conf",
]

UPSTREAM = os.environ.get("QSB_ODOO_GIT_URL") or "https://github.com/odoo/odoo.git"
UPSTREAM_TREE = config.CACHE / "odoo-18.0"
CLONE_TIMEOUT = int(os.environ.get("QSB_ODOO_CLONE_TIMEOUT") or 600)
STATE = config.RUN / "odoo-runtime.json"
ADMIN_PASSWD = "qsb-master"  # database manager password of the local stack only


def python():
    """The interpreter that runs Odoo and the tests: the project's virtualenv."""
    venv_python = config.VENV / "bin" / "python"
    return str(venv_python) if venv_python.exists() else sys.executable


_PROBE = (
    "import json, os, odoo; from odoo import release; "
    "root = os.path.dirname(os.path.dirname(os.path.abspath(odoo.__file__))); "
    "print(json.dumps({'version': release.version, 'major': release.version_info[0], "
    "'package': os.path.dirname(os.path.abspath(odoo.__file__)), 'root': root}))"
)


def _probe():
    res = subprocess.run(
        [python(), "-c", _PROBE], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
    )
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        return None, f"`{python()} -c 'import odoo'` failed: {last}"
    info = json.loads(res.stdout.strip().splitlines()[-1])
    if info["major"] != 18:
        return None, f"the importable Odoo is version {info['version']}, not 18"
    return info, ""


def _pth_file():
    site = subprocess.run(
        [python(), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return Path(site) / "qsb-odoo-src.pth"


def _use_tree(tree, log):
    """Install the requirements of the Odoo source `tree` into the venv and put it on the path."""
    tree = Path(tree).resolve()
    if not (tree / "odoo" / "__init__.py").exists():
        return f"{tree} is not an Odoo source tree (no odoo/__init__.py)"
    reqs = tree / "requirements.txt"
    stamp = config.VENV / f".qsb-odoo-reqs-{hashlib.sha256(str(tree).encode()).hexdigest()[:12]}"
    digest = hashlib.sha256(reqs.read_bytes()).hexdigest() if reqs.exists() else "none"
    if reqs.exists() and not (stamp.exists() and stamp.read_text() == digest):
        constraint = config.RUN / "pip-constraint-odoo.txt"
        constraint.parent.mkdir(parents=True, exist_ok=True)
        constraint.write_text("setuptools<70\n")
        print(f"devstack: installing Odoo's requirements from {reqs} (log: {log})", flush=True)
        with open(log, "ab") as fh:
            res = subprocess.run(
                [python(), "-m", "pip", "install", "-c", str(constraint), "-r", str(reqs), "lxml_html_clean"],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        if res.returncode != 0:
            return f"pip install -r {reqs} failed (exit {res.returncode}):\n{tail(log, 25)}"
        stamp.write_text(digest)
    _pth_file().write_text(f"{tree}\n")
    return ""


def _clone(log):
    if (UPSTREAM_TREE / "odoo" / "__init__.py").exists():
        return ""
    UPSTREAM_TREE.parent.mkdir(parents=True, exist_ok=True)
    print(f"devstack: cloning Odoo 18.0 from {UPSTREAM} (timeout {CLONE_TIMEOUT}s)", flush=True)
    tmp = UPSTREAM_TREE.with_name("odoo-18.0.partial")
    subprocess.run(["rm", "-rf", str(tmp)], check=False)
    try:
        with open(log, "ab") as fh:
            res = subprocess.run(
                ["git", "clone", "--quiet", "--depth", "1", "--branch", "18.0", UPSTREAM, str(tmp)],
                stdout=fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                timeout=CLONE_TIMEOUT,
            )
    except subprocess.TimeoutExpired:
        return f"git clone of {UPSTREAM} took more than {CLONE_TIMEOUT}s"
    if res.returncode != 0:
        return f"git clone of {UPSTREAM} failed: {tail(log, 3)}"
    tmp.rename(UPSTREAM_TREE)
    return ""


def resolve(allow_install=True):
    """Find (and if needed install) Odoo 18; return and store a dict describing the runtime.

    Keys: available (bool), reason (why not), source, version, python, addons_paths.
    """
    config.RUN.mkdir(parents=True, exist_ok=True)
    log = config.RUN / "odoo-runtime.log"
    if os.environ.get("QSB_SKIP_ODOO") == "1":
        state = {
            "available": False,
            "reason": "QSB_SKIP_ODOO=1 is set",
            "source": None,
            "version": None,
            "python": python(),
            "addons_paths": [],
        }
        STATE.write_text(json.dumps(state, indent=2) + "\n")
        return state
    reasons = []
    info, why = _probe()
    source = "importable"
    if not info:
        reasons.append(why)
        pth = _pth_file() if config.VENV.exists() else None
        if pth and pth.exists():  # a stale tree from an earlier run: forget it and retry
            pth.unlink()
            info, why = _probe()
    if not info and allow_install and os.environ.get("ODOO_SRC"):
        source = f"ODOO_SRC={os.environ['ODOO_SRC']}"
        why = _use_tree(os.environ["ODOO_SRC"], log)
        info, why = _probe() if not why else (None, why)
        if not info:
            reasons.append(f"ODOO_SRC: {why}")
    if not info and allow_install and os.environ.get("QSB_ODOO_NO_CLONE") != "1":
        source = f"upstream {UPSTREAM} 18.0"
        why = _clone(log) or _use_tree(UPSTREAM_TREE, log)
        info, why = _probe() if not why else (None, why)
        if not info:
            reasons.append(f"upstream: {why}")
    if info:
        state = {
            "available": True,
            "reason": "",
            "source": source,
            "version": info["version"],
            "python": python(),
            "addons_paths": _odoo_addons_paths(info),
        }
    else:
        state = {
            "available": False,
            "reason": "; ".join(reasons),
            "source": None,
            "version": None,
            "python": python(),
            "addons_paths": [],
        }
    STATE.write_text(json.dumps(state, indent=2) + "\n")
    return state


def _odoo_addons_paths(info):
    paths = [Path(info["package"]) / "addons", Path(info["root"]) / "addons"]
    return [str(p) for p in paths if p.is_dir() and any(p.glob("*/__manifest__.py"))]


def addon_names():
    """Names of the addons in <repo>/addons (folders with a __manifest__.py), sorted."""
    return sorted(p.parent.name for p in (config.ROOT / "addons").glob("*/__manifest__.py"))


def write_conf(kind, state, http_port=None):
    """Write .run/odoo.conf (kind 'run') or .run/odoo-test.conf (kind 'test'); return its path."""
    paths = list(state["addons_paths"])
    if addon_names():  # Odoo rejects an addons folder that holds no addon
        paths.append(str(config.ROOT / "addons"))
    data_dir = config.RUN / ("odoo-data" if kind == "run" else "odoo-test-data")
    data_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "[options]",
        "; written by devstack; regenerated by every `make run` / `make test`",
        f"addons_path = {','.join(paths)}",
        f"data_dir = {data_dir}",
        "db_host = 127.0.0.1",
        f"db_port = {config.port('pg')}",
        f"db_user = {config.PG_USER}",
        f"db_password = {config.PG_PASSWORD}",
        f"admin_passwd = {ADMIN_PASSWD}",
        "http_interface = 127.0.0.1",
        f"http_port = {http_port or config.port('odoo')}",
        "gevent_port = 0",
        "workers = 0",
        "proxy_mode = False",
        "list_db = True",
    ]
    if kind == "run":
        lines += ["max_cron_threads = 1", "without_demo = False"]
    else:
        lines += ["max_cron_threads = 0", "without_demo = all", "log_level = warn"]
    path = config.RUN / ("odoo.conf" if kind == "run" else "odoo-test.conf")
    path.write_text("\n".join(lines) + "\n")
    return path


def drop_database(name):
    if postgres.database_exists(name):
        postgres.psql(f'DROP DATABASE "{name}" WITH (FORCE)')


def copy_database(src, dst, data_dir):
    """Fresh `dst` = `src` (createdb -T) with its filestore; the template must be idle."""
    import shutil

    if "odoo" in sys.modules:  # an in-process Odoo (pytest-odoo) keeps idle connections to src
        sys.modules["odoo"].sql_db.close_db(src)
    drop_database(dst)
    postgres.psql(f'CREATE DATABASE "{dst}" WITH TEMPLATE "{src}" OWNER {config.PG_USER}')
    src_store, dst_store = Path(data_dir) / "filestore" / src, Path(data_dir) / "filestore" / dst
    shutil.rmtree(dst_store, ignore_errors=True)
    if src_store.exists():
        shutil.copytree(src_store, dst_store)


def create_database(conf, name, modules, demo, log, fresh=False, timeout=1200):
    """Create database `name` with `modules` installed (odoo --stop-after-init).

    With fresh=False an existing database is kept and only modules missing from it are
    installed. Raises StackError with the log tail if Odoo fails.
    """
    if fresh:
        drop_database(name)
    modules = list(modules) or ["base"]
    if postgres.database_exists(name):
        installed = postgres.psql(
            "SELECT name FROM ir_module_module WHERE state = 'installed'", db=name, check=False
        ).split()
        modules = [m for m in modules if m not in installed]
        if not modules:
            return False
    cmd = [
        python(),
        "-m",
        "odoo",
        "-c",
        str(conf),
        "-d",
        name,
        "-i",
        ",".join(modules),
        "--stop-after-init",
        "--workers=0",
        "--max-cron-threads=0",
        f"--logfile={log}",
        "--log-level=info",
    ]
    if not demo:
        cmd.append("--without-demo=all")
    Path(log).unlink(missing_ok=True)
    print(f"devstack: installing {', '.join(modules)} into database {name} (log: {log})", flush=True)
    try:
        res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise StackError(
            f"Odoo install timed out after {timeout}s: {' '.join(cmd)}\n--- {log} ---\n{tail(log)}"
        ) from exc
    # Odoo exits 0 even when a module fails to load: read the log for errors too.
    text = Path(log).read_text(errors="replace") if Path(log).exists() else ""
    failed = res.returncode != 0 or " ERROR " in text or " CRITICAL " in text
    if not failed and postgres.database_exists(name):
        installed = postgres.psql(
            "SELECT name FROM ir_module_module WHERE state = 'installed'", db=name, check=False
        ).split()
        missing = [m for m in modules if m not in installed]
        failed = bool(missing)
    if failed:
        errors = [ln for ln in text.splitlines() if " ERROR " in ln or " CRITICAL " in ln][:10]
        raise StackError(
            f"Odoo failed to install {', '.join(modules)} into {name} (exit {res.returncode}):\n"
            f"  {' '.join(cmd)}\n--- first errors ---\n"
            + "\n".join(errors)
            + f"\n--- {log} (tail) ---\n{tail(log)}\n{res.stderr[-2000:]}"
        )
    return True


def health(port):
    """True when Odoo answers /web/health on 127.0.0.1:port."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/web/health", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def start_server(conf, db, port, name, extra=(), env=None, timeout=180):
    """Start an Odoo HTTP server (workers=0) in the background; wait for /web/health.

    The pid goes to .run/<name>.pid and the log to .run/<name>.log. Returns the Popen.
    """
    log = config.RUN / f"{name}.log"
    pidfile = config.RUN / f"{name}.pid"
    stop_server(name)
    cmd = [
        python(),
        "-m",
        "odoo",
        "-c",
        str(conf),
        "-d",
        db,
        "--workers=0",
        f"--http-port={port}",
        "--http-interface=127.0.0.1",
        f"--db-filter=^{db}$",
        *extra,
    ]
    with open(log, "ab") as fh:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    pidfile.write_text(f"{proc.pid}\n")

    def ready():
        if proc.poll() is not None:
            raise StackError(
                f"Odoo exited with {proc.returncode}: {' '.join(cmd)}\n--- {log} ---\n{tail(log)}"
            )
        return health(port)

    wait_for(
        ready, timeout, lambda: f"Odoo did not answer /web/health on port {port}\n--- {log} ---\n{tail(log)}"
    )
    return proc


def stop_server(name, timeout=30):
    """Stop the Odoo server started under `name`; True if it was running."""
    pidfile = config.RUN / f"{name}.pid"
    pid = read_pid(pidfile)
    running = alive(pid, "odoo")
    if running:
        kill_tree(pid, timeout=timeout, cmd_hint="odoo")
    pidfile.unlink(missing_ok=True)
    return running


def runtime_ok(state):
    return bool(state and state.get("available"))


def load_state():
    """The last resolved runtime (from .run/odoo-runtime.json), or None."""
    try:
        return json.loads(STATE.read_text())
    except (OSError, ValueError):
        return None


def require(state):
    if not runtime_ok(state):
        raise StackError(f"Odoo is not available: {state.get('reason') if state else 'not resolved'}")
    return state


def server_running(name):
    return alive(read_pid(config.RUN / f"{name}.pid"), "odoo")


def unavailable_reason():
    """Why Odoo tests cannot run here, or '' when they can (used by the test fixtures)."""
    if os.environ.get("QSB_ODOO_AVAILABLE") == "0":
        return os.environ.get("QSB_ODOO_UNAVAILABLE_REASON") or "Odoo 18 could not be found or installed"
    state = load_state()
    if state and not state.get("available"):
        return state.get("reason") or "Odoo 18 could not be found or installed"
    if not os.environ.get("QSB_ODOO_CONF") and not (config.RUN / "odoo-test.conf").exists():
        return "no test configuration: run `make test` (or `python tools/devstack test-prepare`)"
    return ""
