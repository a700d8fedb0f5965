"""Health of the broker and the workers, read with short deadlines (no Odoo import).

Used by the admin screen, the status API, the alerts and the Prometheus gauges: queue and
dead-letter depths and consumer counts from RabbitMQ's management HTTP API, workers online
from Celery's control API (a broadcast ``ping``). Every call has a deadline, so a broker that
is down, or hangs, costs the caller about ``timeout`` seconds and is reported as such.

>>> display_url("http://quicksol:secret@127.0.0.1:15672/")
'http://127.0.0.1:15672/'
>>> vhost_of("amqp://u:p@127.0.0.1:5672//"), vhost_of("amqp://u:p@127.0.0.1:5672/jobs")
('/', 'jobs')
"""

import base64
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from .topology import QUEUES

__all__ = [
    "QueueStatus",
    "BrokerStatus",
    "WorkersStatus",
    "broker_status",
    "workers_status",
    "check_broker_and_workers",
    "display_url",
    "vhost_of",
]

DEFAULT_TIMEOUT = 1.5


@dataclass
class QueueStatus:
    name: str
    messages: int = 0
    ready: int = 0
    unacked: int = 0
    consumers: int = 0
    dead_letters: int = 0
    exists: bool = True
    dead_policy: str = ""

    def as_dict(self):
        return asdict(self)


@dataclass
class BrokerStatus:
    reachable: bool
    error: str = ""
    queues: list = field(default_factory=list)

    def queue(self, name):
        return next((q for q in self.queues if q.name == name), None)

    def as_dict(self):
        return {
            "reachable": self.reachable,
            "error": self.error,
            "queues": [q.as_dict() for q in self.queues],
        }


@dataclass
class WorkersStatus:
    reachable: bool
    error: str = ""
    workers: list = field(default_factory=list)

    def as_dict(self):
        return asdict(self)


def display_url(url):
    """``url`` without its credentials (for links and messages)."""
    if not url:
        return ""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path or "/", "", ""))


def vhost_of(broker_url):
    """The RabbitMQ virtual host an AMQP URL names ('/' for ``//`` or no path)."""
    path = urlsplit(broker_url or "").path
    vhost = unquote(path[1:]) if path.startswith("/") else ""
    return vhost or "/"


def _management_get(mgmt_url, path, timeout, method="GET", body=None):
    parts = urlsplit(mgmt_url)
    base = display_url(mgmt_url).rstrip("/")
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    request = urllib.request.Request(base + path, data=body, headers=headers, method=method)
    if parts.username:
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(token).decode())
    with urllib.request.urlopen(request, timeout=timeout) as response:
        data = response.read().decode()
        return json.loads(data) if data.strip() else None


def _error_text(error):
    if isinstance(error, urllib.error.HTTPError):
        return f"HTTP {error.code} from the RabbitMQ management API"
    if isinstance(error, urllib.error.URLError):
        error = error.reason
    if isinstance(error, (socket.timeout, TimeoutError, FutureTimeout)):
        return "timed out"
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__


def broker_status(mgmt_url, vhost="/", timeout=DEFAULT_TIMEOUT, queue_names=None):
    """Depth, consumers and dead letters of each work queue, from the management API."""
    if not mgmt_url:
        return BrokerStatus(False, "the RabbitMQ management URL is not configured")
    try:
        rows = _management_get(
            mgmt_url,
            f"/api/queues/{quote(vhost, safe='')}?columns=name,messages,messages_ready,"
            "messages_unacknowledged,consumers,policy",
            timeout,
        )
    except Exception as error:  # noqa: BLE001 - any failure means "not reachable", said as is
        return BrokerStatus(False, _error_text(error))
    by_name = {row["name"]: row for row in rows}
    queues = []
    for name in queue_names or sorted(QUEUES):
        row = by_name.get(name)
        dead = by_name.get(f"{name}.dead") or {}
        queues.append(
            QueueStatus(
                name=name,
                messages=int((row or {}).get("messages") or 0),
                ready=int((row or {}).get("messages_ready") or 0),
                unacked=int((row or {}).get("messages_unacknowledged") or 0),
                consumers=int((row or {}).get("consumers") or 0),
                dead_letters=int(dead.get("messages") or 0),
                exists=row is not None,
                dead_policy=dead.get("policy") or "",
            )
        )
    return BrokerStatus(True, "", queues)


_apps = {}
_apps_lock = threading.Lock()


def _celery_app(broker_url):
    from celery import Celery

    with _apps_lock:
        app = _apps.get(broker_url)
        if app is None:
            app = _apps[broker_url] = Celery("quicksol_bus_monitor", broker=broker_url, set_as_current=False)
        return app


def workers_status(broker_url, timeout=DEFAULT_TIMEOUT):
    """Names of the Celery workers that answer a ``ping`` within ``timeout`` seconds."""
    if not broker_url:
        return WorkersStatus(False, "no broker is configured (sync mode)")
    from kombu import Connection

    try:
        with Connection(broker_url, connect_timeout=timeout, heartbeat=0) as connection:
            connection.connect()  # one attempt, no retry loop: down means down
            replies = _celery_app(broker_url).control.ping(timeout=timeout, connection=connection)
    except Exception as error:  # noqa: BLE001 - the broker could not be asked
        return WorkersStatus(False, _error_text(error))
    return WorkersStatus(True, "", sorted(name for reply in replies for name in reply))


def check_broker_and_workers(broker_url, mgmt_url, timeout=DEFAULT_TIMEOUT):
    """Both checks in parallel; each answer, or "timed out", within about ``timeout`` s."""
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="quicksol-bus-monitor")
    try:
        broker = pool.submit(broker_status, mgmt_url, vhost_of(broker_url), timeout)
        workers = pool.submit(workers_status, broker_url, timeout)
        # The calls have their own timeouts; this one deadline for both is the backstop (a DNS
        # or TLS stall, a broker that accepts and then says nothing).
        deadline = time.monotonic() + timeout + 0.4
        try:
            broker_result = broker.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            broker_result = BrokerStatus(False, "timed out")
        try:
            workers_result = workers.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            workers_result = WorkersStatus(False, "timed out")
        return broker_result, workers_result
    finally:
        pool.shutdown(wait=False)  # a stalled call ends on its own timeout, nobody waits
