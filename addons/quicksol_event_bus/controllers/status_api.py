"""Status API for other systems, under ``/api/v1`` (docs/api.md).

Authentication: an Odoo API key as a bearer token (``Authorization: Bearer <key>``), or a web
session (a POST with a session also needs its CSRF token in ``X-CSRF-Token``). The user's
rights apply as in the UI: auditors read, administrators retry, others get 403. Every answer
is JSON, errors included: ``{"error": {"code": ..., "message": ...}}`` with the HTTP status.
"""

import functools
import json
import logging
import re

from odoo import http
from odoo.exceptions import AccessDenied, AccessError, MissingError, UserError
from odoo.http import request
from werkzeug.exceptions import HTTPException

from quicksol_bus.topology import QUEUES

_logger = logging.getLogger(__name__)

AUDITOR_GROUP = "quicksol_event_bus.group_event_bus_auditor"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
BEARER_RE = re.compile(r"^bearer\s+(.+)$", re.IGNORECASE)


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _json(data, status=200):
    return request.make_response(
        json.dumps(data, default=str, ensure_ascii=False),
        headers=[("Content-Type", "application/json; charset=utf-8"), ("Cache-Control", "no-store")],
        status=status,
    )


def _error(status, code, message):
    return _json({"error": {"code": code, "message": message}}, status=status)


def _authenticate(write=False):
    """Switch the request to the API key's user, or keep the session's; else 401."""
    header = request.httprequest.headers.get("Authorization")
    if header:
        match = BEARER_RE.match(header.strip())
        if not match:
            raise ApiError(401, "unauthorized", "use 'Authorization: Bearer <Odoo API key>'")
        # 'rpc' scope: a key made for RPC (or with no scope), as Odoo's own bearer routes.
        uid = request.env["res.users.apikeys"]._check_credentials(scope="rpc", key=match.group(1))
        if not uid:
            raise ApiError(401, "unauthorized", "invalid API key")
        request.update_env(user=uid)
        return
    if not request.session.uid or request.env.user._is_public():
        raise ApiError(
            401, "unauthorized", "authenticate with an Odoo API key as a bearer token, or a session"
        )
    if write and not request.validate_csrf(request.httprequest.headers.get("X-CSRF-Token")):
        raise ApiError(403, "csrf", "a POST with a session needs its CSRF token in the X-CSRF-Token header")


def api_route(route, methods=("GET",)):
    """A JSON route of this API: authentication, access and errors handled alike."""

    def decorate(func):
        @http.route(route, type="http", auth="public", methods=list(methods), csrf=False, save_session=False)
        @functools.wraps(func)
        def wrapper(self, **kwargs):
            try:
                _authenticate(write="POST" in methods)
                if not request.env.user.has_group(AUDITOR_GROUP):
                    raise ApiError(403, "forbidden", "reserved to event bus auditors and administrators")
                return func(self, **kwargs)
            except ApiError as error:
                status, code, message = error.status, error.code, error.message
            except (AccessError, AccessDenied) as error:
                status, code, message = 403, "forbidden", str(error)
            except MissingError as error:
                status, code, message = 404, "not_found", str(error)
            except UserError as error:
                status, code, message = 409, "conflict", str(error)
            except HTTPException as error:
                status, code, message = error.code or 500, "http_error", error.description or str(error)
            except Exception:
                _logger.exception("status API %s failed", route)
                status, code, message = 500, "internal_error", "internal error; see the Odoo log"
            # The answer is an error: nothing the call wrote may be committed after it.
            request.env.cr.rollback()
            return _error(status, code, message)

        return wrapper

    return decorate


def _event(uuid):
    if not UUID_RE.match(uuid or ""):
        raise ApiError(400, "bad_request", "not an event UUID")
    # Record rules apply: an event of another company is "not found", as one that never was.
    event = request.env["quicksol.event"].search([("uuid", "=", uuid)], limit=1)
    if not event:
        raise ApiError(404, "not_found", f"no event {uuid}")
    return event


def _iso(value):
    return value.isoformat() + "Z" if value else None


def _event_data(event):
    deliveries = [
        {
            "observer": d.observer,
            "queue": d.queue,
            "state": d.state,
            "run_mode": d.run_mode,
            "priority": d.priority,
            "attempts": d.attempts,
            "publish_attempt": d.publish_attempt,
            "error": d.last_error or None,
            "published_at": _iso(d.published_at),
            "done_at": _iso(d.done_at),
            "duration_ms": d.duration_ms or None,
        }
        for d in event.delivery_ids.sorted("id")
    ]
    done = [d.done_at for d in event.delivery_ids if d.done_at]
    published = [d.published_at for d in event.delivery_ids if d.published_at]
    return {
        "uuid": event.uuid,
        "name": event.name,
        "state": event.state,
        "model": event.model or None,
        "res_ids": event.res_ids or [],
        "company_id": event.company_id.id or None,
        "user": {"id": event.user_id.id, "name": event.user_id.name} if event.user_id else None,
        "deliveries": deliveries,
        "errors": [d["error"] for d in deliveries if d["error"]],
        "timings": {
            "emitted_at": _iso(event.create_date),
            "first_published_at": _iso(min(published)) if published else None,
            "last_done_at": _iso(max(done)) if done else None,
            "total_run_ms": sum(d.duration_ms or 0.0 for d in event.delivery_ids) or None,
        },
    }


class EventBusStatusApi(http.Controller):
    @api_route("/api/v1/events/<string:uuid>")
    def event(self, uuid):
        return _json(_event_data(_event(uuid)))

    @api_route("/api/v1/stats")
    def stats(self):
        snapshot = request.env["quicksol.event.bus.monitor"].snapshot(with_remote=False)
        return _json(
            {
                "events_by_state": snapshot["events_by_state"],
                "deliveries_by_queue": snapshot["deliveries_by_queue"],
                "outbox": snapshot["outbox"],
                "failure_rate": snapshot["failure_rate"],
                "failure_window": snapshot["failure_window"],
                "circuit_state": snapshot["circuit_state"],
                "checked_at": snapshot["checked_at"],
            }
        )

    @api_route("/api/v1/events/<string:uuid>/retry", methods=("POST",))
    def retry(self, uuid):
        event = _event(uuid)
        reason = _json_body().get("reason") or "retried through the status API"
        states = set(event.delivery_ids.mapped("state"))
        if not states & {"failed", "dead"}:
            raise ApiError(
                409, "conflict", f"event {uuid} has no failed or dead delivery (state {event.state})"
            )
        if "failed" in states:
            event.admin_action("retry", reason)
        if "dead" in states:
            event.admin_action("requeue", reason)
        return _json(_event_data(event), status=202)

    @api_route("/api/v1/metrics")
    def metrics(self):
        """Prometheus gauges (text format) of the same signals as the alerts."""
        from quicksol_bus.gauges import CONTENT_TYPE, render

        snapshot = request.env["quicksol.event.bus.monitor"].snapshot()
        groups = request.env["quicksol.event.bus.incident"]._read_group(
            [("state", "=", "open")], ["kind"], ["__count"]
        )
        body = render(snapshot, dict(groups))
        return request.make_response(
            body, headers=[("Content-Type", CONTENT_TYPE), ("Cache-Control", "no-store")]
        )

    @api_route("/api/v1/queues/<string:name>")
    def queue(self, name):
        if name not in QUEUES:
            raise ApiError(404, "not_found", f"no queue {name}; queues: {', '.join(sorted(QUEUES))}")
        snapshot = request.env["quicksol.event.bus.monitor"].snapshot()
        broker = snapshot["broker"]
        recorded = snapshot["deliveries_by_queue"].get(name, {})
        data = {
            "name": name,
            "broker_reachable": broker["reachable"],
            "broker_error": broker["error"] or None,
            "recorded": recorded,
        }
        queue = next((q for q in broker["queues"] if q["name"] == name), None)
        if queue:
            data.update(
                depth=queue["messages"],
                ready=queue["ready"],
                unacked=queue["unacked"],
                consumers=queue["consumers"],
                dead_letters=queue["dead_letters"],
            )
        # The broker's figures are what was asked: without them the answer is incomplete.
        return _json(data, status=200 if broker["reachable"] else 503)


def _json_body():
    raw = request.httprequest.get_data(cache=False, as_text=True)
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError(400, "bad_request", "the body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "the body must be a JSON object")
    return body
