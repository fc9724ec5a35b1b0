"""Small helpers every JSON view uses: the running hub, the request body, an integer path part."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from . import safe_json
from .errors import bad_request


def hub_of(request: web.Request) -> Any:
    """The running ``Hub`` (hub/app.py) of the app serving this request."""
    from .app import HUB
    return request.app[HUB]


def storable(text: str) -> bool:
    """Text a database can hold: no NUL (PostgreSQL refuses it: a 500) and no lone surrogate ("\\ud83d"
    in JSON, half an emoji: it has no UTF-8, on either database)."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


async def json_any(request: web.Request) -> Any:
    try:
        return await request.json(loads=safe_json.loads)
    except ValueError:
        raise bad_request("invalid_json", "body must be JSON") from None


async def json_object(request: web.Request) -> dict[str, Any]:
    body = await json_any(request)
    if not isinstance(body, dict):
        raise bad_request("invalid_json", "body must be an object")
    return body


UPLOAD_MAX = 8 * 1024 * 1024  # a file an admin imports (an FAQ export of thousands of entries)


async def read_upload(request: web.Request, limit: int = UPLOAD_MAX) -> bytes:
    """A file sent as the request body, up to ``limit`` bytes: past the app's own cap (64 KiB, sized
    for the platforms' callbacks), which refused a 250-entry FAQ export when it was imported again."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    parts, size = [], 0
    while chunk := await request.content.readany():
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        parts.append(chunk)
    return b"".join(parts)


def path_int(request: web.Request, key: str = "id") -> int:
    """The id in the path, as ``hub.api.path_id``: not an integer is a 400, one past BIGINT the 404 an unknown
    id gets, ``unknown_<what>`` named by the route (/api/tickets/{id}: unknown_ticket; it reached the database,
    a 500)."""
    from .api import path_id  # hub.api imports this module
    return path_id(request, _what(request, key), key)


def _what(request: web.Request, key: str) -> str:
    """What the route's part before ``{key}`` names, singular: tickets, ticket-rules, watches: ticket, rule, watch."""
    resource = request.match_info.route.resource
    parts = resource.canonical.split("/") if resource is not None else []
    at = parts.index("{" + key + "}") if "{" + key + "}" in parts else 0
    word = parts[at - 1].rsplit("-", 1)[-1] if at > 0 else ""
    if word.endswith(("ches", "shes", "sses", "xes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word or key
