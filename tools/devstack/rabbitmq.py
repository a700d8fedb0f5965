"""RabbitMQ node under .run/rabbitmq with the management plugin, its own epmd and cookie."""

import base64
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from . import config
from .proc import StackError, alive, kill_tree, port_open, read_pid, run, tail, wait_for

__all__ = ["api", "is_up", "server_env", "start", "stop"]

BASE = config.RUN / "rabbitmq"
PID = BASE / "rabbitmq.pid"
LOG = BASE / "log" / "console.log"
SBIN = Path(os.environ.get("QSB_RABBITMQ_SBIN") or "/usr/lib/rabbitmq/bin")
START_TIMEOUT = 120


def _config_text():
    return f"""# Written by devstack: loopback only, our own ports and user.
listeners.tcp.1 = 127.0.0.1:{config.port("amqp")}
management.tcp.ip = 127.0.0.1
management.tcp.port = {config.port("rabbitmq_mgmt")}
default_user = {config.AMQP_USER}
default_pass = {config.AMQP_PASSWORD}
default_vhost = /
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*
loopback_users = none
disk_free_limit.absolute = 50MB
log.console = true
log.console.level = info
log.file.level = info
"""


def server_env():
    """Environment for rabbitmq-server and the CLI tools: everything points into .run/rabbitmq."""
    env = dict(os.environ)
    env.update(
        HOME=str(BASE / "home"),  # the Erlang cookie lives in $HOME: private to this node
        RABBITMQ_NODENAME=config.rabbitmq_node(),
        RABBITMQ_USE_LONGNAME="false",
        RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
        RABBITMQ_NODE_PORT=str(config.port("amqp")),
        RABBITMQ_DIST_PORT=str(config.port("rabbitmq_dist")),
        RABBITMQ_MNESIA_BASE=str(BASE / "mnesia"),
        RABBITMQ_LOG_BASE=str(BASE / "log"),
        RABBITMQ_ENABLED_PLUGINS_FILE=str(BASE / "enabled_plugins"),
        RABBITMQ_CONFIG_FILE=str(BASE / "rabbitmq.conf"),
        RABBITMQ_ADVANCED_CONFIG_FILE=str(BASE / "advanced.config"),
        RABBITMQ_CONF_ENV_FILE=str(BASE / "rabbitmq-env.conf"),
        RABBITMQ_PID_FILE=str(PID),
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        ERL_EPMD_PORT=str(config.port("epmd")),
        ERL_EPMD_ADDRESS="127.0.0.1",
        LC_ALL="C.UTF-8",
    )
    return env


def _prepare():
    for sub in ("home", "mnesia", "log"):
        (BASE / sub).mkdir(parents=True, exist_ok=True)
    (BASE / "home").chmod(0o700)
    (BASE / "rabbitmq.conf").write_text(_config_text())
    (BASE / "enabled_plugins").write_text("[rabbitmq_management].\n")
    (BASE / "rabbitmq-env.conf").write_text("# devstack: the environment is set by devstack itself\n")


def api(path, method="GET", body=None, timeout=5):
    """Call the management HTTP API as our admin user; return (status, decoded JSON or None)."""
    url = f"http://127.0.0.1:{config.port('rabbitmq_mgmt')}/api/{path.lstrip('/')}"
    token = base64.b64encode(f"{config.AMQP_USER}:{config.AMQP_PASSWORD}".encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Basic {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return 0, None


def _pid():
    pid = read_pid(PID)
    return pid if alive(pid, str(BASE)) else None


def _ready():
    return port_open(config.port("amqp")) and api("overview")[0] == 200


def is_up():
    """True when our node runs, accepts AMQP and its management API answers our user."""
    return bool(_pid()) and _ready()


def _ctl(*args, timeout=60, check=True):
    return run(
        [SBIN / "rabbitmqctl", "-n", config.rabbitmq_node(), *args],
        env=server_env(),
        timeout=timeout,
        check=check,
    )


def start():
    """Start the node (reusing its data dir); True if this call started it."""
    if is_up():
        return False
    if _pid():  # started but not ready yet (another caller is starting it): wait for it
        wait_for(_ready, START_TIMEOUT, lambda: f"RabbitMQ not ready\n{tail(LOG)}")
        return False
    for name in ("amqp", "rabbitmq_mgmt", "rabbitmq_dist"):
        if port_open(config.port(name)):
            raise StackError(
                f"port {config.port(name)} ({name}) is taken by another program; "
                "set the QSB_*_PORT variables (docs/architecture.md) to free ports"
            )
    _prepare()
    with (BASE / "log" / "console.log").open("ab") as log:
        proc = subprocess.Popen(
            [str(SBIN / "rabbitmq-server")],
            env=server_env(),
            cwd=BASE,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    PID.write_text(f"{proc.pid}\n")  # the script execs erl: this is the beam pid

    def ready():
        if proc.poll() is not None:
            raise StackError(f"rabbitmq-server exited with {proc.returncode}\n--- {LOG} ---\n{tail(LOG)}")
        return _ready()

    wait_for(ready, START_TIMEOUT, lambda: f"RabbitMQ did not become ready\n--- {LOG} ---\n{tail(LOG)}")
    return True


def _our_pids(marker_env):
    """Pids whose environment contains `marker_env` (our epmd / stray beams), never others."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if marker_env.encode() in environ:
            found.append(int(entry.name))
    return found


def stop():
    """Stop our node, then our epmd; True if the node was running."""
    pid = _pid()
    was_up = bool(pid)
    if pid:
        _ctl("stop", str(PID), timeout=90, check=False)
        kill_tree(pid, timeout=20, cmd_hint=str(BASE))
    # Leftovers of OUR node only: processes carrying our private mnesia path / epmd port.
    for stray in _our_pids(f"RABBITMQ_MNESIA_BASE={BASE / 'mnesia'}"):
        if stray != os.getpid():
            kill_tree(stray, timeout=10)
    epmd_marker = f"ERL_EPMD_PORT={config.port('epmd')}"
    for epmd in _our_pids(epmd_marker):
        if alive(epmd, "epmd"):
            os.kill(epmd, signal.SIGTERM)
            wait_for(lambda e=epmd: not alive(e), 10, f"epmd {epmd} did not stop")
    PID.unlink(missing_ok=True)
    return was_up
