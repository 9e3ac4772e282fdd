"""REST API: states, incidents, services; webhooks mounted on the same app.

Reads need a valid bearer token; writes need a token whose roles allow them. Operator
writes go through :func:`perform_write`, which replay also uses, so a captured
acknowledgement or payment is re-enacted exactly as it happened.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..automation import UnknownAutomation
from ..exceptions import EstatehubError, IncidentError, ServiceNotFound, ServiceValidationError
from ..transports.http import BodyTooLarge, read_limited
from .auth import WRITE_ROLES, ApiUser, TokenAuth

if TYPE_CHECKING:
    from ..hub import Hub

HUB_KEY = web.AppKey("hub", object)
AUTH_KEY = web.AppKey("auth", TokenAuth)
USER_KEY = web.RequestKey("user", ApiUser)
MAX_JSON_BYTES = 256 * 1024
INCIDENT_FILTERS = ("open", "all", "raised", "acknowledged", "resolved")

_INCIDENT_ACTION = re.compile(r"^/api/incidents/(?P<id>[^/]+)/(?P<action>acknowledge|resolve)$")
_SERVICE = re.compile(r"^/api/services/(?P<domain>[a-z0-9_]+)/(?P<service>[a-z0-9_]+)$")


async def perform_write(
    hub: Hub, method: str, path: str, user: ApiUser, body: Any
) -> tuple[int, Any]:
    """Carry out one operator write; returns (HTTP status, JSON answer).

    Shared by the live API and replay. Recorded to the capture when capture is on.
    """
    if method != "POST":
        return 405, {"error": f"{method} not allowed on {path}"}
    if body is not None and not isinstance(body, dict):
        return 400, {"error": "the request body must be a JSON object"}
    body = body or {}

    def record() -> None:
        # Only writes the caller was allowed to make are captured: a replay runs them with
        # every role, so a refused write must not appear there as if it had happened.
        if hub.capture is not None:
            hub.capture.record_api(hub.clock.now(), method, path, user.name, body)

    if match := _INCIDENT_ACTION.match(path):
        if not user.may(WRITE_ROLES):
            return 403, {"error": f"token {user.name!r} may not change incidents"}
        record()
        note = body.get("note", "")
        if not isinstance(note, str):
            return 400, {"error": "note must be a string"}
        try:
            if match["action"] == "acknowledge":
                incident = hub.incidents.acknowledge(match["id"], by=user.name, note=note)
            else:
                incident = hub.incidents.resolve(match["id"], by=user.name, note=note)
        except IncidentError as err:
            status = 404 if "no incident" in str(err) else 409
            return status, {"error": str(err)}
        return 200, incident.as_dict()
    if match := _SERVICE.match(path):
        try:
            service = hub.services.get(match["domain"], match["service"])
        except ServiceNotFound as err:
            return 404, {"error": str(err)}
        if not user.may(service.roles):
            return 403, {
                "error": f"token {user.name!r} may not call {service.domain}.{service.name}"
            }
        try:
            result = await hub.services.call(service.domain, service.name, body, user=user.name)
        except ServiceValidationError as err:
            return 400, {"error": str(err)}
        except EstatehubError as err:
            return 409, {"error": str(err)}
        return 200, {"result": result}
    return 404, {"error": f"no such API path {path}"}


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(
        data, status=status, dumps=lambda d: json.dumps(d, ensure_ascii=False, default=str)
    )


def build_app(hub: Hub) -> web.Application:
    """The hub's aiohttp application: API routes, auth middleware and webhooks."""
    auth = TokenAuth(hub.config.api.tokens)

    @web.middleware
    async def authenticate(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/api/health" or request.path.startswith("/api/webhook/"):
            return await handler(request)
        user = auth.user_for(request.headers.get("Authorization"))
        if user is None:
            return _json({"error": "a valid bearer token is required"}, 401)
        request[USER_KEY] = user
        try:
            return await handler(request)
        except web.HTTPException as err:
            # API errors are JSON, aiohttp's own 404/405 included.
            if err.status >= 400:
                return _json(
                    {"error": f"{err.reason}: {request.method} {request.path}"}, err.status
                )
            raise

    app = web.Application(middlewares=[authenticate], client_max_size=9 * 1024 * 1024)
    app[HUB_KEY] = hub
    app[AUTH_KEY] = auth

    async def health(request: web.Request) -> web.Response:
        modules = {name: rec.status.value for name, rec in hub.modules.items()}
        mqtt_state = str(getattr(hub.mqtt.state, "value", hub.mqtt.state))
        degraded = mqtt_state != "connected" or any(
            status != "running" for status in modules.values()
        )
        return _json(
            {
                "status": "degraded" if degraded else "ok",
                "estate": hub.config.name,
                "modules": modules,
                "mqtt": mqtt_state,
                "rejected": hub.rejected,
            }
        )

    async def states(request: web.Request) -> web.Response:
        domain = request.query.get("domain")
        return _json([s.as_dict() for s in hub.states.all(domain)])

    async def state(request: web.Request) -> web.Response:
        found = hub.states.get(request.match_info["entity_id"])
        if found is None:
            return _json({"error": f"no entity {request.match_info['entity_id']}"}, 404)
        return _json(found.as_dict())

    async def incidents(request: web.Request) -> web.Response:
        wanted = request.query.get("state", "open")
        if wanted not in INCIDENT_FILTERS:
            return _json(
                {"error": f"state must be one of {', '.join(INCIDENT_FILTERS)}, got {wanted!r}"},
                400,
            )
        items = hub.incidents.open_incidents() if wanted == "open" else hub.incidents.all()
        if wanted not in ("open", "all"):
            items = [i for i in items if i.state.value == wanted]
        return _json([i.as_dict() for i in items])

    async def incident(request: web.Request) -> web.Response:
        try:
            return _json(hub.incidents.get(request.match_info["id"]).as_dict())
        except IncidentError as err:
            return _json({"error": str(err)}, 404)

    async def write(request: web.Request) -> web.Response:
        try:
            raw = await read_limited(request, MAX_JSON_BYTES)
        except BodyTooLarge as err:
            return _json({"error": f"request body too large: {err}"}, 413)
        try:
            body = json.loads(raw) if raw.strip() else None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            return _json({"error": f"request body is not JSON: {err}"}, 400)
        status, answer = await perform_write(
            hub, request.method, request.path, request[USER_KEY], body
        )
        return _json(answer, status)

    async def services(request: web.Request) -> web.Response:
        return _json(
            [
                {
                    "domain": s.domain,
                    "service": s.name,
                    "description": s.description,
                    "roles": sorted(s.roles),
                }
                for s in hub.services.all()
            ]
        )

    app.router.add_get("/api/health", health)
    app.router.add_get("/api/states", states)
    app.router.add_get("/api/states/{entity_id}", state)
    app.router.add_get("/api/incidents", incidents)
    app.router.add_get("/api/incidents/{id}", incident)
    app.router.add_post("/api/incidents/{id}/{action}", write)

    async def plugins(request: web.Request) -> web.Response:
        return _json(
            [
                {
                    "name": p.name,
                    "version": p.version,
                    "distribution": p.distribution,
                    "status": p.status,
                    "error": p.error,
                    "hooks": list(p.hooks),
                }
                for p in hub.plugins.plugins()
            ]
        )

    async def automations(request: web.Request) -> web.Response:
        return _json([a.as_dict() for a in hub.automations.automations()])

    async def automation_traces(request: web.Request) -> web.Response:
        try:
            return _json(hub.automations.traces(request.match_info["id"]))
        except UnknownAutomation as err:
            return _json({"error": str(err)}, 404)

    app.router.add_get("/api/automations", automations)
    app.router.add_get("/api/automations/{id}/traces", automation_traces)
    app.router.add_get("/api/services", services)
    app.router.add_get("/api/plugins", plugins)
    app.router.add_post("/api/services/{domain}/{service}", write)
    hub.http.add_routes(app)
    return app
