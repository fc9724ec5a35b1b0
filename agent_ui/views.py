"""The agent console's pages: ``/login``, ``/console`` and ``/`` plus its static files (``/ui/static/``),
and the operator pages ``/admin/<page>`` listed in ``ADMIN_PAGES`` (the admin's; agents and supervisors
get a 403 page; they all build on the JSON APIs).

Plain aiohttp handlers rendering jinja2 templates (autoescaped). The pages carry no inline script:
the console reads its start-up data from ``data-boot`` on ``<body>``, so a strict
Content-Security-Policy applies. Everything live goes over Socket.IO (docs/realtime.md).

Wiring (in ``hub.app.create_app``, before the app starts)::

    agent_ui.views.setup(app)        # idempotent; or add_routes(app, agent_ui.views.routes())
"""
from __future__ import annotations

import hashlib
import json
import pathlib
import re
from urllib.parse import quote
from functools import lru_cache
from typing import Any

import jinja2
from aiohttp import web

from hub.http_guard import add_routes

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


def forbidden(user: Any, area: str, what: str, who: tuple[str, ...], hint: str = "") -> web.Response:
    """The 403 page of a page the user's role may not open."""
    return render("forbidden.html", status=403, user=user, role_labels=ROLE_LABELS, area=area, what=what, who=who,
                  hint=hint)


async def _current_user(request: web.Request) -> Any:
    from hub.auth_views import current_user  # late: hub.app may import this module
    return await current_user(request)


# a local path: one "/", then no "/" or "\\" right after it, and no space or control character anywhere
# (a browser drops tabs and newlines from a URL: "/\t/evil.example" is "//evil.example", another site)
_LOCAL_PATH = re.compile(r"/(?![/\\])[^\x00-\x20\x7f\\]*")


def _safe_next(value: str | None) -> str:
    """Only a local path (``/console...``) may follow a login; never another site."""
    if value and _LOCAL_PATH.fullmatch(value):
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


async def _timezone(hub: Any) -> str:
    """The brand's timezone: the pages show every time, and draw every day boundary, in it (util.js)."""
    from hub.supervisor.stats import brand_timezone
    return await brand_timezone(hub.settings)


async def console_page(request: web.Request) -> web.Response:
    user = await _current_user(request)
    if user is None:
        raise web.HTTPFound("/login")
    from hub.app import HUB
    hub = request.app[HUB]
    boot = {"user": user.public(), "epoch": hub.push.streams.epoch, "channels": CHANNELS,
            "timezone": await _timezone(hub)}
    return render("console.html", user=user, boot=json.dumps(boot, ensure_ascii=False))


# -- operator pages ----------------------------------------------------------------------------------
ADMIN_PAGES = [
    ("accounts", "/admin/accounts", "平台账号", "企业微信 / 公众号的回调地址、Token 与 EncodingAESKey，以及平台是否连得上"),
    ("channels", "/admin/channels", "渠道活码", "为每个投放位置生成二维码：标签、欢迎语、接待人员，按天看添加与咨询"),
    ("faq", "/admin/faq", "知识库", "FAQ 问答、导入导出、品牌词典，以及机器人答不上来的问题"),
    ("keywords", "/admin/keywords", "关键词回复", "客户消息命中关键词时自动回复；优先级高的规则先匹配"),
    ("bot_settings", "/admin/bot-settings", "机器人设置", "欢迎语、营业时间与节假日、非工作时间回复、转人工关键词"),
    ("routing", "/admin/routing", "路由与技能组", "从上到下匹配，第一条命中的规则决定客户分到哪个技能组；拖动调整顺序。技能组的成员与接待上限"),
    ("sla", "/admin/sla", "SLA 与质检", "响应时限（超时提醒主管、转给他人），以及会话质检规则：禁用语、必说话术、客户情绪、回复过慢"),
    ("tickets", "/admin/tickets", "工单设置", "工单类型（处理时限、默认优先级与技能组）和工单分派规则"),
    ("users", "/admin/users", "用户", "客服账号、角色、技能组与接待上限"),
    ("audit", "/admin/audit", "操作日志", "谁在什么时候改了什么（修改前 / 修改后）"),
    ("privacy", "/admin/privacy", "隐私与数据", "保存期限、法律保全、按客户请求删除个人信息，以及删除与清理的记录"),
]
ADMIN_ROLES = ("admin",)  # supervisors have their own dashboard; the operator pages are the admin's
ROLE_LABELS = {"agent": "客服", "supervisor": "主管", "admin": "管理员"}
PLATFORM_LABELS = {"wecom": "企业微信", "oa": "公众号", "kf": "微信客服"}


async def _admin_boot(request: web.Request, user: Any, page: str) -> dict[str, Any]:
    from hub.app import HUB
    hub = request.app[HUB]
    boot: dict[str, Any] = {"page": page, "user": user.public(), "can_write": user.role == "admin",
                            "roles": ROLE_LABELS, "platforms": PLATFORM_LABELS, "accounts": [],
                            "timezone": await _timezone(hub)}
    try:
        from hub.accounts import list_accounts
        boot["accounts"] = [{"id": a.id, "platform": a.platform, "name": a.name} for a in await list_accounts(hub.db)]
    except Exception:  # noqa: BLE001 - the pages work without the account names
        pass
    matcher = getattr(getattr(hub, "kb", None), "matcher", None)
    boot["faq_thresholds"] = {"confident": getattr(matcher, "confident", 62.0), "suggest": getattr(matcher, "suggest", 35.0)}
    return boot


def _admin_handler(page: str):  # noqa: ANN202
    title, desc = next((t, d) for p, _, t, d in ADMIN_PAGES if p == page)

    async def handler(request: web.Request) -> web.Response:
        user = await _current_user(request)
        if user is None:
            raise web.HTTPFound("/login?next=" + quote(request.path, safe="/"))
        if user.role not in ADMIN_ROLES:
            return forbidden(user, "运营管理", "运营管理（知识库、关键词、路由、用户、平台账号、渠道活码、机器人设置、操作日志）",
                             ("管理员",), "如需调整，请联系管理员。")
        boot = await _admin_boot(request, user, page)
        return render(f"admin_{page}.html", user=user, page=page, title=title, description=desc,
                      nav=ADMIN_PAGES, can_write=boot["can_write"], role_labels=ROLE_LABELS,
                      boot=json.dumps(boot, ensure_ascii=False))
    handler.__name__ = f"admin_{page}_page"
    return handler


async def supervisor_page(request: web.Request) -> web.Response:
    """The live supervisor dashboard (supervisors and admins; agents get a 403 page)."""
    user = await _current_user(request)
    if user is None:
        raise web.HTTPFound("/login?next=/supervisor")
    if user.role not in ("supervisor", "admin"):
        return forbidden(user, "主管看板", "主管看板", ("主管", "管理员"))
    from hub.app import HUB
    boot = {"user": user.public(), "epoch": request.app[HUB].push.streams.epoch, "roles": ROLE_LABELS,
            "timezone": await _timezone(request.app[HUB])}
    return render("dashboard.html", user=user, role_labels=ROLE_LABELS,
                  boot=json.dumps(boot, ensure_ascii=False))


async def search_page(request: web.Request) -> web.Response:
    """Archive search and keyword watches (supervisors and admins; agents get a 403 page)."""
    user = await _current_user(request)
    if user is None:
        raise web.HTTPFound("/login?next=" + quote(request.path, safe="/"))
    if user.role not in ("supervisor", "admin"):
        return forbidden(user, "记录搜索", "聊天记录搜索、会话导出和关键词监控", ("主管", "管理员"))
    from hub.app import HUB
    boot = await _admin_boot(request, user, "search")
    boot.update(can_write=True, epoch=request.app[HUB].push.streams.epoch, channels=CHANNELS)  # watches are theirs to edit
    return render("search.html", user=user, role_labels=ROLE_LABELS,
                  boot=json.dumps(boot, ensure_ascii=False))


async def admin_index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/admin/faq")


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.get("/", index, name="ui_index"),
        web.get("/login", login_page, name="ui_login"),
        web.get("/console", console_page, name="ui_console"),
        web.get("/admin", admin_index, name="ui_admin"),
        web.get("/supervisor", supervisor_page, name="ui_supervisor"),
        web.get("/supervisor/search", search_page, name="ui_supervisor_search"),
        *[web.get(path, _admin_handler(page), name=f"ui_admin_{page}") for page, path, _, _ in ADMIN_PAGES],
        web.static(STATIC_PREFIX, STATIC_DIR, name="ui_static"),
    ]


def setup(app: web.Application) -> web.Application:
    """Add the console's routes once (a second call, or routes already added, changes nothing)."""
    if any(getattr(r, "canonical", None) == "/console" for r in app.router.resources()):
        return app
    add_routes(app, routes())
    return app
