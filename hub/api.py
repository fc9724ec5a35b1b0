"""The JSON API edge (errors and CSRF: hub/http_guard.py): health, conversations and outbound messages.

Views stay thin: they parse, check access, call the modules that own the data and answer JSON.
"""
from __future__ import annotations

import hmac
import logging
from typing import Any

from aiohttp import web

from .archive import history
from .errors import HubError, bad_request, not_found
from .http_util import hub_of as _hub
from .outbound.queue import OutboundRequest, check_text

log = logging.getLogger(__name__)

def require_service_token(request: web.Request) -> None:
    """The JSON API needs ``Authorization: Bearer <HUB_API_TOKEN>`` (disabled when none is set)."""
    token = _hub(request).api_token
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise HubError(401, "unauthorized", "a valid API token is required")


MAX_ID = 2 ** 63 - 1  # BIGINT (SQLite's INTEGER too): a larger id or cursor is in no row, and fails the driver


def int_param(value: Any, name: str, default: int | None = None) -> int | None:
    """An id, cursor or count from a request (query, path, body or socket event): 0 to ``MAX_ID``,
    400 ``invalid_<name>`` otherwise (a larger one was a 500: OverflowError, asyncpg's DataError)."""
    if value in (None, ""):
        return default
    if isinstance(value, bool):
        raise bad_request("invalid_" + name, f"{name} must be an integer", name)
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        raise bad_request("invalid_" + name, f"{name} must be an integer", name) from None
    if not 0 <= number <= MAX_ID:
        raise bad_request("invalid_" + name, f"{name} must be an integer from 0 to {MAX_ID}", name)
    return number


def path_id(request: web.Request, what: str, key: str = "id") -> int:
    """The id in the path: not an integer is a 400, one no row can have (past ``MAX_ID``) names no ``what`` (404)."""
    raw = request.match_info[key]
    try:
        number = int(raw)
    except ValueError:
        raise bad_request("invalid_" + key, f"{key} must be an integer", key) from None
    if not 0 <= number <= MAX_ID:
        raise not_found(f"unknown_{what}", f"no {what} {raw}")
    return number


async def healthz(request: web.Request) -> web.Response:
    from .app import HUB
    if HUB not in request.app:
        return web.json_response({"status": "starting"}, status=503)
    hub = request.app[HUB]
    try:
        async with hub.db.read() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - a health check answers, it does not fail (a 500 before)
        log.warning("health check: the database does not answer: %s", exc)
        return web.json_response({"status": "database_unavailable"}, status=503)
    return web.json_response({"status": "ok"})


async def _readable_conversation(request: web.Request) -> dict[str, Any]:
    """The conversation of the path (404 unknown) if the user may read it (401/403 otherwise): the API
    token and supervisors read all, agents those of their sessions and groups."""
    from .auth_views import require_user
    from .service.reading import require_conversation
    user = await require_user(request)
    hub = _hub(request)
    conv_id = path_id(request, "conversation")
    await require_conversation(hub.db, user, conv_id)  # first: an agent learns nothing of others' ids
    return await history.conversation(hub.db, conv_id)


async def get_conversation(request: web.Request) -> web.Response:
    return web.json_response(await _readable_conversation(request))


async def get_messages(request: web.Request) -> web.Response:
    hub = _hub(request)
    conv_id = (await _readable_conversation(request))["id"]
    page = await history.history(hub.db, conv_id, limit=int_param(request.query.get("limit"), "limit", 50),
                                 before=int_param(request.query.get("before"), "before"))
    from .auth_views import require_user
    from .privacy.views import audit_if_outside, mask_page
    user = await require_user(request)
    await audit_if_outside(request, user, conv_id)
    return web.json_response(mask_page(user, page))


async def post_message(request: web.Request) -> web.Response:
    """Queue an outbound text into a conversation (sender ``system``: service callers and admins)."""
    from .auth_views import require_user
    await require_user(request, "admin")
    hub = _hub(request)
    conv = await history.conversation(hub.db, path_id(request, "conversation"))
    try:
        body = await request.json()
    except ValueError:
        raise bad_request("invalid_json", "body must be JSON") from None
    text = check_text(conv["channel"], body.get("text") if isinstance(body, dict) else None)
    message_id = await hub.outbound.enqueue(OutboundRequest(conv["account_id"], conv["id"], text, "system",
                                                            dedup_key=f"client:{body['client_id']}" if body.get("client_id") else None))
    return web.json_response({"message_id": message_id, "status": "queued"}, status=202)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/healthz", healthz),
        web.get("/api/conversations/{id}", get_conversation),
        web.get("/api/conversations/{id}/messages", get_messages),
        web.post("/api/conversations/{id}/messages", post_message),
    ]
