"""What the audit needs to know at emit time and a worker cannot find out later."""

import uuid

from odoo import fields
from odoo.http import request

__all__ = ["emission_context"]


def emission_context():
    """Return ``{'emission_id', 'emitted_at', 'ip_address'}`` for an event being emitted.

    The audit observer runs on a worker, after the commit, where there is no HTTP request
    and the clock has moved on; so the request's IP address (``None`` outside a request:
    crons, shell, workers) and the time are captured here and travel in the event data,
    with a fresh id that names this emission in every audit row it produces. The id is
    made here, never taken from the context or the caller, so nobody can make their audit
    rows collide with (and be skipped as duplicates of) somebody else's.
    """
    ip_address = None
    if request:
        # With --proxy-mode, werkzeug's ProxyFix already put X-Forwarded-For here.
        ip_address = request.httprequest.remote_addr
    return {
        "emission_id": str(uuid.uuid4()),
        "emitted_at": fields.Datetime.to_string(fields.Datetime.now()),
        "ip_address": ip_address,
    }
