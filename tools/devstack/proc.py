"""Process helpers: run a command with a readable failure, pid files, waiting with a deadline."""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

__all__ = [
    "StackError",
    "alive",
    "kill_tree",
    "port_open",
    "read_pid",
    "run",
    "tail",
    "wait_for",
]


class StackError(RuntimeError):
    """A step of the stack failed; the message says which command and shows the log tail."""


def tail(path, lines=40):
    """Last `lines` lines of a log file, or a note saying it does not exist."""
    path = Path(path)
    if not path.exists():
        return f"(no log at {path})"
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 64 * 1024))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def run(cmd, *, env=None, cwd=None, timeout=120, check=True):
    """Run `cmd`, return its CompletedProcess; on failure raise StackError with its output."""
    try:
        res = subprocess.run(
            cmd,
            env=env,
            cwd=cwd,
            timeout=timeout,
            text=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(f"command timed out after {timeout}s: {' '.join(map(str, cmd))}") from exc
    except FileNotFoundError as exc:
        raise StackError(f"command not found: {cmd[0]} (run `make install`)") from exc
    if check and res.returncode != 0:
        out = "\n".join(x for x in (res.stdout.strip(), res.stderr.strip()) if x)
        out = "\n".join(out.splitlines()[-40:])
        raise StackError(f"command failed (exit {res.returncode}): {' '.join(map(str, cmd))}\n{out}")
    return res


def wait_for(predicate, timeout, message, interval=0.2):
    """Poll `predicate` until it returns a truthy value or `timeout` seconds pass.

    `message` is a string or a callable returning one (called only on failure), so the
    error can carry a fresh log tail. Returns the truthy value.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            text = message() if callable(message) else message
            raise StackError(f"timed out after {timeout}s: {text}")
        time.sleep(interval)  # polling interval of a deadline loop, not a synchronisation


def port_open(port, host="127.0.0.1", timeout=0.5):
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def read_pid(path):
    """The pid stored in `path` (first line), or None."""
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def alive(pid, cmd_hint=None):
    """True when `pid` runs (not a zombie) and, if given, its command line contains `cmd_hint`."""
    if not pid:
        return False
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] in ("Z", "X"):
        return False
    if cmd_hint:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            return False
        return cmd_hint in cmdline
    return True


def kill_tree(pid, timeout=20, cmd_hint=None):
    """SIGTERM the process group led by `pid` (or the process), SIGKILL after `timeout`."""
    if not alive(pid, cmd_hint):
        return
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return

    def send(sig):
        try:
            if pgid == pid:
                os.killpg(pgid, sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    send(signal.SIGTERM)
    try:
        wait_for(lambda: not alive(pid), timeout, f"pid {pid} did not stop")
    except StackError:
        send(signal.SIGKILL)
        wait_for(lambda: not alive(pid), 10, f"pid {pid} survived SIGKILL")
