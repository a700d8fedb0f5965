"""The network address of the client a piece of code works for, or None: no request.

Odoo's web client calls (``/web/dataset/call_kw``) run inside ``odoo.http.request``, but the
external API (``/xmlrpc/2/*``, ``/xmlrpc/*``, ``/jsonrpc``) hides the request from the
services it dispatches to (``odoo.http.borrow_request``): code below them sees no request.
The bus's RPC controller (``controllers/rpc.py``) keeps the address for them in this
thread, and the workers' API (``quicksol.event.run_async*``) runs observers with no address
at all: a worker acts after the fact, from its own host, for nobody's browser. Crons and
the shell have no request either.

With ``--proxy-mode``, Odoo applies werkzeug's ProxyFix (when the proxy sends
``X-Forwarded-Host``), so ``remote_addr`` is already the client's address from
``X-Forwarded-For``; without it, a forged header changes nothing.
"""

import threading
from contextlib import contextmanager

from odoo.http import request

__all__ = ["client_address", "outside_request", "serving_address"]

_local = threading.local()
_UNSET = object()


@contextmanager
def serving_address(address):
    """Code in this block works for the client at ``address`` (None: for no client)."""
    previous = getattr(_local, "address", _UNSET)
    _local.address = address
    try:
        yield
    finally:
        if previous is _UNSET:
            del _local.address
        else:
            _local.address = previous


def outside_request():
    """Code in this block works for no client, even inside an HTTP request (workers' API)."""
    return serving_address(None)


def client_address():
    """The client's address (``'127.0.0.1'``, ``'2001:db8::1'``), or None: no request."""
    address = getattr(_local, "address", _UNSET)
    if address is not _UNSET:
        return address
    if request:
        return request.httprequest.remote_addr
    return None
