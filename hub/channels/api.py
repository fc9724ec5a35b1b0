"""JSON API of channel codes: admins write, supervisors and admins read.

GET/POST /api/channels, GET/PUT/DELETE /api/channels/{id}, GET /api/channels/{id}/qr.png|qr.svg
(downloads; a WeCom code's PNG is WeCom's own image and it has no SVG), GET /api/channels/{id}/stats?days=30.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import audit, config_bus
from ..api import path_id
from ..auth_views import require_user
from ..errors import bad_request
from ..http_util import json_object as _json
from . import qr
from .service import ChannelService
from .stats import channel_stats

CHANNELS = web.AppKey("channels", ChannelService)
READERS = ("admin", "supervisor")


def _svc(request: web.Request) -> ChannelService:
    return request.app[CHANNELS]


def _id(request: web.Request) -> int:
    return path_id(request, "channel")  # the route only matches digits, but 10**20 is digits too


def _flag(value: str | None, name: str) -> bool | None:
    if value in (None, ""):
        return None
    if value.lower() not in ("true", "false", "1", "0"):
        raise bad_request(f"invalid_{name}", f"{name}: true or false", name)
    return value.lower() in ("true", "1")


async def list_codes(request: web.Request) -> web.Response:
    await require_user(request, *READERS)
    q = request.query
    codes = await _svc(request).list(q.get("platform"), q.get("account_id"), _flag(q.get("enabled"), "enabled"))
    return web.json_response({"channels": codes})


async def _audit(request: web.Request, user: Any, action: str, target: str, before: Any, after: Any) -> None:
    svc = _svc(request)
    await config_bus.publish(request, config_bus.CHANNEL_CODES)
    await audit.record(svc.db, svc.clock, actor=user, action=action, target=target, before=before, after=after,
                       request=request)


async def create_code(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    created = await _svc(request).create(await _json(request))
    await _audit(request, user, "channel_code.create", f"channel_code:{created['id']}", None, created)
    return web.json_response(created, status=201)


async def get_code(request: web.Request) -> web.Response:
    await require_user(request, *READERS)
    return web.json_response(await _svc(request).get(_id(request)))


async def put_code(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    code_id = _id(request)
    before = await _svc(request).get(code_id)
    after = await _svc(request).update(code_id, await _json(request))
    await _audit(request, user, "channel_code.update", f"channel_code:{code_id}", before, after)
    return web.json_response(after)


async def delete_code(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    code_id = _id(request)
    before = await _svc(request).get(code_id)
    result = await _svc(request).delete(code_id)
    await _audit(request, user, "channel_code.delete", f"channel_code:{code_id}", before, None)
    return web.json_response(result)


def _qr(kind: str):  # noqa: ANN202
    async def view(request: web.Request) -> web.Response:
        await require_user(request, *READERS)
        code = await _svc(request).get(_id(request))
        scale = request.query.get("scale", "10")
        if not (scale.isascii() and scale.isdigit()) or not 1 <= int(scale) <= 40:  # ("²" is a digit to isdigit)
            raise bad_request("invalid_scale", "scale: 1 to 40 pixels per module", "scale")
        if kind == "png" and qr.is_platform_image(code):
            body, served = await _svc(request).qr_image(code)  # WeCom's own image (scale does not apply)
        else:
            body, served = qr.render(qr.content_of(code), kind, int(scale)), kind
        return web.Response(body=body, content_type=qr.MEDIA[served], headers={
            "Content-Disposition": qr.content_disposition(code, served), "Cache-Control": "no-store"})

    return view


async def get_stats(request: web.Request) -> web.Response:
    await require_user(request, *READERS)
    svc = _svc(request)
    code_id = _id(request)
    await svc.get(code_id)  # 404 for an unknown code
    raw = request.query.get("days", "30")
    if not (raw.isascii() and raw.isdigit()):
        raise bad_request("invalid_days", "days must be an integer", "days")
    return web.json_response(await channel_stats(svc.db, svc.clock.now(), code_id, int(raw)))


def routes() -> list[web.RouteDef]:
    one = r"/api/channels/{id:\d+}"
    return [web.get("/api/channels", list_codes), web.post("/api/channels", create_code),
            web.get(one, get_code), web.put(one, put_code), web.delete(one, delete_code),
            web.get(one + "/qr.png", _qr("png")), web.get(one + "/qr.svg", _qr("svg")),
            web.get(one + "/stats", get_stats)]
