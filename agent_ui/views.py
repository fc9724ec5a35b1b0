"""The agent console's pages: ``/login``, ``/console`` and ``/`` plus its static files (``/ui/static/``).

Plain aiohttp handlers rendering jinja2 templates (autoescaped). The pages carry no inline script:
the console reads its start-up data from ``data-boot`` on ``<body>``, so a strict
Content-Security-Policy applies. Everything live goes over Socket.IO (docs/realtime.md).

Wiring (in ``hub.app.create_app``, before the app starts)::

    agent_ui.views.setup(app)        # idempotent; or app.router.add_routes(agent_ui.views.routes())
"""
from __future__ import annotations

import hashlib
import json
import pathlib
from functools import lru_cache
from typing import Any

import jinja2
from aiohttp import web

HERE = pathlib.Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
TEMPLATE_DIR = HERE / "templates"
STATIC_PREFIX = "/ui/static"

CHANNELS = {"wecom": "企业微信", "oa": "公众号", "kf": "微信客服"}
STATUSES = [("online", "在线"), ("busy", "忙碌"), ("away", "离开"), ("offline", "离线")]

# inline scripts and styles are never used; images may come from the platforms' CDNs (mmbiz.qpic.cn ...)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https: http:; "
       "connect-src 'self' ws: wss:; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")


@lru_cache(maxsize=256)
def _version(rel: str, mtime_ns: int, size: int) -> str:
    return hashlib.sha1((STATIC_DIR / rel).read_bytes()).hexdigest()[:10]


def static_url(rel: str) -> str:
    """``/ui/static/<rel>?v=<content hash>``: browsers cache hard, a changed file gets a new URL."""
    path = (STATIC_DIR / rel).resolve()
    if STATIC_DIR not in path.parents or not path.is_file():
        raise ValueError(f"no static file {rel}")
    st = path.stat()
    return f"{STATIC_PREFIX}/{rel}?v={_version(rel, st.st_mtime_ns, st.st_size)}"


_env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                          undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
_env.globals.update(static=static_url, channels=CHANNELS, statuses=STATUSES)


def render(name: str, status: int = 200, **context: Any) -> web.Response:
    html = _env.get_template(name).render(**context)
    resp = web.Response(text=html, status=status, content_type="text/html", charset="utf-8")
    resp.headers["Content-Security-Policy"] = CSP
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Content-Type-Options"] = "nosniff"
    resp.headers["X-Frame-Options"] = "DENY"
    resp.headers["Referrer-Policy"] = "no-referrer"  # also keeps WeChat's image CDN from refusing hotlinks
    return resp


async def _current_user(request: web.Request) -> Any:
    from hub.auth_views import current_user  # late: hub.app may import this module
    return await current_user(request)


def _safe_next(value: str | None) -> str:
    """Only a local path (``/console...``) may follow a login; never another site."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/console"


async def index(request: web.Request) -> web.Response:
    user = await _current_user(request)
    raise web.HTTPFound("/console" if user else "/login")


async def login_page(request: web.Request) -> web.Response:
    nxt = _safe_next(request.query.get("next"))
    if await _current_user(request) is not None:
        raise web.HTTPFound(nxt)
    return render("login.html", next_url=nxt)


async def console_page(request: web.Request) -> web.Response:
    user = await _current_user(request)
    if user is None:
        raise web.HTTPFound("/login")
    from hub.app import HUB
    hub = request.app[HUB]
    boot = {"user": user.public(), "epoch": hub.push.streams.epoch, "channels": CHANNELS}
    return render("console.html", user=user, boot=json.dumps(boot, ensure_ascii=False))


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/", index, name="ui_index"),
        web.get("/login", login_page, name="ui_login"),
        web.get("/console", console_page, name="ui_console"),
        web.static(STATIC_PREFIX, STATIC_DIR, name="ui_static"),
    ]


def setup(app: web.Application) -> web.Application:
    """Add the console's routes once (a second call, or routes already added, changes nothing)."""
    if any(getattr(r, "canonical", None) == "/console" for r in app.router.resources()):
        return app
    app.router.add_routes(routes())
    return app
