"""Operator JSON API for routing and people: routing rules (ordered, validated when saved, with a
"which group would this customer go to" tester), users (add, disable, reset password, role, groups,
concurrency cap), skill groups. Admins write; supervisors read."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy import delete, func, select, update

from ..auth_views import require_user
from ..errors import HubError, bad_request, not_found
from ..http_util import hub_of as _hub, json_object as _json, path_int as _id
from ..models import RoutingRule, SkillGroup, User
from ..routing.rules import RoutingInput, RuleError, decide, parse_rule, rule_to_json
from ..users import ROLES, add_user, hash_password, list_users, validate_user

rules_t = RoutingRule.__table__
users_t = User.__table__
groups_t = SkillGroup.__table__
READ = ("admin", "supervisor")


def _checked_rule(data: dict[str, Any], id: int = 0, position: int = 0) -> Any:
    try:
        return parse_rule(data, id, position)
    except RuleError as exc:
        raise bad_request("invalid_rule", exc.message, exc.field) from None


async def _rules(hub: Any) -> list[dict[str, Any]]:
    async with hub.db.read() as conn:
        rows = (await conn.execute(select(rules_t).order_by(rules_t.c.position, rules_t.c.id))).all()
    out = []
    for r in rows:
        body = {**json.loads(r.data), "enabled": r.enabled, "name": r.name}
        out.append({**rule_to_json(_checked_rule(body, r.id, r.position)), "id": r.id, "position": r.position})
    return out


def _storable(rule: Any) -> tuple[str, bool, str]:
    body = rule_to_json(rule)
    name, enabled = body.pop("name", ""), body.pop("enabled", True)
    body.pop("id", None)
    body.pop("position", None)
    return name, enabled, json.dumps(body, ensure_ascii=False)


async def rules_list(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    return web.json_response({"rules": await _rules(_hub(request))})


async def rules_create(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    hub = _hub(request)
    rule = _checked_rule(await _json(request))
    name, enabled, data = _storable(rule)
    async with hub.db.write() as conn:
        last = (await conn.execute(select(func.max(rules_t.c.position)))).scalar() or 0
        res = await conn.execute(rules_t.insert().values(position=last + 1, enabled=enabled, name=name, data=data,
                                                         updated_at=hub.clock.now()))
    await hub.sessions.load_rules()
    rule_id = res.inserted_primary_key[0]
    return web.json_response(next(r for r in await _rules(hub) if r["id"] == rule_id), status=201)


async def rules_update(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    hub = _hub(request)
    rule_id = _id(request)
    current = next((r for r in await _rules(hub) if r["id"] == rule_id), None)
    if current is None:
        raise not_found("unknown_rule", f"no routing rule {rule_id}")
    merged = {**current, **await _json(request)}
    merged.pop("id", None)
    merged.pop("position", None)
    name, enabled, data = _storable(_checked_rule(merged, rule_id))
    async with hub.db.write() as conn:
        await conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(
            name=name, enabled=enabled, data=data, updated_at=hub.clock.now()))
    await hub.sessions.load_rules()
    return web.json_response(next(r for r in await _rules(hub) if r["id"] == rule_id))


async def rules_delete(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    hub = _hub(request)
    async with hub.db.write() as conn:
        if (await conn.execute(delete(rules_t).where(rules_t.c.id == _id(request)))).rowcount == 0:
            raise not_found("unknown_rule", "no such routing rule")
    await hub.sessions.load_rules()
    return web.json_response({"ok": True})


async def rules_order(request: web.Request) -> web.Response:
    """{"order": [rule ids, first first]}: the new order (drag to reorder)."""
    await require_user(request, "admin")
    hub = _hub(request)
    order = (await _json(request)).get("order")
    existing = {r["id"] for r in await _rules(hub)}
    if not isinstance(order, list) or sorted(order) != sorted(existing):
        raise bad_request("invalid_order", "order must list every rule id once", "order")
    async with hub.db.write() as conn:
        for position, rule_id in enumerate(order, start=1):
            await conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(position=position))
    await hub.sessions.load_rules()
    return web.json_response({"rules": await _rules(hub)})


async def rules_test(request: web.Request) -> web.Response:
    """Which group would this customer go to: {account_id, platform, channel, tags, vip_level,
    first_message, in_business_hours}."""
    await require_user(request, *READ)
    hub = _hub(request)
    b = await _json(request)
    tags = b.get("tags") or []
    if not isinstance(tags, list):
        raise bad_request("invalid_tags", "tags must be a list", "tags")
    try:
        vip = int(b.get("vip_level") or 0)
    except (TypeError, ValueError):
        raise bad_request("invalid_vip_level", "vip_level must be an integer", "vip_level") from None
    inp = RoutingInput(account_id=str(b.get("account_id") or ""), platform=str(b.get("platform") or ""),
                       channel=b.get("channel") or None, tags=frozenset(map(str, tags)), vip_level=vip,
                       first_message=str(b.get("first_message") or ""),
                       in_business_hours=bool(b.get("in_business_hours", True)))
    decision = decide(hub.sessions.rules, inp, await hub.settings.get("default_group"))
    return web.json_response({"group": decision.group, "priority": decision.priority, "agent_id": decision.agent_id,
                              "add_tags": list(decision.add_tags), "matched_rule_id": decision.matched_rule_id,
                              "trace": list(decision.trace)})


async def users_list(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    hub = _hub(request)
    loads = {a.id: a.load for a in hub.sessions.dispatcher.agents()}
    return web.json_response({"users": [{**u.public(), "load": loads.get(u.id, 0)} for u in await list_users(hub.db)],
                              "roles": list(ROLES)})


async def users_create(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    hub = _hub(request)
    b = await _json(request)
    user = await add_user(hub.db, hub.clock, username=str(b.get("username") or ""), password=str(b.get("password") or ""),
                          role=b.get("role") or "agent", display_name=str(b.get("display_name") or ""),
                          groups=b.get("groups") or [], cap=b.get("cap", 5))
    await hub.sessions.load()
    return web.json_response(user.public(), status=201)


async def users_update(request: web.Request) -> web.Response:
    """{role, groups, cap, display_name, disabled, password}: any subset."""
    await require_user(request, "admin")
    hub = _hub(request)
    user_id = _id(request)
    current = next((u for u in await list_users(hub.db) if u.id == user_id), None)
    if current is None:
        raise not_found("unknown_user", f"no user {user_id}")
    b = await _json(request)
    role, groups, cap = b.get("role", current.role), b.get("groups", list(current.groups)), b.get("cap", current.cap)
    validate_user(current.username, role, cap, groups)
    values: dict[str, Any] = {"role": role, "groups": json.dumps(groups, ensure_ascii=False), "cap": cap}
    if "display_name" in b:
        values["display_name"] = str(b["display_name"])[:64]
    if "disabled" in b:
        if not isinstance(b["disabled"], bool):
            raise bad_request("invalid_disabled", "disabled: true or false", "disabled")
        values["disabled"] = b["disabled"]
    if "password" in b:
        if not isinstance(b["password"], str) or len(b["password"]) < 8:
            raise bad_request("weak_password", "at least 8 characters", "password")
        values["password_hash"] = hash_password(b["password"])
    async with hub.db.write() as conn:
        for g in groups:
            if not (await conn.execute(select(groups_t.c.name).where(groups_t.c.name == g))).first():
                await conn.execute(groups_t.insert().values(name=g, display_name=g))
        await conn.execute(update(users_t).where(users_t.c.id == user_id).values(**values))
    if values.get("disabled"):
        await hub.sessions.requeue_agent(user_id, "agent_disabled")
    await hub.sessions.load()
    return web.json_response(next(u for u in await list_users(hub.db) if u.id == user_id).public())


async def groups_list(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    async with _hub(request).db.read() as conn:
        rows = (await conn.execute(select(groups_t).order_by(groups_t.c.name))).all()
    return web.json_response({"groups": [{"name": r.name, "display_name": r.display_name} for r in rows]})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/routing/rules", rules_list), web.post("/api/routing/rules", rules_create),
        web.post("/api/routing/rules/order", rules_order), web.post("/api/routing/test", rules_test),
        web.put("/api/routing/rules/{id}", rules_update), web.delete("/api/routing/rules/{id}", rules_delete),
        web.get("/api/users", users_list), web.post("/api/users", users_create), web.put("/api/users/{id}", users_update),
        web.get("/api/groups", groups_list),
    ]


__all__ = ["HubError", "routes"]
