"""The audit log: every admin change (who, what, before/after, when, from where) and, for the privacy
module, every access to personal data. ``record`` is the one way in; ``GET /api/audit`` (admins) reads it.

Secrets never reach the table: any key that names a secret (token, secret, aes key, password, ...) has
its value replaced by "***" at any depth of ``before``/``after``/``detail``.
"""
from __future__ import annotations

import csv
import io
import ipaddress
import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

from aiohttp import web
from sqlalchemy import and_, func, or_, select

from . import spreadsheet
from .api import MAX_ID, int_param
from .clock import Clock
from .db import Database, retry_busy
from .errors import bad_request
from .http_guard import add_routes
from .http_util import hub_of
from .models import AuditEntry

audit_log = AuditEntry.__table__

KINDS = ("change", "access")
MASK = "***"
PAGE_SIZE = 50
CSV_LIMIT = 50_000
_SECRET_KEY = re.compile(r"(secret|token|aes_?key|password|passwd|private_?key|api_?key|credential)", re.I)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` with every secret-named key's value replaced by "***" (at any depth)."""
    if isinstance(value, dict):
        return {k: (MASK if is_secret_key(str(k)) and v not in (None, "") else mask_secrets(v))
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(v) for v in value]
    return value


def _dump(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(mask_secrets(value), ensure_ascii=False, sort_keys=True, default=str)


def client_ip(remote: str, forwarded_for: str, trusted_proxies: Iterable[str]) -> str:
    """The client address: ``X-Forwarded-For`` is believed only when the direct peer is a trusted proxy
    (addresses or CIDR networks); then the right-most address that is not itself a trusted proxy."""
    nets = []
    for item in trusted_proxies:
        try:
            nets.append(ipaddress.ip_network(item.strip(), strict=False))
        except ValueError:
            continue

    def trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr.strip())
        except ValueError:
            return False
        return any(ip in net for net in nets)

    if not forwarded_for or not trusted(remote):
        return remote
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not trusted(hop):
            return hop[:64]
    return (hops[0] if hops else remote)[:64]


def _trusted_proxies(request: web.Request) -> tuple[str, ...]:
    try:
        config = hub_of(request).config
    except Exception:  # noqa: BLE001 - no hub (a bare app in a test): trust nobody
        return ()
    value = getattr(config, "trusted_proxies", ()) or ()
    return tuple(value.split(",")) if isinstance(value, str) else tuple(value)


def request_ip(request: web.Request) -> str:
    """The client's address, through the configured trusted proxies (nginx in front)."""
    return client_ip(request.remote or "", request.headers.get("X-Forwarded-For", ""), _trusted_proxies(request))


async def record(db: Database, clock: Clock, *, kind: str = "change", actor: Any, action: str, target: str,
                 before: Any = None, after: Any = None, request: web.Request | None = None,
                 detail: Any = None) -> None:
    """Append one audit entry. ``actor`` is a ``hub.users.UserInfo`` (None: the system or the CLI)."""
    if kind not in KINDS:
        raise ValueError(f"audit kind must be one of {KINDS}")
    ip = agent = ""
    if request is not None:
        ip = request_ip(request)
        agent = request.headers.get("User-Agent", "")[:256]
    row = {"at": clock.now(), "kind": kind, "actor_id": getattr(actor, "id", None),
           "actor_name": (getattr(actor, "username", None) or "system")[:64],
           "actor_role": (getattr(actor, "role", None) or "system")[:16],
           "action": action[:64], "target": str(target)[:128], "before": _dump(before), "after": _dump(after),
           "ip": ip, "user_agent": agent, "detail": _dump(detail)}

    async def write() -> None:
        async with db.write() as conn:
            await conn.execute(audit_log.insert().values(**row))

    await retry_busy(write)


# -- reading ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuditQuery:
    kind: str = ""
    actor: str = ""
    action: str = ""
    target: str = ""
    since: float | None = None
    until: float | None = None
    page: int = 1


def _time(value: str, name: str) -> float | None:
    """Epoch seconds, or an ISO date / date-time (UTC unless it carries an offset)."""
    value = value.strip()
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise bad_request("invalid_" + name, f"{name} must be epoch seconds or an ISO date", name) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def parse_query(params: Any) -> AuditQuery:
    kind = str(params.get("kind", "")).strip()
    if kind and kind not in KINDS:
        raise bad_request("invalid_kind", "kind must be change or access", "kind")
    page = int_param(params.get("page"), "page", 1)
    if page < 1:
        raise bad_request("invalid_page", "page must be 1 or more", "page")
    since, until = _time(str(params.get("since", "")), "since"), _time(str(params.get("until", "")), "until")
    if since is not None and until is not None and until < since:
        raise bad_request("invalid_until", "until is before since", "until")
    return AuditQuery(kind, str(params.get("actor", "")).strip(), str(params.get("action", "")).strip(),
                      str(params.get("target", "")).strip(), since, until, page)


def _actor_id(actor: str) -> int | None:
    """The user id an actor of digits may be; none past BIGINT (it reached the database, a 500) or for
    digits int() does not read ('²')."""
    return int(actor) if actor.isascii() and actor.isdigit() and int(actor) <= MAX_ID else None


def _conditions(q: AuditQuery) -> list:
    c = audit_log.c
    conds = []
    if q.kind:
        conds.append(c.kind == q.kind)
    if q.actor:
        actor_id = _actor_id(q.actor)
        conds.append(c.actor_name == q.actor if actor_id is None
                     else or_(c.actor_name == q.actor, c.actor_id == actor_id))
    if q.action:  # "faq" matches faq.create, faq.update ...; "faq.update" only itself
        conds.append(c.action == q.action if "." in q.action else
                     or_(c.action == q.action, c.action.like(q.action.replace("%", "") + ".%")))
    if q.target:  # "routing_rule" matches every rule, "routing_rule:12" that one
        conds.append(c.target == q.target if ":" in q.target else
                     or_(c.target == q.target, c.target.like(q.target.replace("%", "") + ":%")))
    if q.since is not None:
        conds.append(c.at >= q.since)
    if q.until is not None:
        conds.append(c.at < q.until)
    return conds


def entry_json(row: Any) -> dict:
    return {"id": row.id, "at": row.at, "kind": row.kind, "actor_id": row.actor_id, "actor_name": row.actor_name,
            "actor_role": row.actor_role, "action": row.action, "target": row.target,
            "before": json.loads(row.before) if row.before else None,
            "after": json.loads(row.after) if row.after else None,
            "ip": row.ip, "user_agent": row.user_agent, "detail": json.loads(row.detail) if row.detail else None}


async def search(db: Database, q: AuditQuery, page_size: int = PAGE_SIZE) -> tuple[list[dict], int]:
    """One page of entries (newest first) and the total count."""
    where = and_(*_conditions(q)) if _conditions(q) else None
    stmt = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc())
    count = select(func.count()).select_from(audit_log)
    if where is not None:
        stmt, count = stmt.where(where), count.where(where)
    async with db.read_heavy() as conn:
        total = int((await conn.execute(count)).scalar() or 0)
        offset = min((q.page - 1) * page_size, MAX_ID)  # a page past the last: none, not past BIGINT (a 500)
        rows = (await conn.execute(stmt.limit(page_size).offset(offset))).all()
    return [entry_json(r) for r in rows], total


CSV_COLUMNS = ("id", "at", "time_utc", "kind", "actor_id", "actor_name", "actor_role", "action", "target",
               "before", "after", "ip", "user_agent", "detail")


def to_csv(entries: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for e in entries:
        when = datetime.fromtimestamp(e["at"], timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        writer.writerow(spreadsheet.row([
            e["id"], e["at"], when, e["kind"], e["actor_id"] if e["actor_id"] is not None else "",
            e["actor_name"], e["actor_role"], e["action"], e["target"],
            *(json.dumps(e[k], ensure_ascii=False) if e[k] is not None else "" for k in ("before", "after")),
            e["ip"], e["user_agent"], json.dumps(e["detail"], ensure_ascii=False) if e["detail"] else ""]))
    return out.getvalue()


async def get_audit(request: web.Request) -> web.Response:
    from .auth_views import require_user
    await require_user(request, "admin")
    hub = hub_of(request)
    q = parse_query(request.query)
    if request.query.get("format") == "csv":
        entries, _ = await search(hub.db, AuditQuery(q.kind, q.actor, q.action, q.target, q.since, q.until, 1),
                                  page_size=CSV_LIMIT)
        return web.Response(body=("\ufeff" + to_csv(entries)).encode(), content_type="text/csv", charset="utf-8",
                            headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'})
    fmt = request.query.get("format", "")
    if fmt not in ("", "json"):
        raise bad_request("invalid_format", "format must be json or csv", "format")
    entries, total = await search(hub.db, q)
    return web.json_response({"entries": entries, "total": total, "page": q.page, "page_size": PAGE_SIZE})


def routes() -> list[web.RouteDef]:
    return [web.get("/api/audit", get_audit)]


def install(app: web.Application) -> None:
    add_routes(app, routes())
