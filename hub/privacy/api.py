"""Privacy JSON API (admins unless noted; see docs/privacy.md):

* ``GET /api/privacy/retention`` — policies and each account's effective limits;
  ``PUT /api/privacy/retention`` ``{account_id ("*" = default), messages_days, media_days, orders_days}``
  (days; "forever"; null = as the default); ``DELETE /api/privacy/retention/{account_id}``.
* ``GET /api/privacy/purges`` — purge runs; ``POST /api/privacy/purges`` ``{"dry_run": bool}`` — run now.
* ``GET /api/holds[?all=1]``, ``POST /api/holds`` ``{kind: customer|conversation, target_id, reason}``,
  ``DELETE /api/holds/{id}`` (lift).
* ``POST /api/customers/{id}/erase`` ``{requester, reason}`` (``?dry_run=1``: what would go, nothing written);
  ``POST /api/erasures`` ``{customer_id | identity: "kind:value" [, account_id], requester, reason, dry_run}``;
  ``GET /api/erasures[?identity=kind:value&account_id=]``.
* ``POST /api/reveal`` (any user who may read the conversation / customer)
  ``{"message_id": n}`` or ``{"platform", "order_id", "field": receiver_name|receiver_phone|receiver_address}``
  -> ``{"value": ...}``; every reveal is written to the access audit.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web
from sqlalchemy import delete, select

from .. import audit
from ..api import int_param
from ..auth_views import require_user
from ..errors import HubError, bad_request, not_found
from ..http_util import hub_of, json_object, path_int, storable
from ..models import Account, Conversation, Message, RetentionPolicy, ServiceSession
from ..models.orders import OrderRow
from ..orders.model import order_key
from ..push import SUPERVISORS
from . import erasure, holds
from .erasure_watch import forget_erased
from .masking import ORDER_FIELDS
from .purge import Purger, load_policies, run_json
from .retention import DEFAULT_ACCOUNT, Policy, effective, parse_days

PURGER = web.AppKey("privacy_purger", Purger)
policies_t = RetentionPolicy.__table__


def _purger(request: web.Request) -> Purger:
    if PURGER not in request.app:
        raise HubError(503, "starting", "the hub is starting")
    return request.app[PURGER]


def actor(user: Any) -> str:
    return user.username


async def get_retention(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    hub = hub_of(request)
    policies = await load_policies(hub.db)
    by_id = {p.account_id: p for p in policies}
    async with hub.db.read() as conn:
        accounts = list((await conn.execute(select(Account.__table__.c.id).order_by(Account.__table__.c.id))).scalars())
    return web.json_response({"policies": [p.public() for p in policies],
                              "effective": [effective(by_id, a).public() for a in accounts],
                              "default": effective(by_id, DEFAULT_ACCOUNT).public()})


async def put_retention(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub = hub_of(request)
    body = await json_object(request)
    account_id = str(body.get("account_id") or DEFAULT_ACCOUNT)
    if not storable(account_id):
        raise not_found("unknown_account", "no such account")
    values = {f: parse_days(body.get(f), f) for f in ("messages_days", "media_days", "orders_days")}
    if account_id != DEFAULT_ACCOUNT and values["orders_days"] is not None:
        raise bad_request("invalid_orders_days", "orders follow the default policy (account_id \"*\")", "orders_days")
    async with hub.db.write() as conn:
        if account_id != DEFAULT_ACCOUNT and (await conn.execute(select(Account.__table__.c.id).where(
                Account.__table__.c.id == account_id))).first() is None:
            raise not_found("unknown_account", f"no account {account_id}")
        before = (await conn.execute(select(policies_t).where(policies_t.c.account_id == account_id))).first()
        row = dict(values, updated_at=hub.clock.now(), updated_by=actor(user))
        if before is None:
            await conn.execute(policies_t.insert().values(account_id=account_id, **row))
        else:
            await conn.execute(policies_t.update().where(policies_t.c.account_id == account_id).values(**row))
    await audit.record(hub.db, hub.clock, actor=user, action="retention.set", target=f"account:{account_id}",
                       before=dict(before._mapping) if before else None, after=values, request=request)
    return web.json_response(Policy(account_id, **values).public())


async def delete_retention(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub = hub_of(request)
    account_id = request.match_info["account_id"]
    if not storable(account_id):
        raise not_found("unknown_policy", "no such retention policy")
    async with hub.db.write() as conn:
        res = await conn.execute(delete(policies_t).where(policies_t.c.account_id == account_id))
    if not res.rowcount:
        raise not_found("unknown_policy", f"no retention policy for {account_id}")
    await audit.record(hub.db, hub.clock, actor=user, action="retention.delete", target=f"account:{account_id}",
                       request=request)
    return web.json_response({"ok": True})


async def list_purges(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    from ..models import PurgeRun
    t = PurgeRun.__table__
    async with hub_of(request).db.read() as conn:
        rows = (await conn.execute(select(t).order_by(t.c.id.desc()).limit(200))).all()
    return web.json_response({"runs": [run_json(r) for r in rows]})


async def post_purge(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    body = await json_object(request) if request.can_read_body else {}
    dry_run = body.get("dry_run", False)
    if not isinstance(dry_run, bool):
        raise bad_request("invalid_dry_run", "dry_run must be true or false", "dry_run")
    run = await _purger(request).run_once(dry_run=dry_run, by=actor(user))
    hub = hub_of(request)
    await audit.record(hub.db, hub.clock, actor=user, action="retention.purge", target=f"purge:{run['id']}",
                       after={"dry_run": dry_run, "counts": run["counts"]}, request=request)
    return web.json_response(run)


async def get_holds(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    active_only = request.query.get("all") not in ("1", "true")
    return web.json_response({"holds": await holds.list_holds(hub_of(request).db, active_only)})


def _int(value: Any, name: str) -> int:
    number = int_param(value, name)
    if number is None:
        raise bad_request("invalid_" + name, f"{name} must be an integer", name)
    return number


async def post_hold(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub = hub_of(request)
    body = await json_object(request)
    hold = await holds.place(hub.db, hub.clock, str(body.get("kind") or ""), _int(body.get("target_id"), "target_id"),
                             str(body.get("reason") or ""), actor(user))
    await audit.record(hub.db, hub.clock, actor=user, action="hold.place", target=f"{hold['kind']}:{hold['target_id']}",
                       after=hold, request=request)
    return web.json_response(hold, status=201)


async def delete_hold(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub = hub_of(request)
    hold = await holds.lift(hub.db, hub.clock, path_int(request), actor(user))
    await audit.record(hub.db, hub.clock, actor=user, action="hold.lift", target=f"{hold['kind']}:{hold['target_id']}",
                       after=hold, request=request)
    return web.json_response(hold)


def _flag(value: Any, name: str) -> bool:
    if value is None or value is False or value in ("", "0", "false"):
        return False
    if value is True or value in ("1", "true"):
        return True
    raise bad_request("invalid_" + name, f"{name} must be true or false", name)


async def _erase(request: web.Request, user: Any, customer_id: int, body: dict[str, Any], dry_run: bool) -> web.Response:
    """The confirm step (``dry_run``: what would go, nothing written) or the erasure itself."""
    hub = hub_of(request)
    if dry_run:
        plan = await erasure.preview(hub.db, customer_id)
        # the preview shows the identities in clear: an access to personal data
        await audit.record(hub.db, hub.clock, kind="access", actor=user, action="customer.erase_preview",
                           target=f"customer:{customer_id}", detail={"counts": plan["counts"]}, request=request)
        return web.json_response(plan)
    req = erasure.ErasureRequest(customer_id, str(body.get("requester") or ""), actor(user), str(body.get("reason") or ""))
    holders = await _open_sessions(hub.db, customer_id)
    record = await erasure.erase_customer(hub.db, hub.clock, req)
    await forget_erased(request.app)  # (other processes and the CLI's erasures: ErasureWatch)
    for session_id, agent_id in holders:  # a console open on the chat showed it until a reload, and a reply failed
        gone = {"session_id": session_id, "reason": "erased"}
        if agent_id:
            await hub.push.to_user(agent_id, "session.removed", gone)
        await hub.push.to_room(SUPERVISORS, "session.removed", gone)
    await audit.record(hub.db, hub.clock, actor=user, action="customer.erase", target=f"customer:{req.customer_id}",
                       after={"erasure": record["id"], "counts": record["counts"]}, request=request)
    return web.json_response(record)


async def _open_sessions(db: Any, customer_id: int) -> list[tuple[int, int | None]]:
    """The customer's open sessions and who holds them (before the erasure deletes them)."""
    sessions, convs = ServiceSession.__table__, Conversation.__table__
    async with db.read() as conn:
        rows = await conn.execute(select(sessions.c.id, sessions.c.agent_id).join(
            convs, convs.c.id == sessions.c.conversation_id).where(convs.c.customer_id == customer_id,
                                                                     sessions.c.state != "closed"))
        return [(r.id, r.agent_id) for r in rows.all()]


async def post_erase(request: web.Request) -> web.Response:
    """``POST /api/customers/{id}/erase`` ``{requester, reason}``; ``?dry_run=1``: what would go."""
    user = await require_user(request, "admin")
    dry_run = _flag(request.query.get("dry_run"), "dry_run")
    body = await json_object(request) if request.can_read_body else {}
    return await _erase(request, user, path_int(request), body, dry_run or _flag(body.get("dry_run"), "dry_run"))


async def post_erasure(request: web.Request) -> web.Response:
    """``POST /api/erasures`` ``{customer_id | identity: "kind:value" [, account_id], requester, reason, dry_run}``."""
    user = await require_user(request, "admin")
    body = await json_object(request)
    dry_run = _flag(body.get("dry_run"), "dry_run") or _flag(request.query.get("dry_run"), "dry_run")
    identity = str(body.get("identity") or "").strip()
    if not storable(identity):  # (a 500 at PostgreSQL)
        raise bad_request("invalid_identity", "identity: no NUL character, no half of an emoji", "identity")
    if body.get("customer_id") not in (None, ""):
        if identity:
            raise bad_request("ambiguous_subject", "give customer_id or identity, not both", "identity")
        customer_id = _int(body.get("customer_id"), "customer_id")
    elif identity:
        kind, sep, value = identity.partition(":")
        if not sep or not kind.strip() or not value.strip():
            raise bad_request("invalid_identity", "identity is kind:value (e.g. phone:13812345678)", "identity")
        account = str(body.get("account_id") or "").strip() or None
        customer_id = await erasure.customer_for_identity(hub_of(request).db, kind.strip(), value.strip(), account)
    else:
        raise bad_request("missing_customer", "give the customer id or one of their identities", "customer_id")
    return await _erase(request, user, customer_id, body, dry_run)


async def get_erasures(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    identity = request.query.get("identity", "")
    wanted = None
    if identity:
        kind, sep, value = identity.partition(":")
        if not sep or not kind or not value:
            raise bad_request("invalid_identity", "identity is kind:value (e.g. phone:13812345678)", "identity")
        wanted = (kind, value, request.query.get("account_id", ""))
    return web.json_response({"erasures": await erasure.list_records(hub_of(request).db, wanted)})


async def post_reveal(request: web.Request) -> web.Response:
    """The unmasked value of one message or order field, for a user allowed to read it; audited."""
    from ..service.reading import require_conversation, require_customer
    user = await require_user(request)
    hub = hub_of(request)
    body = await json_object(request)
    if body.get("message_id") is not None:
        message_id = _int(body.get("message_id"), "message_id")
        t = Message.__table__
        async with hub.db.read() as conn:
            row = (await conn.execute(select(t.c.id, t.c.conversation_id, t.c.text).where(t.c.id == message_id))).first()
        if row is None:
            raise not_found("unknown_message", f"no message {message_id}")
        await require_conversation(hub.db, user, row.conversation_id)
        value, target, field = row.text or "", f"message:{message_id}", "text"
    else:
        field = str(body.get("field") or "")
        if field not in ORDER_FIELDS:
            raise bad_request("invalid_field", f"field must be one of {', '.join(ORDER_FIELDS)} or give message_id",
                              "field")
        t = OrderRow.__table__
        platform, order_id = str(body.get("platform") or ""), str(body.get("order_id") or "")
        # the order as the API shows it (a shop's custom order: its shop_id too), or its stored order_key
        order_id = str(body.get("order_key") or "") or order_key(platform, order_id, str(body.get("shop_id") or ""))
        if not (storable(platform) and storable(order_id)):  # no such order (a 500 at PostgreSQL)
            raise not_found("unknown_order", "no such order")
        async with hub.db.read() as conn:
            row = (await conn.execute(select(t).where((t.c.platform == platform) & (t.c.order_id == order_id)))).first()
        if row is None:
            raise not_found("unknown_order", "no such order")
        await require_customer(hub.db, user, row.customer_id)
        value, target = getattr(row, field) or "", f"order:{platform}:{order_id}"
    # the audit says who saw which field of what, from where: never the value itself
    await audit.record(hub.db, hub.clock, kind="access", actor=user, action="pii.reveal", target=target,
                       detail={"field": field}, request=request)
    return web.json_response({"value": value, "field": field, "target": target})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/privacy/retention", get_retention), web.put("/api/privacy/retention", put_retention),
        web.delete("/api/privacy/retention/{account_id}", delete_retention),
        web.get("/api/privacy/purges", list_purges), web.post("/api/privacy/purges", post_purge),
        web.get("/api/holds", get_holds), web.post("/api/holds", post_hold), web.delete("/api/holds/{id}", delete_hold),
        web.post("/api/customers/{id}/erase", post_erase), web.get("/api/erasures", get_erasures),
        web.post("/api/erasures", post_erasure),
        web.post("/api/reveal", post_reveal),
    ]
