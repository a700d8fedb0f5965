"""The Odoo connector: XML-RPC calls to Odoo 18's external API as the bus technical user.

What is it?
    One :class:`OdooConnector` per worker process (:func:`get_connector`) keeps one HTTP/1.1
    connection to Odoo open (keep-alive) and the technical user's uid. Every call has a timeout
    (connect and read). The credential is the user's API key from the environment, never
    something carried by a message.
How does it work?
    ``/xmlrpc/2/common`` ``authenticate`` once, then ``/xmlrpc/2/object`` ``execute_kw`` on
    model ``quicksol.event``: ``run_async``, ``run_async_batch``, ``mark_dead``,
    ``observer_info``. Errors are raised as they come (``OSError``, ``socket.timeout``,
    ``xmlrpc.client.Fault``/``ProtocolError``); :mod:`quicksol_workers.outcome` classifies
    them. A broken connection is dropped and the next call opens a new one.
"""

import http.client
import os
import threading
import xmlrpc.client

__all__ = ["EVENT_MODEL", "OdooConnector", "get_connector", "drop_connector"]

EVENT_MODEL = "quicksol.event"


class _TimeoutTransport(xmlrpc.client.Transport):
    """Keep-alive transport whose connections time out after ``timeout`` seconds."""

    def __init__(self, timeout, secure=False):
        super().__init__()
        self.timeout = timeout
        self.secure = secure

    def make_connection(self, host):
        if self._connection and host == self._connection[0]:
            return self._connection[1]
        chost, self._extra_headers, x509 = self.get_host_info(host)
        if self.secure:
            import ssl

            conn = http.client.HTTPSConnection(
                chost, timeout=self.timeout, context=ssl.create_default_context(), **(x509 or {})
            )
        else:
            conn = http.client.HTTPConnection(chost, timeout=self.timeout)
        self._connection = host, conn
        return conn


class OdooConnector:
    """Calls ``quicksol.event`` methods in Odoo as the bus technical user."""

    def __init__(self, url, db, login, secret, timeout=30.0):
        if not (url and db and login and secret):
            raise ValueError("OdooConnector needs url, db, login and an API key (or password)")
        self.url = url.rstrip("/")
        self.db = db
        self.login = login
        self._secret = secret
        self.timeout = timeout
        self._uid = None
        self._lock = threading.Lock()
        secure = self.url.startswith("https://")
        self._common = xmlrpc.client.ServerProxy(
            f"{self.url}/xmlrpc/2/common", transport=_TimeoutTransport(timeout, secure), allow_none=True
        )
        self._object = xmlrpc.client.ServerProxy(
            f"{self.url}/xmlrpc/2/object", transport=_TimeoutTransport(timeout, secure), allow_none=True
        )

    def __repr__(self):
        return f"<OdooConnector {self.login}@{self.url}/{self.db}>"

    # ------------------------------------------------------------------ plumbing

    def authenticate(self):
        """Log in (once per process) and return the technical user's uid."""
        if self._uid is None:
            uid = self._common.authenticate(self.db, self.login, self._secret, {})
            if not uid:
                raise xmlrpc.client.Fault(
                    3,
                    f"Odoo refused login {self.login!r} on database {self.db!r} "
                    "(wrong ODOO_USER or ODOO_API_KEY?)",
                )
            self._uid = uid
        return self._uid

    def version(self):
        """Odoo's ``version()`` answer: a cheap reachability probe (no login)."""
        with self._lock:
            return self._common.version()

    def execute(self, method, *args, model=EVENT_MODEL, **kwargs):
        """``execute_kw`` of ``model.method(*args, **kwargs)`` as the technical user."""
        with self._lock:
            uid = self.authenticate()
            try:
                return self._object.execute_kw(self.db, uid, self._secret, model, method, list(args), kwargs)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode == 3:  # AccessDenied: the key was revoked; log in again
                    self._uid = None
                raise

    def close(self):
        for proxy in (self._common, self._object):
            proxy("close")()

    # ------------------------------------------------------------------ the bus API

    def run_async(self, event_uuid, observer):
        """Run ``observer.handle_async`` for the event; dict ``status``/``error``/``permanent``."""
        return self.execute("run_async", event_uuid, observer)

    def run_async_batch(self, items):
        """``items``: ``[(event_uuid, observer), ...]``; one result dict per item, same order."""
        return self.execute("run_async_batch", [list(item) for item in items])

    def mark_dead(self, event_uuid, observer, error, attempt=None):
        """Tell Odoo the message was dead-lettered after its last try (idempotent).

        ``attempt`` is the envelope's publish attempt: Odoo ignores the dead letter of an
        earlier publish than the delivery's current one (ADR 0002 §5). It is sent as an int,
        and left out when unknown (XML-RPC carries no None).
        """
        args = [event_uuid, observer, str(error)[:2000]]
        if attempt is not None:
            args.append(int(attempt))
        return self.execute("mark_dead", *args)

    def observer_info(self):
        """``{observer model: {'queue', 'async_batch', 'debounce_seconds', 'dedup_window',
        'rate_limit'}}`` as declared by the observers' classes."""
        return self.execute("observer_info")


_connectors = {}
_connectors_lock = threading.Lock()


def get_connector(config):
    """This process's connector (a forked pool child gets its own, never its parent's)."""
    key = (os.getpid(), config.odoo_url, config.odoo_db, config.odoo_user)
    with _connectors_lock:
        connector = _connectors.get(key)
        if connector is None:
            config.require_odoo()
            connector = _connectors[key] = OdooConnector(
                config.odoo_url,
                config.odoo_db,
                config.odoo_user,
                config.odoo_secret,
                timeout=config.odoo_timeout,
            )
        return connector


def drop_connector():
    """Forget every connector (after a fork or a configuration change)."""
    with _connectors_lock:
        _connectors.clear()
