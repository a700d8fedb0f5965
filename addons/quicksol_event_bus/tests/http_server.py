"""A real Odoo HTTP server in this test process, for HttpCase under pytest-odoo.

``odoo-bin --test-enable`` starts one; pytest-odoo does not (its ``--odoo-http`` stops it at
once), so the first HttpCase starts Odoo's own threaded server on a free loopback port.
"""

import socket
import threading

import odoo
from odoo.service import server as odoo_server
from odoo.tools import config

_lock = threading.Lock()


def ensure_http_server():
    with _lock:
        if odoo_server.server is not None and getattr(odoo_server.server, "httpd", None):
            return odoo_server.server.httpd.server_port
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        config["http_interface"] = "127.0.0.1"
        config["http_port"] = port
        threaded = odoo_server.ThreadedServer(odoo.http.root)
        threaded.http_spawn()
        odoo_server.server = threaded
        return threaded.httpd.server_port
