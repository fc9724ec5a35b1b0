"""Operator JSON API for routing and people: routing rules (ordered, validated when saved, with a
"which group would this customer go to" tester), users (add, disable, reset password, role, groups,
concurrency cap), skill groups. Admins write; supervisors read."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from sqlalchemy import delete, func, select, update

from .. import audit, config_bus
from ..api import int_param
from ..auth_views import request_token, require_user
from ..errors import HubError, bad_request, not_found
from ..http_util import hub_of as _hub, json_object as _json, path_int as _id
from ..models import RoutingRule, ServiceSession, SkillGroup, SlaRuleRow, TicketRule, TicketType, User
from ..models.channels import ChannelCode
from ..routing.rules import RoutingInput, RuleError, decide, parse_rule, rule_to_json
from ..settings_api import require_group
from ..users import ROLES, add_user, end_logins, hash_password, list_users, users_for_update, validate_user

rules_t = RoutingRule.__table__
users_t = User.__table__
groups_t = SkillGroup.__table__
READ = ("admin", "supervisor")


def _checked_rule(data: dict[str, Any], id: int = 0, position: int = 0) -> Any:
    try:
        return parse_rule(data, id, position)
    except RuleError as exc:
        raise bad_request("invalid_rule", exc.message, exc.field) from None


async def _audit(request: web.Request, user: Any, action: str, target: str, before: Any = None,
                 after: Any = None) -> None:
    hub = _hub(request)
    await audit.record(hub.db, hub.clock, actor=user, action=action, target=target, before=before, after=after,
                       request=request)


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
    user = await require_user(request, "admin")
    hub = _hub(request)
    rule = _checked_rule(await _json(request))
    await require_group(hub.db, (rule_to_json(rule).get("actions") or {}).get("group"), "actions.group")
    name, enabled, data = _storable(rule)
    async with hub.db.write() as conn:
        last = (await conn.execute(select(func.max(rules_t.c.position)))).scalar() or 0
        res = await conn.execute(rules_t.insert().values(position=last + 1, enabled=enabled, name=name, data=data,
                                                         updated_at=hub.clock.now()))
    await config_bus.publish(request, config_bus.ROUTING_RULES)
    rule_id = res.inserted_primary_key[0]
    created = next(r for r in await _rules(hub) if r["id"] == rule_id)
    await _audit(request, user, "routing_rule.create", f"routing_rule:{rule_id}", None, created)
    return web.json_response(created, status=201)


async def rules_update(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub = _hub(request)
    rule_id = _id(request)
    current = next((r for r in await _rules(hub) if r["id"] == rule_id), None)
    if current is None:
        raise not_found("unknown_rule", f"no routing rule {rule_id}")
    merged = {**current, **await _json(request)}
    merged.pop("id", None)
    merged.pop("position", None)
    rule = _checked_rule(merged, rule_id)
    group = (rule_to_json(rule).get("actions") or {}).get("group")
    if group != (current.get("actions") or {}).get("group"):
        await require_group(hub.db, group, "actions.group")
    name, enabled, data = _storable(rule)
    async with hub.db.write() as conn:
        await conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(
            name=name, enabled=enabled, data=data, updated_at=hub.clock.now()))
    await config_bus.publish(request, config_bus.ROUTING_RULES)
    updated = next(r for r in await _rules(hub) if r["id"] == rule_id)
    await _audit(request, user, "routing_rule.update", f"routing_rule:{rule_id}", current, updated)
    return web.json_response(updated)


async def rules_delete(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub = _hub(request)
    rule_id = _id(request)
    before = next((r for r in await _rules(hub) if r["id"] == rule_id), None)
    async with hub.db.write() as conn:
        if (await conn.execute(delete(rules_t).where(rules_t.c.id == rule_id))).rowcount == 0:
            raise not_found("unknown_rule", "no such routing rule")
    await config_bus.publish(request, config_bus.ROUTING_RULES)
    await _audit(request, user, "routing_rule.delete", f"routing_rule:{rule_id}", before, None)
    return web.json_response({"ok": True})


async def rules_order(request: web.Request) -> web.Response:
    """{"order": [rule ids, first first]}: the new order (drag to reorder)."""
    user = await require_user(request, "admin")
    hub = _hub(request)
    order = (await _json(request)).get("order")
    before = [r["id"] for r in await _rules(hub)]
    existing = set(before)
    # ids only (a string or null among them made sorted() raise: a 500), each rule once
    if (not isinstance(order, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in order)
            or len(order) != len(existing) or set(order) != existing):
        raise bad_request("invalid_order", "order must list every rule id once", "order")
    async with hub.db.write() as conn:
        for position, rule_id in enumerate(order, start=1):
            await conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(position=position))
    await config_bus.publish(request, config_bus.ROUTING_RULES)
    await _audit(request, user, "routing_rule.order", "routing_rule", {"order": before}, {"order": order})
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
    vip = int_param(b.get("vip_level"), "vip_level", 0)  # 1e400 (infinity in JSON) was an OverflowError, a 500
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
    actor = await require_user(request, "admin")
    hub = _hub(request)
    b = await _json(request)
    user = await add_user(hub.db, hub.clock, username=str(b.get("username") or ""), password=str(b.get("password") or ""),
                          role=b.get("role") or "agent", display_name=b.get("display_name") or "",
                          groups=b.get("groups") or [], cap=b.get("cap", 5))
    await config_bus.publish(request, config_bus.USERS)
    await _audit(request, actor, "user.create", f"user:{user.id}", None, user.public())
    return web.json_response(user.public(), status=201)


async def users_update(request: web.Request) -> web.Response:
    """{role, groups, cap, display_name, disabled, password}: any subset."""
    actor = await require_user(request, "admin")
    hub = _hub(request)
    user_id = _id(request)
    current = next((u for u in await list_users(hub.db) if u.id == user_id), None)
    if current is None:
        raise not_found("unknown_user", f"no user {user_id}")
    b = await _json(request)
    role, groups, cap = b.get("role", current.role), b.get("groups", list(current.groups)), b.get("cap", current.cap)
    display_name = b.get("display_name", "")
    groups = validate_user(current.username, role, cap, groups, display_name)
    # only what the request names: a stale copy of the rest (groups above all, which the group editor changes
    # too) must not overwrite a change made meanwhile
    values: dict[str, Any] = {k: v for k, v in (("role", role), ("cap", cap)) if k in b}
    if "groups" in b:
        values["groups"] = json.dumps(groups, ensure_ascii=False)
    if "display_name" in b:
        values["display_name"] = display_name.strip()
    if "disabled" in b:
        if not isinstance(b["disabled"], bool):
            raise bad_request("invalid_disabled", "disabled: true or false", "disabled")
        values["disabled"] = b["disabled"]
    if "password" in b:
        if not isinstance(b["password"], str) or len(b["password"]) < 8:
            raise bad_request("weak_password", "at least 8 characters", "password")
        values["password_hash"] = hash_password(b["password"])
    async with hub.db.write() as conn:
        if current.role == "admin" and (role != "admin" or values.get("disabled")):
            # the last enabled admin demoted or disabled: nobody could open the operator console again
            others = [u for u in await users_for_update(conn) if u.role == "admin" and not u.disabled and u.id != user_id]
            if not others:
                field = "role" if role != "admin" else "disabled"
                raise HubError(409, "last_admin", "at least one enabled admin must remain", field)
        for g in groups if "groups" in b else ():
            if not (await conn.execute(select(groups_t.c.name).where(groups_t.c.name == g))).first():
                await conn.execute(groups_t.insert().values(name=g, display_name=g))
        if values:
            await conn.execute(update(users_t).where(users_t.c.id == user_id).values(**values))
        if "password_hash" in values:  # a reset ends the user's logins (but the admin's own, resetting theirs)
            await end_logins(conn, user_id, keep=request_token(request) if actor.id == user_id else None)
    if values.get("disabled"):
        await hub.sessions.requeue_agent(user_id, "agent_disabled")
    await config_bus.publish(request, config_bus.USERS)
    updated = next(u for u in await list_users(hub.db) if u.id == user_id).public()
    after = {**updated, "password": "(reset)"} if "password_hash" in values else updated  # never the password
    await _audit(request, actor, "user.update", f"user:{user_id}", current.public(), after)
    return web.json_response(updated)


async def groups_list(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    async with _hub(request).db.read() as conn:
        rows = (await conn.execute(select(groups_t).order_by(groups_t.c.name))).all()
    return web.json_response({"groups": [{"name": r.name, "display_name": r.display_name} for r in rows]})


GROUP_NAME_MAX = 64


async def _group_view(hub: Any, name: str) -> dict[str, Any] | None:
    async with hub.db.read() as conn:
        row = (await conn.execute(select(groups_t).where(groups_t.c.name == name))).first()
    if row is None:
        return None
    members = [u for u in await list_users(hub.db) if name in u.groups]
    return {"name": row.name, "display_name": row.display_name, "members": [u.id for u in members],
            "member_names": [u.display_name or u.username for u in members]}


def _group_body(b: dict[str, Any], user_ids: set[int]) -> tuple[str | None, list[int] | None]:
    display = b.get("display_name")
    if display is not None and (not isinstance(display, str) or len(display) > GROUP_NAME_MAX):
        raise bad_request("invalid_display_name", f"display_name: text, at most {GROUP_NAME_MAX}", "display_name")
    members = b.get("members")
    if members is not None:
        if not isinstance(members, list) or not all(isinstance(m, int) and m in user_ids for m in members):
            raise bad_request("invalid_members", "members must be a list of existing user ids", "members")
    return display, members


async def _set_members(conn: Any, name: str, members: list[int]) -> None:
    """``name`` is in the groups of exactly ``members`` afterwards. The users' groups are read in this write
    transaction, locked: a list read before it could drop a membership another edit added meanwhile."""
    for u in await users_for_update(conn):
        has, wants = name in u.groups, u.id in members
        if has != wants:
            groups = [g for g in u.groups if g != name] + ([name] if wants else [])
            await conn.execute(update(users_t).where(users_t.c.id == u.id).values(
                groups=json.dumps(groups, ensure_ascii=False)))


async def groups_create(request: web.Request) -> web.Response:
    """{name, display_name, members: [user ids]}."""
    actor = await require_user(request, "admin")
    hub = _hub(request)
    b = await _json(request)
    name = b.get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > GROUP_NAME_MAX:
        raise bad_request("invalid_name", f"name: 1 to {GROUP_NAME_MAX} characters", "name")
    name = name.strip()
    users = await list_users(hub.db)
    display, members = _group_body(b, {u.id for u in users})
    async with hub.db.write() as conn:
        if (await conn.execute(select(groups_t.c.name).where(groups_t.c.name == name))).first():
            raise HubError(409, "group_exists", f"group {name} exists", "name")
        await conn.execute(groups_t.insert().values(name=name, display_name=(display or name).strip()))
        await _set_members(conn, name, members or [])
    await config_bus.publish(request, config_bus.USERS)
    created = await _group_view(hub, name)
    await _audit(request, actor, "group.create", f"group:{name}", None, created)
    return web.json_response(created, status=201)


async def groups_update(request: web.Request) -> web.Response:
    """{display_name, members}: any subset."""
    actor = await require_user(request, "admin")
    hub = _hub(request)
    name = request.match_info["name"]
    before = await _group_view(hub, name)
    if before is None:
        raise not_found("unknown_group", f"no group {name}")
    users = await list_users(hub.db)
    display, members = _group_body(await _json(request), {u.id for u in users})
    async with hub.db.write() as conn:
        if display is not None:
            await conn.execute(update(groups_t).where(groups_t.c.name == name).values(display_name=display.strip() or name))
        if members is not None:
            await _set_members(conn, name, members)
    await config_bus.publish(request, config_bus.USERS)
    after = await _group_view(hub, name)
    await _audit(request, actor, "group.update", f"group:{name}", before, after)
    return web.json_response(after)


async def _group_uses(hub: Any, name: str) -> list[str]:
    """What still sends customers or work to the group ("routing rules: A, B", ...): deleting it would strand
    them in a group no agent is in (a channel code's customers, every unmatched customer, new tickets)."""
    uses = []
    rules = [r["name"] or f"#{r['id']}" for r in await _rules(hub) if (r.get("actions") or {}).get("group") == name]
    if rules:
        uses.append("routing rules: " + ", ".join(rules))
    async with hub.db.read() as conn:
        codes = (await conn.execute(select(ChannelCode.__table__.c.name).where(ChannelCode.__table__.c.route_group == name)
                                    .order_by(ChannelCode.__table__.c.id))).scalars().all()
        types = (await conn.execute(select(TicketType.__table__.c.label).where(TicketType.__table__.c.group == name)
                                    .order_by(TicketType.__table__.c.position))).scalars().all()
        ticket_rules = (await conn.execute(select(TicketRule.__table__.c.name, TicketRule.__table__.c.id,
                                                  TicketRule.__table__.c.data)
                                           .order_by(TicketRule.__table__.c.position))).all()
        sla = (await conn.execute(select(SlaRuleRow.__table__.c.name, SlaRuleRow.__table__.c.id, SlaRuleRow.__table__.c.data)
                                  .order_by(SlaRuleRow.__table__.c.id))).all()
        sessions_t = ServiceSession.__table__  # open ones queued or served in it: they would wait for no one
        waiting = (await conn.execute(select(func.count()).where((sessions_t.c.group == name)
                                                                 & (sessions_t.c.state != "closed")))).scalar()
    if codes:
        uses.append("channel codes: " + ", ".join(codes))
    if types:
        uses.append("ticket types: " + ", ".join(types))
    routed = [r.name or f"#{r.id}" for r in ticket_rules if (json.loads(r.data or "{}") or {}).get("group") == name]
    if routed:
        uses.append("ticket rules: " + ", ".join(routed))
    # an SLA rule scoped to the group would watch no one (and its editor, not finding the group, saves it for all)
    scoped = [r.name or f"#{r.id}" for r in sla if (json.loads(r.data or "{}") or {}).get("group") == name]
    if scoped:
        uses.append("SLA rules: " + ", ".join(scoped))
    if await hub.settings.get("default_group") == name:
        uses.append("setting: default_group")
    if waiting:
        uses.append(f"open sessions: {waiting}")
    return uses


async def groups_delete(request: web.Request) -> web.Response:
    """Removes the group and takes it out of its agents' groups; refused while a routing rule, a channel code,
    a ticket type or rule, an SLA rule or the default_group setting names it."""
    actor = await require_user(request, "admin")
    hub = _hub(request)
    name = request.match_info["name"]
    before = await _group_view(hub, name)
    if before is None:
        raise not_found("unknown_group", f"no group {name}")
    uses = await _group_uses(hub, name)
    if uses:
        raise HubError(409, "group_in_use", "this group is in use: " + "; ".join(uses), "name")
    async with hub.db.write() as conn:
        await _set_members(conn, name, [])
        await conn.execute(delete(groups_t).where(groups_t.c.name == name))
    await config_bus.publish(request, config_bus.USERS)
    await _audit(request, actor, "group.delete", f"group:{name}", before, None)
    return web.json_response({"ok": True})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/routing/rules", rules_list), web.post("/api/routing/rules", rules_create),
        web.post("/api/routing/rules/order", rules_order), web.post("/api/routing/test", rules_test),
        web.put("/api/routing/rules/{id}", rules_update), web.delete("/api/routing/rules/{id}", rules_delete),
        web.get("/api/users", users_list), web.post("/api/users", users_create), web.put("/api/users/{id}", users_update),
        web.get("/api/groups", groups_list), web.post("/api/groups", groups_create),
        web.put("/api/groups/{name}", groups_update), web.delete("/api/groups/{name}", groups_delete),
    ]


__all__ = ["HubError", "routes"]
