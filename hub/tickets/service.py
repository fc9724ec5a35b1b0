"""Work orders: create from a conversation, route to a group, assign, move through the status flow with a
history row per change, and alert when one is overdue (one ``Timers`` timer per due time, rebuilt at start).

Events: ``ticket.created`` / ``ticket.updated`` / ``ticket.overdue`` to the ticket's group room and the
supervisors (and the assignee's own stream).
"""
from __future__ import annotations

import json
import logging
import math
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from ..clock import Clock
from ..db import Database, retry_busy
from ..errors import HubError, bad_request, not_found
from ..models import Conversation, ServiceSession, Ticket, TicketEvent, TicketRule, TicketType, User
from ..push import SUPERVISORS, Push, group_room
from ..service.reading import can_read_conversation, forbidden_conversation
from ..service.timers import Timers
from ..users import UserInfo
from .rules import (ACTIVE, DEFAULT_TYPES, Routed, Rule, TypeSpec, check_group, check_priority, check_text,
                    check_transition, parse_rule, route)

log = logging.getLogger(__name__)
tickets_t = Ticket.__table__
users_t = User.__table__
events_t = TicketEvent.__table__
types_t = TicketType.__table__
rules_t = TicketRule.__table__
sessions_t = ServiceSession.__table__
conversations_t = Conversation.__table__
EDITABLE = ("title", "description", "priority", "group", "assignee_id", "due_at")


def ticket_json(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in (
        "id", "type", "title", "description", "status", "priority", "group", "assignee_id", "conversation_id",
        "session_id", "customer_id", "rule_id", "created_by", "created_at", "updated_at", "due_at", "overdue_at",
        "resolved_at", "closed_at")}


def event_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "actor": row.actor, "data": json.loads(row.data or "{}"), "at": row.at}


class TicketService:
    def __init__(self, db: Database, clock: Clock, push: Push, timers: Timers, settings: Any, agents: Any = None):
        self.db = db
        self.clock = clock
        self.push = push
        self.timers = timers
        self.settings = settings
        self.agents = agents  # id -> UserInfo (the session service's), to validate assignees
        self.rules: list[Rule] = []

    # -- start-up -------------------------------------------------------------------------------
    async def load(self) -> None:
        """Seed the default types once, load the rules, arm a timer for every active ticket's due time."""
        try:
            async with self.db.write() as conn:
                if (await conn.execute(select(types_t.c.name).limit(1))).first() is None:
                    for pos, t in enumerate(DEFAULT_TYPES):
                        await conn.execute(types_t.insert().values(name=t.name, label=t.label, due_hours=t.due_hours,
                                                                   priority=t.priority, group=t.group, enabled=True,
                                                                   position=pos))
        except IntegrityError:  # another hub process starting at the same moment seeded them first
            log.info("default ticket types were seeded by another process")
        await self.load_rules()
        async with self.db.read() as conn:
            due = (await conn.execute(select(tickets_t.c.id, tickets_t.c.due_at).where(tickets_t.c.status.in_(ACTIVE))
                                      .where(tickets_t.c.due_at.is_not(None)).where(tickets_t.c.overdue_at.is_(None)))).all()
        for row in due:
            self._arm(row.id, row.due_at)

    async def load_rules(self) -> None:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(rules_t).order_by(rules_t.c.position, rules_t.c.id))).all()
        parsed = []
        for r in rows:
            try:
                parsed.append(parse_rule({**json.loads(r.data), "name": r.name, "enabled": r.enabled}, r.id, r.position))
            except HubError as exc:
                log.warning("ticket rule %s skipped: %s", r.id, exc.message)
        self.rules = parsed

    # -- types ----------------------------------------------------------------------------------
    async def types(self, enabled_only: bool = False) -> list[TypeSpec]:
        async with self.db.read() as conn:
            q = select(types_t).order_by(types_t.c.position, types_t.c.name)
            if enabled_only:
                q = q.where(types_t.c.enabled.is_(True))
            rows = (await conn.execute(q)).all()
        return [TypeSpec(r.name, r.label, r.due_hours, r.priority, r.group, bool(r.enabled)) for r in rows]

    async def save_type(self, spec: TypeSpec, create: bool) -> None:
        values = {"label": spec.label, "due_hours": spec.due_hours, "priority": spec.priority, "group": spec.group,
                  "enabled": spec.enabled}
        async with self.db.write() as conn:
            exists = (await conn.execute(select(types_t.c.name).where(types_t.c.name == spec.name))).first()
            if create and exists:
                raise HubError(409, "type_exists", f"ticket type {spec.name} exists", "name")
            if not create and not exists:
                raise not_found("unknown_type", f"no ticket type {spec.name}")
            if create:
                count = len((await conn.execute(select(types_t.c.name))).all())
                await conn.execute(types_t.insert().values(name=spec.name, position=count, **values))
            else:
                await conn.execute(update(types_t).where(types_t.c.name == spec.name).values(**values))

    async def _type(self, name: Any) -> TypeSpec:
        for t in await self.types():
            if t.name == name and t.enabled:
                return t
        raise bad_request("invalid_type", "type must be an enabled ticket type", "type")

    # -- rules ----------------------------------------------------------------------------------
    async def save_rule(self, data: Any, rule_id: int | None = None) -> dict[str, Any]:
        rule = parse_rule(data)
        before = next((r for r in self.rules if r.id == rule_id), None) if rule_id is not None else None
        if before is None or before.group != rule.group:
            from ..settings_api import require_group
            await require_group(self.db, rule.group, "group")
        payload = json.dumps({"types": sorted(rule.types), "min_priority": rule.min_priority,
                              "keywords": list(rule.keywords), "group": rule.group}, ensure_ascii=False)
        now = self.clock.now()
        async with self.db.write() as conn:
            if rule_id is None:
                position = data.get("position")
                if position is None:
                    position = len((await conn.execute(select(rules_t.c.id))).all())
                elif isinstance(position, bool) or not isinstance(position, int) or not -2 ** 31 <= position < 2 ** 31:
                    raise bad_request("invalid_position", "position must be a 32-bit integer", "position")
                rule_id = (await conn.execute(rules_t.insert().values(
                    name=rule.name, position=position, enabled=rule.enabled, data=payload, updated_at=now))
                ).inserted_primary_key[0]
            else:
                res = await conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(
                    name=rule.name, enabled=rule.enabled, data=payload, updated_at=now))
                if res.rowcount != 1:
                    raise not_found("unknown_rule", f"no ticket rule {rule_id}")
        await self.load_rules()
        return next(r.as_json() for r in self.rules if r.id == rule_id)

    async def delete_rule(self, rule_id: int) -> None:
        async with self.db.write() as conn:
            if (await conn.execute(rules_t.delete().where(rules_t.c.id == rule_id))).rowcount != 1:
                raise not_found("unknown_rule", f"no ticket rule {rule_id}")
        await self.load_rules()

    # -- tickets --------------------------------------------------------------------------------
    async def create(self, user: UserInfo, body: dict[str, Any]) -> dict[str, Any]:
        """From a conversation (``conversation_id``) or a session (``session_id``) the user may read."""
        conv_id, session = await self._source(user, body)
        ticket_type = await self._type(body.get("type"))
        title = check_text(body.get("title"), "title", 200, required=True)
        description = check_text(body.get("description"), "description", 4000)
        priority = check_priority(body.get("priority") or ticket_type.priority)
        now = self.clock.now()
        due_at = self._due(body, now, ticket_type)
        assignee = await self._assignee(body.get("assignee_id"))
        if body.get("group"):
            routed = Routed(check_group(body["group"]), None, "chosen")
            from ..settings_api import require_group
            await require_group(self.db, routed.group, "group")
        else:
            routed = route(self.rules, ticket_type, priority, f"{title}\n{description}",
                           session.group if session is not None else None,
                           str(await self.settings.get("default_group") or "default"))
        async with self.db.read() as conn:
            customer_id = (await conn.execute(select(conversations_t.c.customer_id).where(
                conversations_t.c.id == conv_id))).scalar()

        async def write() -> int:
            async with self.db.write() as conn:
                tid = (await conn.execute(tickets_t.insert().values(
                    type=ticket_type.name, title=title, description=description, status="open", priority=priority,
                    group=routed.group, assignee_id=assignee, conversation_id=conv_id,
                    session_id=session.id if session is not None else None, customer_id=customer_id,
                    rule_id=routed.rule_id, created_by=user.id, created_at=now, updated_at=now, due_at=due_at))
                ).inserted_primary_key[0]
                await self._event(conn, tid, "created", user, {"group": routed.group, "routed_by": routed.why,
                                                                "rule_id": routed.rule_id, "priority": priority,
                                                                "due_at": due_at, "assignee_id": assignee})
                return tid

        tid = await retry_busy(write)
        if due_at is not None:
            self._arm(tid, due_at)
        ticket = await self._get(tid)
        await self._announce("ticket.created", ticket)
        return ticket

    async def update(self, user: UserInfo, ticket_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Change title, description, priority, group, assignee, due time; a history row per field."""
        row = await self._editable(user, ticket_id)
        if row.status == "closed":
            raise HubError(409, "ticket_closed", "a closed ticket cannot be changed")
        unknown = set(body) - set(EDITABLE)
        if unknown:
            raise bad_request("invalid_field", f"cannot change {', '.join(sorted(unknown))}", sorted(unknown)[0])
        changes: dict[str, Any] = {}
        if "title" in body:
            changes["title"] = check_text(body["title"], "title", 200, required=True)
        if "description" in body:
            changes["description"] = check_text(body["description"], "description", 4000)
        if "priority" in body:
            changes["priority"] = check_priority(body["priority"])
        if "group" in body:
            changes["group"] = check_group(body["group"])
            if changes["group"] != row.group:  # (the form sends the ticket's group back unchanged)
                from ..settings_api import require_group
                await require_group(self.db, changes["group"], "group")
        if "assignee_id" in body:
            changes["assignee_id"] = await self._assignee(body["assignee_id"])
        if "due_at" in body:
            due_at = self._due({"due_at": body["due_at"]}, self.clock.now(), None)
            if due_at != row.due_at:  # a form sending the same due time back leaves an overdue ticket overdue
                changes["due_at"], changes["overdue_at"] = due_at, None
        changes = {k: v for k, v in changes.items() if getattr(row, k) != v}
        if not changes:
            return ticket_json(row)
        await self._write_change(ticket_id, changes, user, [
            (_event_kind(k), {"field": k, "from": getattr(row, k), "to": v}) for k, v in changes.items()
            if k != "overdue_at" and k not in ("title", "description")] + (
            [("edited", {"fields": sorted(k for k in changes if k in ("title", "description"))})]
            if {"title", "description"} & set(changes) else []))
        if "due_at" in changes:
            self._rearm(ticket_id, row.status, changes["due_at"])
        ticket = await self._get(ticket_id)
        await self._announce("ticket.updated", ticket, previous_group=row.group, previous_assignee=row.assignee_id)
        return ticket

    async def transition(self, user: UserInfo, ticket_id: int, target: Any, note: Any = None) -> dict[str, Any]:
        row = await self._editable(user, ticket_id)
        status = check_transition(row.status, target)
        note_text = check_text(note, "note", 2000)
        now = self.clock.now()
        values: dict[str, Any] = {"status": status}
        if status == "resolved":
            values["resolved_at"] = now
        elif status == "closed":
            values["closed_at"] = now
        elif row.status == "resolved":  # reopened
            values["resolved_at"] = None
        if not await self._write_change(ticket_id, values, user, [("status", {"from": row.status, "to": status,
                                                                              "note": note_text})],
                                        expect_status=row.status):
            raise HubError(409, "ticket_changed", "someone changed this ticket's status meanwhile: reload it")
        self._rearm(ticket_id, status, row.due_at if row.overdue_at is None else None)
        ticket = await self._get(ticket_id)
        await self._announce("ticket.updated", ticket)
        return ticket

    async def comment(self, user: UserInfo, ticket_id: int, text: Any) -> dict[str, Any]:
        await self._editable(user, ticket_id)
        body = check_text(text, "text", 4000, required=True)
        await self._write_change(ticket_id, {}, user, [("comment", {"text": body})])
        ticket = await self._get(ticket_id)
        await self._announce("ticket.updated", ticket)
        return ticket

    async def get(self, user: UserInfo, ticket_id: int) -> dict[str, Any]:
        row = await self._visible(user, ticket_id)
        async with self.db.read() as conn:
            events = (await conn.execute(select(events_t).where(events_t.c.ticket_id == ticket_id)
                                         .order_by(events_t.c.id))).all()
        return {**ticket_json(row), "history": [event_json(e) for e in events]}

    async def list(self, user: UserInfo, *, status: list[str] | None = None, group: str | None = None,
                   assignee_id: int | None = None, ticket_type: str | None = None, overdue: bool = False,
                   conversation_id: int | None = None, limit: int = 50, before_id: int | None = None
                   ) -> list[dict[str, Any]]:
        q = select(tickets_t)
        if not user.is_supervisor:
            q = q.where(_visible_to(user))
        if status:
            q = q.where(tickets_t.c.status.in_(status))
        if group:
            q = q.where(tickets_t.c.group == group)
        if assignee_id is not None:
            q = q.where(tickets_t.c.assignee_id == assignee_id)
        if ticket_type:
            q = q.where(tickets_t.c.type == ticket_type)
        if overdue:
            q = q.where(tickets_t.c.overdue_at.is_not(None)).where(tickets_t.c.status.in_(ACTIVE))
        if conversation_id is not None:
            q = q.where(tickets_t.c.conversation_id == conversation_id)
        if before_id is not None:
            q = q.where(tickets_t.c.id < before_id)
        async with self.db.read() as conn:
            rows = (await conn.execute(q.order_by(tickets_t.c.id.desc()).limit(limit))).all()
        return [ticket_json(r) for r in rows]

    # -- overdue --------------------------------------------------------------------------------
    def _arm(self, ticket_id: int, due_at: float) -> None:
        self.timers.set(f"ticket-due:{ticket_id}", due_at, lambda: self._overdue(ticket_id))

    def _rearm(self, ticket_id: int, status: str, due_at: float | None) -> None:
        if status in ACTIVE and due_at is not None:
            self._arm(ticket_id, due_at)
        else:
            self.timers.cancel(f"ticket-due:{ticket_id}")

    async def _overdue(self, ticket_id: int) -> None:
        now = self.clock.now()
        row = await self._row(ticket_id)
        if row is None or row.status not in ACTIVE or row.due_at is None or row.overdue_at is not None:
            return
        if row.due_at > now:  # moved later meanwhile
            self._arm(ticket_id, row.due_at)
            return

        async def write() -> bool:
            async with self.db.write() as conn:
                res = await conn.execute(update(tickets_t).where(tickets_t.c.id == ticket_id)
                                         .where(tickets_t.c.overdue_at.is_(None)).values(overdue_at=now))
                if res.rowcount != 1:
                    return False
                await self._event(conn, ticket_id, "overdue", None, {"due_at": row.due_at})
                return True

        if await retry_busy(write):
            await self._announce("ticket.overdue", await self._get(ticket_id))

    # -- internals ------------------------------------------------------------------------------
    async def _source(self, user: UserInfo, body: dict[str, Any]) -> tuple[int, Any]:
        session = None
        if body.get("session_id") is not None:
            sid = _int(body.get("session_id"), "session_id")
            async with self.db.read() as conn:
                session = (await conn.execute(select(sessions_t).where(sessions_t.c.id == sid))).first()
            if session is None:
                raise not_found("unknown_session", f"no session {sid}")
            conv_id = session.conversation_id
        elif body.get("conversation_id") is not None:
            conv_id = _int(body.get("conversation_id"), "conversation_id")
            async with self.db.read() as conn:
                if (await conn.execute(select(conversations_t.c.id).where(conversations_t.c.id == conv_id))).first() is None:
                    if not user.is_supervisor:
                        raise forbidden_conversation()
                    raise not_found("unknown_conversation", f"no conversation {conv_id}")
                session = (await conn.execute(select(sessions_t).where(sessions_t.c.conversation_id == conv_id)
                                              .order_by(sessions_t.c.id.desc()).limit(1))).first()
        else:
            raise bad_request("missing_source", "conversation_id or session_id is required", "conversation_id")
        if not await can_read_conversation(self.db, user, conv_id):
            raise forbidden_conversation()
        return conv_id, session

    def _due(self, body: dict[str, Any], now: float, ticket_type: TypeSpec | None) -> float | None:
        value = body.get("due_at")
        if value is None:
            return now + ticket_type.due_hours * 3600 if ticket_type is not None else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad_request("invalid_due_at", "due_at must be epoch seconds", "due_at")
        try:
            due = float(value)
        except OverflowError:  # an integer of hundreds of digits
            due = math.inf
        # request.json() takes Infinity and NaN: stored, they made GET /api/tickets invalid JSON for everyone
        if not (math.isfinite(due) and due > 0):
            raise bad_request("invalid_due_at", "due_at must be epoch seconds", "due_at")
        return due

    async def _assignee(self, value: Any) -> int | None:
        if value is None:
            return None
        agent_id = _int(value, "assignee_id")
        if self.agents is not None and agent_id not in self.agents:
            raise bad_request("invalid_assignee_id", f"no active user {agent_id}", "assignee_id")
        async with self.db.read() as conn:  # the dict keeps a disabled user: the database says
            if (await conn.execute(select(users_t.c.disabled).where(users_t.c.id == agent_id))).scalar():
                raise bad_request("invalid_assignee_id", f"user {agent_id} is disabled", "assignee_id")
        return agent_id

    async def _row(self, ticket_id: int) -> Any:
        async with self.db.read() as conn:
            return (await conn.execute(select(tickets_t).where(tickets_t.c.id == ticket_id))).first()

    async def _get(self, ticket_id: int) -> dict[str, Any]:
        return ticket_json(await self._row(ticket_id))

    async def _visible(self, user: UserInfo, ticket_id: int) -> Any:
        row = await self._row(ticket_id)
        if row is None:
            raise not_found("unknown_ticket", f"no ticket {ticket_id}")
        if not (user.is_supervisor or _may_see(user, row)):
            raise HubError(403, "forbidden", "this ticket is not in your groups")
        return row

    async def _editable(self, user: UserInfo, ticket_id: int) -> Any:
        return await self._visible(user, ticket_id)  # who may see a ticket may work on it

    async def _write_change(self, ticket_id: int, values: dict[str, Any], user: UserInfo,
                            events: list[tuple[str, dict[str, Any]]], expect_status: str | None = None) -> bool:
        """False, and nothing written, when ``expect_status`` is given and the ticket is no longer in it
        (a status move checked against the row it read: two moves at once must not both land)."""
        now = self.clock.now()

        async def write() -> bool:
            async with self.db.write() as conn:
                q = update(tickets_t).where(tickets_t.c.id == ticket_id)
                if expect_status is not None:
                    q = q.where(tickets_t.c.status == expect_status)
                if (await conn.execute(q.values(updated_at=now, **values))).rowcount != 1:
                    return False
                for kind, data in events:
                    await self._event(conn, ticket_id, kind, user, data)
                return True

        return await retry_busy(write)

    async def _event(self, conn: Any, ticket_id: int, kind: str, user: UserInfo | None, data: dict[str, Any]) -> None:
        await conn.execute(events_t.insert().values(ticket_id=ticket_id, kind=kind,
                                                    actor=f"user:{user.id}" if user else "system",
                                                    data=json.dumps(data, ensure_ascii=False), at=self.clock.now()))

    async def _announce(self, name: str, ticket: dict[str, Any], previous_group: str | None = None,
                        previous_assignee: int | None = None) -> None:
        payload = {"ticket": ticket}
        groups = {ticket["group"], previous_group} - {None, ""}
        for g in sorted(groups):
            await self.push.to_room(group_room(g), name, payload)
        await self.push.to_room(SUPERVISORS, name, payload)
        for uid in {ticket["assignee_id"], previous_assignee} - {None}:
            await self.push.to_user(uid, name, payload)


def _visible_to(user: UserInfo) -> Any:
    clauses = [tickets_t.c.assignee_id == user.id, tickets_t.c.created_by == user.id]
    if user.groups:
        clauses.append(tickets_t.c.group.in_(user.groups))
    return or_(*clauses)


def _may_see(user: UserInfo, row: Any) -> bool:
    return row.assignee_id == user.id or row.created_by == user.id or row.group in user.groups


def _event_kind(field: str) -> str:
    return {"assignee_id": "assigned", "due_at": "due", "priority": "priority", "group": "group"}.get(field, "edited")


def _int(value: Any, name: str) -> int:
    from ..api import int_param  # an id past BIGINT was a 500 (OverflowError, asyncpg's DataError)
    number = int_param(value, name)
    if number is None:
        raise bad_request("invalid_" + name, f"{name} must be an integer", name)
    return number
