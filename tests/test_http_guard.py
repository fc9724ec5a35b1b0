"""The per-route guard (hub/http_guard.py) and the callbacks' stamp (hub/account_status.py): every
route of the app has one or the other, the app runs no aiohttp middleware, and each wrapper does
what the middlewares did (JSON errors, CSRF, the callback status)."""
from __future__ import annotations

import logging

from aiohttp import web

import hub.callbacks.common as callbacks_common
from hub.account_status import STAMPED
from hub.csrf import CSRF_COOKIE, CSRF_HEADER, SESSION_COOKIE, csrf_token
from hub.errors import HubError
from hub.http_guard import GUARDED, add_routes
from tests.conftest import WECOM, auth
from tests.helpers import post
from tests.wechat_client import text_xml


async def test_every_route_is_guarded_or_stamped(client):
    app = client.server.app
    assert not app.middlewares  # what a callback would pay on every request
    seen = {"guarded": 0, "stamped": 0}
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if isinstance(route.resource, web.StaticResource) or path.startswith("/socket.io"):
            continue  # files, and Socket.IO (its handshake checks session and origin: hub/realtime.py)
        if path.startswith("/callbacks/"):
            assert getattr(route.handler, STAMPED, False), (route.method, path)
            seen["stamped"] += 1
        else:
            assert getattr(route.handler, GUARDED, False), (route.method, path)
            seen["guarded"] += 1
    assert seen["stamped"] == 6 and seen["guarded"] > 50, seen  # GET (and its HEAD) and POST, per platform


async def test_guard_answers_json_errors_and_checks_csrf(aiohttp_client, caplog):
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret detail")

    async def refused(request: web.Request) -> web.Response:
        raise HubError(409, "taken", "already taken", field="id")

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPFound("/login")

    async def write(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    add_routes(app, [web.get("/boom", boom), web.get("/refused", refused), web.get("/moved", moved),
                     web.post("/write", write)])
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="hub.api"):
        resp = await client.get("/boom")
    assert resp.status == 500 and await resp.json() == {"error": "internal", "message": "internal error"}
    assert "unhandled error on GET /boom" in caplog.text
    resp = await client.get("/refused")
    assert resp.status == 409 and await resp.json() == {"error": "taken", "message": "already taken", "field": "id"}
    resp = await client.get("/moved", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"] == "/login"

    cookie = {SESSION_COOKIE: "s3ss10n"}
    resp = await client.post("/write", cookies=cookie)
    assert resp.status == 403 and (await resp.json())["error"] == "csrf_token"
    resp = await client.post("/write", cookies=cookie, headers={CSRF_HEADER: csrf_token("s3ss10n")})
    assert resp.status == 200 and resp.cookies[CSRF_COOKIE].value == csrf_token("s3ss10n")
    assert (await client.post("/write", headers={"Authorization": "Bearer x"})).status == 200


async def test_an_unexpected_callback_error_is_a_noted_500(client, hub, wecom, monkeypatch, caplog):
    def broken(*_args, **_kwargs):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(callbacks_common, "from_xml_fields", broken)
    with caplog.at_level(logging.ERROR, logger="hub.account_status"):
        resp = await post(client, wecom, text_xml(WECOM["receive_id"], "wmBroken", "你好", 7101))
    assert resp.status == 500 and await resp.text() == "internal error"
    assert "parser bug" in caplog.text  # the traceback is logged, not sent
    status = (await (await client.get("/api/accounts/status", headers=auth())).json())["status"]
    assert "500" in status[WECOM["id"]]["last_failure"]
