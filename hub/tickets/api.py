"""JSON API of work orders (工单).

Tickets (any logged-in user; agents see and work on the tickets of their groups, their own and those
assigned to them; supervisors and admins all):
  GET  /api/tickets?status=open,in_progress&group=&assignee=me|<id>&type=&overdue=1&conversation_id=&limit=&before=
  POST /api/tickets {conversation_id | session_id, type, title, description?, priority?, group?, assignee_id?, due_at?}
  GET  /api/tickets/{id}                       the ticket and its history
  PATCH /api/tickets/{id} {title?, description?, priority?, group?, assignee_id?, due_at?}
  POST /api/tickets/{id}/transition {status, note?}
  POST /api/tickets/{id}/comments {text}
Types (read: everyone; write: admins): GET/POST /api/ticket-types, PUT /api/ticket-types/{name}
Routing rules (read: supervisors, admins; write: admins): GET/POST /api/ticket-rules, PUT/DELETE /api/ticket-rules/{id}
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Any

from aiohttp import web

from .. import audit, config_bus
from ..api import int_param
from ..auth_views import require_user
from ..errors import bad_request, not_found
from ..http_util import json_object, path_int
from ..settings_api import require_group
from .rules import STATUSES, parse_type
from .service import TicketService

TICKETS = web.AppKey("tickets", TicketService)
READ = ("supervisor", "admin")
MAX_LIMIT = 200


def _svc(request: web.Request) -> TicketService:
    return request.app[TICKETS]


def _query_int(request: web.Request, key: str) -> int | None:
    return int_param(request.query.get(key), key)


async def list_tickets(request: web.Request) -> web.Response:
    user = await require_user(request)
    q = request.query
    status = [s for s in (q.get("status") or "").split(",") if s]
    if any(s not in STATUSES for s in status):
        raise bad_request("invalid_status", f"status must be among {', '.join(STATUSES)}", "status")
    assignee = q.get("assignee")
    assignee_id = user.id if assignee == "me" else _query_int(request, "assignee")
    limit = _query_int(request, "limit")
    limit = 50 if limit is None else limit
    if not 1 <= limit <= MAX_LIMIT:
        raise bad_request("invalid_limit", f"limit must be within 1..{MAX_LIMIT}", "limit")
    if q.get("overdue", "0") not in ("0", "1"):
        raise bad_request("invalid_overdue", "overdue must be 0 or 1", "overdue")
    tickets = await _svc(request).list(
        user, status=status or None, group=q.get("group") or None, assignee_id=assignee_id,
        ticket_type=q.get("type") or None, overdue=q.get("overdue") == "1",
        conversation_id=_query_int(request, "conversation_id"), limit=limit, before_id=_query_int(request, "before"))
    return web.json_response({"tickets": tickets})


async def create_ticket(request: web.Request) -> web.Response:
    user = await require_user(request)
    return web.json_response(await _svc(request).create(user, await json_object(request)), status=201)


async def get_ticket(request: web.Request) -> web.Response:
    user = await require_user(request)
    return web.json_response(await _svc(request).get(user, path_int(request)))


async def patch_ticket(request: web.Request) -> web.Response:
    user = await require_user(request)
    return web.json_response(await _svc(request).update(user, path_int(request), await json_object(request)))


async def post_transition(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await json_object(request)
    return web.json_response(await _svc(request).transition(user, path_int(request), body.get("status"),
                                                            body.get("note")))


async def post_comment(request: web.Request) -> web.Response:
    user = await require_user(request)
    body = await json_object(request)
    return web.json_response(await _svc(request).comment(user, path_int(request), body.get("text")), status=201)


async def _changed(request: web.Request, user: Any, action: str, target: str, before: Any, after: Any,
                   topic: str | None = None) -> None:
    """After an admin change: other processes reload ``topic`` (the service has already reloaded its own
    cache); the audit log keeps before/after."""
    if topic is not None:
        await config_bus.publish(request, topic)
    svc = _svc(request)
    await audit.record(svc.db, svc.clock, actor=user, action=action, target=target, before=before, after=after,
                       request=request)


async def _type_json(request: web.Request, name: str) -> dict[str, Any] | None:
    return next((asdict(t) for t in await _svc(request).types() if t.name == name), None)


async def list_types(request: web.Request) -> web.Response:
    await require_user(request)
    return web.json_response({"types": [asdict(t) for t in await _svc(request).types()]})


async def create_type(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    spec = parse_type(await json_object(request))
    await require_group(_svc(request).db, spec.group, "group")
    await _svc(request).save_type(spec, create=True)
    await _changed(request, user, "ticket_type.create", f"ticket_type:{spec.name}", None, asdict(spec))
    return web.json_response(asdict(spec), status=201)


def _switched(body: dict[str, Any], before: dict[str, Any] | None, missing: Any) -> dict[str, Any]:
    """A body of ``enabled`` alone (the list's on/off switch) switches the stored version: the whole
    object the page loaded, sent back, undid what another operator saved since."""
    if set(body) != {"enabled"}:
        return body
    if before is None:
        raise missing
    return {**before, "enabled": body["enabled"]}


async def update_type(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    name = request.match_info["name"]
    before = await _type_json(request, name)
    spec = parse_type(_switched(await json_object(request), before, not_found("unknown_type", f"no ticket type {name}")),
                      name=name)
    if spec.group != (before or {}).get("group"):
        await require_group(_svc(request).db, spec.group, "group")
    await _svc(request).save_type(spec, create=False)
    await _changed(request, user, "ticket_type.update", f"ticket_type:{spec.name}", before, asdict(spec))
    return web.json_response(asdict(spec))


async def list_rules(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    return web.json_response({"rules": [r.as_json() for r in _svc(request).rules]})


def _rule_json(request: web.Request, rule_id: int) -> dict[str, Any] | None:
    return next((r.as_json() for r in _svc(request).rules if r.id == rule_id), None)


async def create_rule(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    created = await _svc(request).save_rule(await json_object(request))
    await _changed(request, user, "ticket_rule.create", f"ticket_rule:{created['id']}", None, created,
                   config_bus.TICKET_RULES)
    return web.json_response(created, status=201)


async def update_rule(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    rule_id = path_int(request)
    before = _rule_json(request, rule_id)
    body = _switched(await json_object(request), before, not_found("unknown_rule", f"no ticket rule {rule_id}"))
    updated = await _svc(request).save_rule(body, rule_id)
    await _changed(request, user, "ticket_rule.update", f"ticket_rule:{rule_id}", before, updated,
                   config_bus.TICKET_RULES)
    return web.json_response(updated)


async def delete_rule(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    rule_id = path_int(request)
    before = _rule_json(request, rule_id)
    await _svc(request).delete_rule(rule_id)
    await _changed(request, user, "ticket_rule.delete", f"ticket_rule:{rule_id}", before, None,
                   config_bus.TICKET_RULES)
    return web.json_response({"ok": True})


def routes() -> list[Any]:
    return [
        web.get("/api/tickets", list_tickets), web.post("/api/tickets", create_ticket),
        web.get("/api/tickets/{id}", get_ticket), web.patch("/api/tickets/{id}", patch_ticket),
        web.post("/api/tickets/{id}/transition", post_transition), web.post("/api/tickets/{id}/comments", post_comment),
        web.get("/api/ticket-types", list_types), web.post("/api/ticket-types", create_type),
        web.put("/api/ticket-types/{name}", update_type),
        web.get("/api/ticket-rules", list_rules), web.post("/api/ticket-rules", create_rule),
        web.put("/api/ticket-rules/{id}", update_rule), web.delete("/api/ticket-rules/{id}", delete_rule),
    ]
