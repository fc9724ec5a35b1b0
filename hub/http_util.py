"""Small helpers every JSON view uses: the running hub, the request body, an integer path part."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from .errors import bad_request


def hub_of(request: web.Request) -> Any:
    """The running ``Hub`` (hub/app.py) of the app serving this request."""
    from .app import HUB
    return request.app[HUB]


async def json_any(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        raise bad_request("invalid_json", "body must be JSON") from None


async def json_object(request: web.Request) -> dict[str, Any]:
    body = await json_any(request)
    if not isinstance(body, dict):
        raise bad_request("invalid_json", "body must be an object")
    return body


def path_int(request: web.Request, key: str = "id") -> int:
    try:
        return int(request.match_info[key])
    except ValueError:
        raise bad_request("invalid_" + key, f"{key} must be an integer", key) from None
