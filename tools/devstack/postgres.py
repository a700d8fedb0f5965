"""PostgreSQL cluster under .run/postgres, run as the `postgres` OS user (it refuses root)."""

import os
import shutil
from pathlib import Path

from . import config
from .proc import StackError, alive, port_open, read_pid, run, tail, wait_for

__all__ = ["database_exists", "is_up", "psql", "start", "stop"]

BASE = config.RUN / "postgres"
DATA = BASE / "data"
SOCKET = BASE / "socket"
LOG = BASE / "postgres.log"
OS_USER = "postgres"

# Test and dev databases only: losing the last transactions on a machine crash is fine,
# installing Odoo without fsync is several times faster on small machines.
_SETTINGS = f"""
# --- devstack ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '{SOCKET}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
"""

_HBA = """# devstack: local socket trusted, loopback TCP with password, nothing else.
local   all all                  trust
host    all all 127.0.0.1/32     scram-sha-256
"""


def bindir():
    """Folder of the PostgreSQL server programs (highest installed major version)."""
    if os.environ.get("QSB_PG_BIN"):
        return Path(os.environ["QSB_PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise StackError(
            "PostgreSQL server programs not found under /usr/lib/postgresql (run `make install`)"
        )
    return found[-1].parent


def _as_postgres(args, **kw):
    cmd = ["runuser", "-u", OS_USER, "--", *map(str, args)] if os.geteuid() == 0 else list(map(str, args))
    return run(cmd, cwd=BASE, **kw)


def _pid():
    pid = read_pid(DATA / "postmaster.pid")
    return pid if alive(pid, "postgres") else None


def is_up():
    """True when our cluster runs and accepts connections on its port."""
    return bool(_pid()) and port_open(config.port("pg"))


def psql(sql, db="postgres", check=True):
    """Run `sql` as the superuser over our socket; return stdout (unaligned, tuples only)."""
    res = _as_postgres(
        [
            bindir() / "psql",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            SOCKET,
            "-p",
            config.port("pg"),
            "-U",
            OS_USER,
            "-d",
            db,
            "-c",
            sql,
        ],
        check=check,
    )
    return res.stdout.strip()


def database_exists(name):
    return psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1"


def _init():
    BASE.mkdir(parents=True, exist_ok=True)
    SOCKET.mkdir(exist_ok=True)
    if os.geteuid() == 0:
        shutil.chown(BASE, OS_USER, OS_USER)
        shutil.chown(SOCKET, OS_USER, OS_USER)
    if (DATA / "PG_VERSION").exists():
        return
    _as_postgres(
        [
            bindir() / "initdb",
            "-D",
            DATA,
            "-U",
            OS_USER,
            "-E",
            "UTF8",
            "--no-locale",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
        ],
        timeout=180,
    )
    with (DATA / "postgresql.conf").open("a") as fh:
        fh.write(_SETTINGS)
    (DATA / "pg_hba.conf").write_text(_HBA)


def start():
    """Start the cluster (initialising it the first time); True if this call started it."""
    if is_up():
        return False
    pg_port = config.port("pg")
    if port_open(pg_port):
        raise StackError(f"port {pg_port} is taken by another program; set QSB_PG_PORT to a free port")
    _init()
    try:
        _as_postgres(
            [bindir() / "pg_ctl", "-D", DATA, "-l", LOG, "-w", "-t", "60", "-o", f"-p {pg_port}", "start"],
            timeout=90,
        )
    except StackError as exc:
        raise StackError(f"{exc}\n--- {LOG} ---\n{_tail()}") from exc
    wait_for(is_up, 30, lambda: f"PostgreSQL did not accept connections\n{_tail()}")
    psql(
        "DO $$ BEGIN "
        f"IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{config.PG_USER}') THEN "
        f"CREATE ROLE {config.PG_USER} LOGIN CREATEDB PASSWORD '{config.PG_PASSWORD}'; "
        "END IF; END $$;"
    )
    return True


def stop():
    """Stop our cluster (fast shutdown); True if it was running."""
    if not _pid():
        return False
    _as_postgres([bindir() / "pg_ctl", "-D", DATA, "-m", "fast", "-w", "-t", "60", "stop"], timeout=90)
    return True


def _tail():
    return tail(LOG)
