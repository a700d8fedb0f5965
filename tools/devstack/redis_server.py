"""Redis server under .run/redis (the Celery result backend and idempotency keys)."""

import shutil
import socket
import subprocess

from . import config
from .proc import StackError, alive, kill_tree, port_open, read_pid, tail, wait_for

__all__ = ["is_up", "ping", "start", "stop"]

BASE = config.RUN / "redis"
PID = BASE / "redis.pid"
LOG = BASE / "redis.log"


def ping(timeout=1.0):
    """True when our port answers PING with PONG."""
    try:
        with socket.create_connection(("127.0.0.1", config.port("redis")), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def _pid():
    pid = read_pid(PID)
    return pid if alive(pid, "redis-server") else None


def is_up():
    return bool(_pid()) and ping()


def start():
    """Start Redis; True if this call started it."""
    if is_up():
        return False
    redis_port = config.port("redis")
    if port_open(redis_port):
        raise StackError(f"port {redis_port} is taken by another program; set QSB_REDIS_PORT to a free port")
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    BASE.mkdir(parents=True, exist_ok=True)
    cmd = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(redis_port),
        "--dir",
        str(BASE),
        "--daemonize",
        "no",
        "--pidfile",
        str(PID),
        "--logfile",
        str(LOG),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    try:
        proc = subprocess.Popen(
            cmd,
            cwd=BASE,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise StackError("redis-server not found (run `make install`)") from exc
    PID.write_text(f"{proc.pid}\n")

    def ready():
        if proc.poll() is not None:
            raise StackError(f"redis-server exited with {proc.returncode}\n--- {LOG} ---\n{tail(LOG)}")
        return ping()

    wait_for(ready, 30, lambda: f"Redis did not answer PING\n--- {LOG} ---\n{tail(LOG)}")
    return True


def stop():
    pid = _pid()
    if not pid:
        return False
    kill_tree(pid, timeout=20, cmd_hint="redis-server")
    PID.unlink(missing_ok=True)
    return True
