"""Supervision JSON API: SLA rules and quality rules (supervisors and admins read, admins write),
alerts with their timeline (supervisors; an agent sees only their own with ``mine=1``), quality
results per conversation and per agent, a batch quality run."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Callable

from aiohttp import web
from sqlalchemy import delete, func, select, update

from .. import audit, config_bus
from ..api import int_param
from ..auth_views import require_user
from ..errors import HubError, bad_request, not_found
from ..http_util import hub_of, json_object, path_int
from ..models import QualityHit, QualityRuleRow, SlaRuleRow, User
from ..privacy.views import mask_json
from . import quality_rules, sla_rules
from .alerts import AlertEngine
from .quality import QualityChecker

sla_t = SlaRuleRow.__table__
qrules_t = QualityRuleRow.__table__
hits_t = QualityHit.__table__
users_t = User.__table__
READ = ("admin", "supervisor")


@dataclass
class Supervision:
    alerts: AlertEngine
    quality: QualityChecker


SUPERVISION = web.AppKey("supervision", Supervision)


def _sup(request: web.Request) -> Supervision:
    sup = request.app.get(SUPERVISION)
    if sup is None:
        raise HubError(503, "starting", "the hub is starting")
    return sup


def _query_num(request: web.Request, key: str, cast: Callable[[str], Any] = int) -> Any:
    raw = request.query.get(key)
    if cast is int:  # an id or a count: one past BIGINT failed the driver (a 500)
        return int_param(raw, key)
    if raw in (None, ""):
        return None
    try:
        value = cast(raw)
    except ValueError:
        raise bad_request("invalid_" + key, f"{key} must be a number", key) from None
    if isinstance(value, float) and not math.isfinite(value):  # nan, inf: no time to compare with
        raise bad_request("invalid_" + key, f"{key} must be a finite number", key)
    return value


def _body_num(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request("invalid_" + key, f"{key} must be epoch seconds", key)
    try:
        number = float(value)
    except OverflowError:  # an integer past any float (was a 500)
        raise bad_request("invalid_" + key, f"{key} must be epoch seconds", key) from None
    if not math.isfinite(number):  # NaN, 1e999
        raise bad_request("invalid_" + key, f"{key} must be epoch seconds", key)
    return number


async def _changed(request: web.Request, user: Any, topic: str, reload: Callable[[], Any], action: str,
                   target: str, before: Any, after: Any) -> None:
    """After an admin change: every process reloads ``topic`` (this one at once, through its config-bus
    subscription; a bare app without the bus calls ``reload``); the audit log keeps before/after."""
    if config_bus.CONFIG_BUS in request.app:
        await config_bus.publish(request, topic)
    else:
        await reload()
    hub = hub_of(request)
    await audit.record(hub.db, hub.clock, actor=user, action=action, target=target, before=before, after=after,
                       request=request)


# -- SLA rules --------------------------------------------------------------------------------------
def _sla(data: Any, rule_id: int = 0) -> sla_rules.SlaRule:
    try:
        return sla_rules.parse_rule(data, rule_id)
    except sla_rules.RuleError as exc:
        raise bad_request("invalid_rule", exc.message, exc.field) from None


async def _known_targets(request: web.Request, rule: sla_rules.SlaRule, current: Any = None) -> None:
    """A rule's group and the user its escalation tells exist (a misspelt group: a rule that never
    applies; an unknown user: an escalation that tells nobody). Checked where they change."""
    from ..settings_api import group_exists
    hub = hub_of(request)
    if rule.group and rule.group != getattr(current, "group", None) and not await group_exists(hub.db, rule.group):
        raise bad_request("invalid_rule", f"no skill group named {rule.group}", "group")
    notify = rule.notify_user_id
    if notify and notify != getattr(current, "notify_user_id", None):
        async with hub.db.read() as conn:
            if (await conn.execute(select(users_t.c.id).where(users_t.c.id == notify))).first() is None:
                raise bad_request("invalid_rule", f"no user {notify}", "notify_user_id")


async def sla_list(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    return web.json_response({"rules": [sla_rules.rule_to_json(r) for r in _sup(request).alerts.rules]})


async def sla_create(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub, sup = hub_of(request), _sup(request)
    rule = _sla(await json_object(request))
    await _known_targets(request, rule)
    async with hub.db.write() as conn:
        res = await conn.execute(sla_t.insert().values(name=rule.name, enabled=rule.enabled, updated_at=hub.clock.now(),
                                                       data=json.dumps(sla_rules.storable(rule), ensure_ascii=False)))
    created = sla_rules.rule_to_json(_sla(sla_rules.storable(rule), res.inserted_primary_key[0]))
    await _changed(request, user, config_bus.SLA_RULES, sup.alerts.rules_changed, "sla_rule.create",
                   f"sla_rule:{created['id']}", None, created)
    return web.json_response(created, status=201)


async def sla_update(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub, sup, rule_id = hub_of(request), _sup(request), path_int(request)
    current = next((r for r in sup.alerts.rules if r.id == rule_id), None)
    if current is None:
        raise not_found("unknown_rule", f"no SLA rule {rule_id}")
    merged = {**sla_rules.storable(current), **await json_object(request)}
    rule = _sla(merged, rule_id)
    await _known_targets(request, rule, current)
    async with hub.db.write() as conn:
        await conn.execute(update(sla_t).where(sla_t.c.id == rule_id).values(
            name=rule.name, enabled=rule.enabled, updated_at=hub.clock.now(),
            data=json.dumps(sla_rules.storable(rule), ensure_ascii=False)))
    await _changed(request, user, config_bus.SLA_RULES, sup.alerts.rules_changed, "sla_rule.update",
                   f"sla_rule:{rule_id}", sla_rules.rule_to_json(current), sla_rules.rule_to_json(rule))
    return web.json_response(sla_rules.rule_to_json(rule))


async def sla_delete(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub, sup, rule_id = hub_of(request), _sup(request), path_int(request)
    before = next((sla_rules.rule_to_json(r) for r in sup.alerts.rules if r.id == rule_id), None)
    async with hub.db.write() as conn:
        res = await conn.execute(delete(sla_t).where(sla_t.c.id == rule_id))
    if res.rowcount != 1:
        raise not_found("unknown_rule", f"no SLA rule {rule_id}")
    await _changed(request, user, config_bus.SLA_RULES, sup.alerts.rules_changed, "sla_rule.delete",
                   f"sla_rule:{rule_id}", before, None)
    return web.json_response({"ok": True})


# -- alerts -----------------------------------------------------------------------------------------
async def alerts_list(request: web.Request) -> web.Response:
    """?state=open|cleared|all &agent= &session= &kind= &limit= ; ``mine=1`` (any role): the caller's own and
    those about the sessions they hold now."""
    mine = request.query.get("mine") in ("1", "true")
    user = await require_user(request) if mine else await require_user(request, *READ)
    state = request.query.get("state", "open")
    if state not in ("open", "cleared", "all"):
        raise bad_request("invalid_state", "state must be open, cleared or all", "state")
    kind = request.query.get("kind") or None
    if kind is not None and kind not in (*sla_rules.KINDS, "quality"):
        raise bad_request("invalid_kind", "unknown alert kind", "kind")
    limit = _query_num(request, "limit")
    limit = 200 if limit is None else limit
    if not 1 <= limit <= 1000:
        raise bad_request("invalid_limit", "limit must be 1..1000", "limit")
    agent = None if mine else _query_num(request, "agent")
    alerts = await _sup(request).alerts.store.search(state=state, agent_id=agent, session_id=_query_num(
        request, "session"), kind=kind, limit=limit, holder_id=user.id if mine else None)
    return web.json_response({"alerts": alerts})


async def alert_clear(request: web.Request) -> web.Response:
    user = await require_user(request, *READ)
    sup, alert_id = _sup(request), path_int(request)
    alert = await sup.alerts.clear_alert(alert_id, "acknowledged", by=user.id)
    if alert is None:
        existing = await sup.alerts.store.get(alert_id)
        if existing is None:
            raise not_found("unknown_alert", f"no alert {alert_id}")
        raise HubError(409, "not_open", "this alert is already cleared")
    return web.json_response(alert)


# -- quality rules ----------------------------------------------------------------------------------
def _qrule(data: Any, rule_id: int = 0) -> quality_rules.QualityRule:
    try:
        return quality_rules.parse_rule(data, rule_id)
    except sla_rules.RuleError as exc:
        raise bad_request("invalid_rule", exc.message, exc.field) from None


def _qvalues(rule: quality_rules.QualityRule, now: float) -> dict[str, Any]:
    return dict(name=rule.name, kind=rule.kind, enabled=rule.enabled, updated_at=now,
                params=json.dumps(rule.params, ensure_ascii=False))


async def quality_rules_list(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    return web.json_response({"rules": [quality_rules.rule_to_json(r) for r in _sup(request).quality.rules]})


async def quality_rule_create(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub, sup = hub_of(request), _sup(request)
    rule = _qrule(await json_object(request))
    async with hub.db.write() as conn:
        res = await conn.execute(qrules_t.insert().values(**_qvalues(rule, hub.clock.now())))
    body = {**quality_rules.rule_to_json(rule), "id": res.inserted_primary_key[0]}
    await _changed(request, user, config_bus.QUALITY_RULES, sup.quality.load_rules, "quality_rule.create",
                   f"quality_rule:{body['id']}", None, body)
    return web.json_response(body, status=201)


async def quality_rule_update(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub, sup, rule_id = hub_of(request), _sup(request), path_int(request)
    current = next((r for r in sup.quality.rules if r.id == rule_id), None)
    if current is None:
        raise not_found("unknown_rule", f"no quality rule {rule_id}")
    body = await json_object(request)
    merged = {**quality_rules.rule_to_json(current), **body}
    rule = _qrule(merged, rule_id)
    async with hub.db.write() as conn:
        await conn.execute(update(qrules_t).where(qrules_t.c.id == rule_id).values(**_qvalues(rule, hub.clock.now())))
    await _changed(request, user, config_bus.QUALITY_RULES, sup.quality.load_rules, "quality_rule.update",
                   f"quality_rule:{rule_id}", quality_rules.rule_to_json(current), quality_rules.rule_to_json(rule))
    return web.json_response(quality_rules.rule_to_json(rule))


async def quality_rule_delete(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub, sup, rule_id = hub_of(request), _sup(request), path_int(request)
    before = next((quality_rules.rule_to_json(r) for r in sup.quality.rules if r.id == rule_id), None)
    async with hub.db.write() as conn:
        res = await conn.execute(delete(qrules_t).where(qrules_t.c.id == rule_id))
    if res.rowcount != 1:
        raise not_found("unknown_rule", f"no quality rule {rule_id}")
    await _changed(request, user, config_bus.QUALITY_RULES, sup.quality.load_rules, "quality_rule.delete",
                   f"quality_rule:{rule_id}", before, None)
    return web.json_response({"ok": True})


# -- quality results --------------------------------------------------------------------------------
def _hit_json(r: Any) -> dict[str, Any]:
    return {"id": r.id, "rule_id": r.rule_id, "rule_name": r.rule_name, "kind": r.kind, "session_id": r.session_id,
            "conversation_id": r.conversation_id, "agent_id": r.agent_id, "message_ids": json.loads(r.message_ids),
            "detail": mask_json(json.loads(r.detail)), "at": r.at}


def _hit_filters(request: web.Request, q: Any) -> Any:
    for key, col in (("agent", hits_t.c.agent_id), ("conversation", hits_t.c.conversation_id),
                     ("session", hits_t.c.session_id), ("rule", hits_t.c.rule_id)):
        value = _query_num(request, key)
        if value is not None:
            q = q.where(col == value)
    since, until = _query_num(request, "since", float), _query_num(request, "until", float)
    if since is not None:
        q = q.where(hits_t.c.at >= since)
    if until is not None:
        q = q.where(hits_t.c.at < until)
    return q


async def quality_results(request: web.Request) -> web.Response:
    """?agent= &conversation= &session= &rule= &since= &until= &limit= : hits, newest first."""
    await require_user(request, *READ)
    hub = hub_of(request)
    limit = _query_num(request, "limit")
    limit = 200 if limit is None else limit
    if not 1 <= limit <= 1000:
        raise bad_request("invalid_limit", "limit must be 1..1000", "limit")
    q = _hit_filters(request, select(hits_t)).order_by(hits_t.c.at.desc(), hits_t.c.id.desc()).limit(limit)
    async with hub.db.read_heavy() as conn:
        rows = (await conn.execute(q)).all()
    return web.json_response({"results": [_hit_json(r) for r in rows]})


async def quality_summary(request: web.Request) -> web.Response:
    """Per agent: hits per rule (same filters as the results)."""
    await require_user(request, *READ)
    hub = hub_of(request)
    q = _hit_filters(request, select(hits_t.c.agent_id, hits_t.c.rule_id, hits_t.c.rule_name, hits_t.c.kind,
                                     func.count().label("n"), func.count(func.distinct(hits_t.c.session_id))
                                     .label("sessions"))).group_by(hits_t.c.agent_id, hits_t.c.rule_id,
                                                                   hits_t.c.rule_name, hits_t.c.kind)
    async with hub.db.read_heavy() as conn:
        rows = (await conn.execute(q)).all()
        names = dict((await conn.execute(select(users_t.c.id, users_t.c.display_name))).all())
    agents: dict[Any, dict[str, Any]] = {}
    for r in rows:
        a = agents.setdefault(r.agent_id, {"agent_id": r.agent_id, "name": names.get(r.agent_id, ""), "total": 0,
                                           "rules": []})
        a["total"] += r.n
        a["rules"].append({"rule_id": r.rule_id, "rule_name": r.rule_name, "kind": r.kind, "hits": r.n,
                           "sessions": r.sessions})
    return web.json_response({"agents": sorted(agents.values(), key=lambda a: -a["total"])})


async def quality_run(request: web.Request) -> web.Response:
    """Batch: ``{"since", "until"}`` (epoch seconds of the handover) or ``{"conversation_id"}``."""
    await require_user(request, *READ)
    body = await json_object(request)
    conversation = body.get("conversation_id")
    if conversation is not None and (isinstance(conversation, bool) or not isinstance(conversation, int)):
        raise bad_request("invalid_conversation_id", "conversation_id must be an integer", "conversation_id")
    conversation = int_param(conversation, "conversation_id")  # past BIGINT failed the driver (a 500)
    since, until = _body_num(body, "since"), _body_num(body, "until")
    if conversation is None and since is None:
        raise bad_request("invalid_range", "give since (and until) or conversation_id", "since")
    if since is not None and until is not None and until <= since:
        raise bad_request("invalid_range", "until must be after since", "until")
    result = await _sup(request).quality.run_batch(since=since, until=until, conversation_id=conversation)
    return web.json_response({"sessions": result.sessions, "new_hits": result.hits, "truncated": result.truncated})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/sla/rules", sla_list), web.post("/api/sla/rules", sla_create),
        web.put("/api/sla/rules/{id}", sla_update), web.delete("/api/sla/rules/{id}", sla_delete),
        web.get("/api/alerts", alerts_list), web.post("/api/alerts/{id}/clear", alert_clear),
        web.get("/api/quality/rules", quality_rules_list), web.post("/api/quality/rules", quality_rule_create),
        web.put("/api/quality/rules/{id}", quality_rule_update),
        web.delete("/api/quality/rules/{id}", quality_rule_delete),
        web.get("/api/quality/results", quality_results), web.get("/api/quality/summary", quality_summary),
        web.post("/api/quality/run", quality_run),
    ]
