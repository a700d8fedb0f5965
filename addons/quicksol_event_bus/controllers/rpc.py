"""Odoo's external API with the client address kept for the code it runs.

``odoo.http.dispatch_rpc`` hides the HTTP request from the RPC services, so without this an
event emitted by a change made over XML-RPC or JSON-RPC would not know where the change came
from (see ``client_address``). The routes and their answers are Odoo's own.
"""

from odoo.addons.base.controllers import rpc
from odoo.http import request, route

from ..client_address import serving_address


class EventBusRPC(rpc.RPC):
    def _xmlrpc(self, service):
        # Both /xmlrpc/<service> and /xmlrpc/2/<service> go through here.
        with serving_address(request.httprequest.remote_addr):
            return super()._xmlrpc(service)

    @route()
    def jsonrpc(self, service, method, args):
        with serving_address(request.httprequest.remote_addr):
            return super().jsonrpc(service, method, args)
