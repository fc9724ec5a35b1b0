"""HTTP: keyword watches and their hits (supervisors and admins; agents 403).

GET/POST /api/watches, PUT/DELETE /api/watches/{id}, GET /api/watch-hits?limit=&before=&watch=
"""
from __future__ import annotations

from aiohttp import web

from ...api import int_param, path_id
from ...auth_views import require_user
from ...errors import bad_request
from ...http_util import json_object
from .watches import WatchService

WATCHES = web.AppKey("search_watches", WatchService)
ROLES = ("supervisor", "admin")


def _query_int(request: web.Request, name: str, default: int | None = None) -> int | None:
    return int_param(request.query.get(name), name, default)


async def list_watches(request: web.Request) -> web.Response:
    await require_user(request, *ROLES)
    return web.json_response({"watches": await request.app[WATCHES].list()})


async def post_watch(request: web.Request) -> web.Response:
    user = await require_user(request, *ROLES)
    body = await json_object(request)
    return web.json_response(await request.app[WATCHES].add(body.get("word"), user.username), status=201)


async def put_watch(request: web.Request) -> web.Response:
    await require_user(request, *ROLES)
    body = await json_object(request)
    return web.json_response(await request.app[WATCHES].set_enabled(path_id(request, "watch"), body.get("enabled")))


async def delete_watch(request: web.Request) -> web.Response:
    await require_user(request, *ROLES)
    await request.app[WATCHES].delete(path_id(request, "watch"))
    return web.json_response({"ok": True})


async def list_hits(request: web.Request) -> web.Response:
    await require_user(request, *ROLES)
    limit = _query_int(request, "limit", 50)
    if not 1 <= limit <= 200:
        raise bad_request("invalid_limit", "limit must be 1 to 200", "limit")
    hits, next_before = await request.app[WATCHES].hits(limit, _query_int(request, "before"),
                                                        _query_int(request, "watch"))
    return web.json_response({"hits": hits, "next_before": next_before})


def routes() -> list[web.RouteDef]:
    return [web.get("/api/watches", list_watches), web.post("/api/watches", post_watch),
            web.put("/api/watches/{id}", put_watch), web.delete("/api/watches/{id}", delete_watch),
            web.get("/api/watch-hits", list_hits)]
