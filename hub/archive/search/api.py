"""HTTP: archive search and conversation export (supervisors and admins; agents 403).

GET /api/search?q=&account=&channel=&channel_code=&agent=&customer=&tag=&since=&until=&direction=&limit=&before=
GET /api/conversations/{id}/export?format=csv|json
"""
from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from sqlalchemy import select

from ...api import int_param, path_id
from ...auth_views import require_user
from ...errors import bad_request
from ... import spreadsheet
from ...http_util import hub_of, storable
from ...users import UserInfo
from ..export import CSV_FIELDS
from ..history import conversation, message_json, messages
from .highlight import highlight
from .query import MAX_LIMIT, SearchFilters, search
from .tokens import QueryError, QueryTerm

READERS = ("supervisor", "admin")
CHANNELS = ("wecom", "oa", "kf")
DIRECTIONS = ("in", "out")


def render_hit(row: Any, terms: list[QueryTerm], user: UserInfo) -> dict[str, Any]:
    """One result as the API shows it: the one place to mask or trim what a role may see."""
    from ...privacy.masking import mask_for
    body = mask_for(user, row.text or "")  # (a search by filters alone lists images too) phones, ID numbers ... masked for roles without the right (hub/privacy)
    return {
        "message_id": row.id, "conversation_id": row.conversation_id, "account_id": row.account_id,
        "channel": row.channel, "channel_code": row.channel_code, "direction": row.direction,
        "kind": row.kind, "sender": row.sender, "customer_id": row.customer_id, "peer_id": row.peer_id,
        "text": body, "highlight": highlight(body, terms), "masked": body != (row.text or ""), "sent_at": row.sent_at,
        "created_at": row.created_at, "recalled": row.recalled_at is not None,
    }


def _time(value: str | None, name: str) -> float | None:
    """Epoch seconds or ISO 8601 (a date alone means its midnight UTC)."""
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        pass
    else:  # nan or inf found nothing and slipped past "until after since"
        if not math.isfinite(number):
            raise bad_request("invalid_" + name, f"{name} must be a finite time", name)
        return number
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request("invalid_" + name, f"{name} must be ISO 8601 or epoch seconds", name) from None
    return (dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)).timestamp()


def _choice(value: str | None, name: str, allowed: tuple[str, ...]) -> str | None:
    if value in (None, ""):
        return None
    if value not in allowed:
        raise bad_request("invalid_" + name, f"{name} must be one of {', '.join(allowed)}", name)
    return value


def parse_filters(q: Any) -> SearchFilters:
    since, until = _time(q.get("since"), "since"), _time(q.get("until"), "until")
    if since is not None and until is not None and since >= until:
        raise bad_request("invalid_until", "until must be after since", "until")
    for name in ("account", "channel_code", "tag"):  # a NUL was a 500 on PostgreSQL
        if not storable(q.get(name) or ""):
            raise bad_request("invalid_" + name, f"{name}: no NUL character, no half of an emoji", name)
    return SearchFilters(
        account=q.get("account") or None, channel=_choice(q.get("channel"), "channel", CHANNELS),
        channel_code=q.get("channel_code") or None, agent=int_param(q.get("agent"), "agent"),
        customer=int_param(q.get("customer"), "customer"), tag=q.get("tag") or None, since=since, until=until,
        direction=_choice(q.get("direction"), "direction", DIRECTIONS))


async def get_search(request: web.Request) -> web.Response:
    user = await require_user(request, *READERS)
    q = request.query
    filters = parse_filters(q)
    limit = int_param(q.get("limit"), "limit")
    limit = 50 if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request("invalid_limit", f"limit must be 1 to {MAX_LIMIT}", "limit")
    try:
        page = await search(hub_of(request).db, q.get("q", ""), filters, limit, int_param(q.get("before"), "before"))
    except QueryError as exc:
        raise bad_request("invalid_query", str(exc), "q") from None
    from ...privacy.masking import mask_text
    from ...privacy.views import audit_access
    await audit_access(request, user, "search", "archive", {"q": mask_text(q.get("q", "")), "results": len(page.rows),
                                                             **{k: v for k, v in q.items() if k not in ("q",)}})
    return web.json_response({"query": q.get("q", ""), "terms": [t.text for t in page.terms],
                              "results": [render_hit(r, page.terms, user) for r in page.rows],
                              "next_before": page.next_before})


async def get_export(request: web.Request) -> web.Response:
    user = await require_user(request, *READERS)
    fmt = request.query.get("format", "json")
    if fmt not in ("csv", "json"):
        raise bad_request("invalid_format", "format must be csv or json", "format")
    conv_id = path_id(request, "conversation")
    db = hub_of(request).db
    conv = await conversation(db, conv_id)  # 404 when unknown
    async with db.read_heavy() as conn:
        rows = (await conn.execute(select(messages).where(messages.c.conversation_id == conv_id)
                                   .order_by(messages.c.id))).all()
    from ...privacy.views import audit_access, mask_messages
    items = mask_messages(user, [message_json(r) for r in rows])
    await audit_access(request, user, "export.conversation", f"conversation:{conv_id}",
                       {"format": fmt, "messages": len(items)})
    name = f"conversation-{conv_id}.{fmt}"
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"}
    if fmt == "json":
        body = json.dumps({"conversation": conv, "messages": items}, ensure_ascii=False)
        return web.Response(text=body, content_type="application/json", headers=headers)
    out = io.StringIO()
    # for the people who open it in a spreadsheet: the time in the brand's timezone and who wrote it (the
    # epoch times and "agent:3" are there for machines)
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS + ["local_time", "sender_name"], extrasaction="ignore")
    writer.writeheader()
    readable = await _readable(hub_of(request), items)
    writer.writerows(spreadsheet.record({**item, **readable(item)}) for item in items)
    # a BOM so that Excel, which most supervisors open exports with, reads the Chinese as UTF-8
    return web.Response(text="\ufeff" + out.getvalue(), content_type="text/csv", charset="utf-8", headers=headers)


async def _readable(hub: Any, items: list[dict[str, Any]]) -> Any:
    """item -> {"local_time", "sender_name"}: the brand's clock and the agents' names."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from ...models import User
    from ...supervisor.stats import brand_timezone
    zone = ZoneInfo(await brand_timezone(hub.settings))
    ids = {int(s[6:]) for s in (i.get("sender") or "" for i in items) if s.startswith("agent:") and s[6:].isdigit()}
    names: dict[int, str] = {}
    if ids:
        users = User.__table__
        async with hub.db.read() as conn:
            names = {r.id: r.display_name or r.username for r in await conn.execute(
                select(users.c.id, users.c.display_name, users.c.username).where(users.c.id.in_(ids)))}
    fixed = {"customer": "客户", "bot": "机器人", "system": "系统"}

    def readable(item: dict[str, Any]) -> dict[str, Any]:
        sender = item.get("sender") or ""
        name = fixed.get(sender) or (names.get(int(sender[6:]), sender) if sender.startswith("agent:")
                                     and sender[6:].isdigit() else sender)
        at = item.get("created_at")
        local = datetime.fromtimestamp(at, zone).strftime("%Y-%m-%d %H:%M:%S") if isinstance(at, (int, float)) else ""
        return {"local_time": local, "sender_name": name}

    return readable


def routes() -> list[web.RouteDef]:
    return [web.get("/api/search", get_search), web.get("/api/conversations/{id}/export", get_export)]
