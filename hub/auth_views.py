"""Login, logout and the current user, for the console (cookie) and API clients (bearer token)."""
from __future__ import annotations

import hmac

from aiohttp import web

from .errors import HubError, bad_request
from .http_util import hub_of as _hub
from .realtime import COOKIE
from .users import UserInfo, login, logout, user_for_token


def request_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth[7:]
    return request.cookies.get(COOKIE)


SERVICE_USER = UserInfo(0, "service", "API token", "admin", (), 0, "offline")


async def current_user(request: web.Request) -> UserInfo | None:
    """The logged-in user; the configured HUB_API_TOKEN acts as an admin service account."""
    hub = _hub(request)
    token = request_token(request)
    if token and hub.api_token and hmac.compare_digest(token.encode(), hub.api_token.encode()):
        return SERVICE_USER
    return await user_for_token(hub.db, hub.clock, token)


async def require_user(request: web.Request, *roles: str) -> UserInfo:
    """The logged-in user (401 without one), with one of ``roles`` if given (403 otherwise)."""
    user = await current_user(request)
    if user is None:
        raise HubError(401, "unauthorized", "log in first")
    if roles and user.role not in roles:
        raise HubError(403, "forbidden", "your role cannot do this")
    return user


async def post_login(request: web.Request) -> web.Response:
    hub = _hub(request)
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise bad_request("invalid_json", "body must be JSON") from None
        if not isinstance(body, dict):  # [] or null: was an AttributeError, a 500
            raise bad_request("invalid_json", "body must be an object")
    else:
        body = dict(await request.post())
    username, password = str(body.get("username") or ""), str(body.get("password") or "")
    if not username or not password:
        raise bad_request("missing_credentials", "username and password are required", "username")
    from .audit import request_ip  # the client's address, not nginx's: one address per person
    token, user = await login(hub.db, hub.clock, hub.limiter, username, password, request_ip(request))
    resp = web.json_response({"user": user.public(), "token": token})
    from .privacy.transport import is_https  # Secure behind a TLS-terminating trusted proxy too
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Lax", secure=is_https(request), path="/",
                    max_age=12 * 3600)
    return resp


async def post_logout(request: web.Request) -> web.Response:
    token = request_token(request)
    if token:
        await logout(_hub(request).db, token)
    resp = web.json_response({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


async def get_me(request: web.Request) -> web.Response:
    user = await require_user(request)
    hub = _hub(request)
    return web.json_response({"user": user.public(), "epoch": hub.push.streams.epoch})


def routes() -> list[web.RouteDef]:
    return [web.post("/api/login", post_login), web.post("/api/logout", post_logout), web.get("/api/me", get_me)]
