"""What the audit needs to know at emit time and a worker cannot find out later."""

import uuid

from odoo import fields
from odoo.addons.quicksol_event_bus.client_address import client_address

__all__ = ["emission_context"]


def emission_context():
    """Return ``{'emission_id', 'emitted_at', 'ip_address'}`` for an event being emitted.

    The audit observer runs on a worker, after the commit, where there is no HTTP request
    and the clock has moved on; so the client's IP address (``None``: no request, as in
    crons, the shell and the workers' API) and the time are captured here and travel in the event data,
    with a fresh id that names this emission in every audit row it produces. The id is
    made here, never taken from the context or the caller, so nobody can make their audit
    rows collide with (and be skipped as duplicates of) somebody else's.
    """
    return {
        "emission_id": str(uuid.uuid4()),
        "emitted_at": fields.Datetime.to_string(fields.Datetime.now()),
        # web client, /xmlrpc/*, /jsonrpc; honours --proxy-mode (see client_address).
        "ip_address": client_address(),
    }
