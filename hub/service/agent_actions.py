"""What agents do to their sessions: accept, reply, transfer, close, and their status and capacity
(going offline queues their sessions again). Mixed into SessionService (hub/service/sessions.py), the
only place that changes sessions; each action writes its change, then fills any room it freed from
the queue (with several processes after ``catch_up_queue`` has read the database's queue).
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update

from ..errors import HubError, bad_request, not_found
from ..models import Message, ServiceSession, SkillGroup, User
from ..models.base import fixed
from ..outbound.queue import OutboundRequest, check_text
from ..privacy.views import mask_message
from ..push import SUPERVISORS, user_room
from ..routing.dispatch import Assignment, DispatchError, QueuedSession
from ..users import UserInfo, set_status as store_status

log = logging.getLogger("hub.service.sessions")


def changed() -> HubError:
    """An action on a session another action changed since it was read (the agent looks again)."""
    return HubError(409, "session_changed", "this session changed meanwhile: look at it again")


sessions_t = ServiceSession.__table__
messages = Message.__table__
users_t = User.__table__
groups_t = SkillGroup.__table__


class AgentActions:
    """Mixed into SessionService (which provides ``db``, ``clock``, ``push``, ``outbound``, ``timers``,
    ``dispatcher``, ``agents``, ``shared``, ``_escalated``, ``_owned``, ``_get``, ``_update``, ``_take_back``,
    ``_notify``, ``_kf``, ``_queued``, ``_enqueue``, ``_apply``, ``_apply_all``, ``channel_of``,
    ``_enqueue_passing_over`` and ``_arm_advisor_fallback`` (SessionTimers),
    ``catch_up_queue`` (DispatcherSync) and ``_queue_changed`` (QueueAnnouncements))."""

    db: Any
    clock: Any
    push: Any
    outbound: Any
    timers: Any
    dispatcher: Any
    agents: dict[int, UserInfo]
    shared: bool
    _escalated: dict[int, float]

    async def accept(self, user: UserInfo, session_id: int) -> None:
        row = await self._owned(user, session_id)
        if row.state == "assigned":
            # only as read: the accept timer may have queued it again (it went active with nobody holding it)
            if not await self._change(row, {"state": "active", "accepted_at": self.clock.now()}, "accepted", user):
                raise changed()
            self.timers.cancel(f"accept:{session_id}")
            row = await self._get(session_id)
            # the agent's other tabs (the one that accepted knows): they offered 接入 until a reload
            await self.push.to_user(user.id, "session.accepted", {"session_id": session_id,
                                                                   "accepted_at": row.accepted_at})
            await self._kf(row, "human", user)
            await self._notify("accepted", session_id, agent_id=user.id)

    async def reply(self, user: UserInfo, session_id: int, text: Any, client_id: Any = None) -> int | None:
        row = await self._owned(user, session_id)
        check_text(await self.channel_of(row.conversation_id), text)
        if row.state == "closed":
            raise HubError(409, "session_closed", "this session is closed")
        if row.state == "assigned":  # replying accepts it, as 接入 does (微信客服 hands it to the agent first)
            await self.accept(user, session_id)
        dedup = f"agent:{user.id}:{client_id}" if client_id else None
        message_id = await self.outbound.enqueue(OutboundRequest(row.account_id, row.conversation_id, text,
                                                                 f"agent:{user.id}", dedup_key=dedup))
        now = self.clock.now()
        values: dict[str, Any] = {"last_agent_at": now}
        if row.first_reply_at is None:
            values["first_reply_at"] = now
        await self._update(session_id, values, None, user)
        self.timers.cancel(f"unanswered:{session_id}")
        self._escalated.pop(session_id, None)
        if message_id is not None:
            async with self.db.read() as conn:
                msg = (await conn.execute(select(messages).where(messages.c.id == message_id))).first()
            from ..archive.history import message_json
            to = row.agent_id or user.id
            payload = {"session_id": session_id, "message": mask_message(self.agents.get(to), message_json(msg))}
            if client_id:  # the sender's console ties its pending copy to this message (its ack comes later)
                payload["client_id"] = client_id
            await self.push.to_user(to, "message.new", payload)
        await self._notify("agent_reply", session_id, agent_id=user.id, message_id=message_id, at=now)
        return message_id

    async def transfer(self, user: UserInfo, session_id: int, *, to_agent: int | None = None,
                       to_group: str | None = None, note: str = "") -> None:
        row = await self._owned(user, session_id)
        if row.state == "closed":
            raise HubError(409, "session_closed", "this session is closed")
        if to_agent is None and not to_group:
            raise bad_request("invalid_target", "to_agent or to_group is required", "to_agent")
        if to_group is not None:
            to_group = await self._known_group(to_group)
        if to_agent is not None:
            if to_agent == row.agent_id:
                raise bad_request("invalid_target", "the session is theirs already", "to_agent")
            if to_agent not in self.agents:
                raise not_found("unknown_agent", f"no agent {to_agent}")
            target = next((a for a in self.dispatcher.agents() if a.id == to_agent), None)
            if target is None or target.status != "online" or target.load >= target.cap:
                raise HubError(409, "agent_unavailable", "that agent is not online or has no free capacity",
                               "to_agent")
        note = note.strip()[:500] if isinstance(note, str) else ""  # shown to the next agent (session bundle)
        old_agent = row.agent_id
        group = to_group or row.group
        # written first, and only as read: a close (or another transfer) that came first wins
        if not await self._change(row, {"state": "queued", "agent_id": None, "assigned_at": None, "group": group,
                                        "accepted_at": None},
                                  "transferred", user, {"from": old_agent, "to_agent": to_agent, "to_group": to_group,
                                                        "note": note}):
            raise changed()
        freed: list[Assignment] = []
        if old_agent:
            await self.catch_up_queue()
            freed = self.dispatcher.release(old_agent, session_id)
        elif row.state == "queued":
            self.dispatcher.cancel(session_id)  # waiting: it queues again below, in its new group
        self.timers.cancel(f"accept:{session_id}")
        if old_agent:
            await self.push.to_user(old_agent, "session.removed", {"session_id": session_id, "reason": "transferred"})
        queue = QueuedSession(session_id, group, row.priority, row.handover_at, None)
        try:
            direct = self.dispatcher.assign_direct(session_id, to_agent) if to_agent is not None else None
        except DispatchError as exc:  # the agent's last free place was taken meanwhile: their group's queue
            log.info("transfer of session %s to agent %s: %s; queued in %s", session_id, to_agent, exc, group)
            direct = None
            to_agent = None
        if direct is not None:
            await self._apply_all(direct)
        elif old_agent:  # to a group (theirs, say): a colleague takes it if any can, not the sender again
            await self._apply_all(await self._enqueue_passing_over(queue, old_agent))
        else:
            await self._apply(self._enqueue(queue))
        await self._apply_all(freed)
        await self._queue_changed()
        await self._notify("transferred", session_id, from_agent=old_agent, to_agent=to_agent, to_group=to_group)

    async def _known_group(self, name: Any) -> str:
        """A transfer's group: one an agent is in or the operators made (a typo queued the customer in a
        group nobody serves, and a name that is no text was an internal error)."""
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64:
            raise bad_request("invalid_group", "to_group must be a group name (1-64 characters)", "to_group")
        name = name.strip()
        if any(name in a.groups for a in self.dispatcher.agents()):
            return name
        async with self.db.read() as conn:
            if (await conn.execute(select(groups_t.c.name).where(groups_t.c.name == name))).first() is None:
                raise HubError(404, "unknown_group", f"no group {name}", "to_group")
        return name

    async def close(self, user: UserInfo | None, session_id: int, reason: str = "resolved", *,
                    tell_platform: bool = True) -> None:
        if not isinstance(reason, str):
            raise bad_request("invalid_reason", "reason must be text", "reason")
        reason = reason.strip()[:64] or "resolved"
        for _ in range(3):  # as read, or read again: a transfer or an assignment committed meanwhile
            row = await self._get(session_id) if user is None else await self._owned(user, session_id)
            if row is None or row.state == "closed":
                return
            if await self._change(row, {"state": "closed", "closed_at": self.clock.now(), "close_reason": reason},
                                  "closed", user, {"reason": reason}):
                break
        else:
            raise changed()
        if row.state == "queued":
            self.dispatcher.cancel(session_id)
        self.timers.cancel(f"accept:{session_id}")
        self.timers.cancel(f"unanswered:{session_id}")
        self._escalated.pop(session_id, None)
        if row.agent_id:
            await self.catch_up_queue()
        freed = self.dispatcher.release(row.agent_id, session_id) if row.agent_id else []
        if row.agent_id:
            await self.push.to_user(row.agent_id, "session.closed", {"session_id": session_id, "reason": reason})
        if tell_platform:
            await self._kf(row, "closed")
        await self._notify("closed", session_id, reason=reason)
        await self._apply_all(freed)
        await self._queue_changed()

    async def set_status(self, user: UserInfo, status: Any) -> None:
        await store_status(self.db, user.id, status)
        if user.id not in self.agents:
            self.agents[user.id] = user
            self.dispatcher.upsert_agent(user.id, groups=user.groups, cap=user.cap, status="offline")
        change = {"agent_id": user.id, "status": status}
        await self.push.to_room(SUPERVISORS, "agent.status", change)
        await self.push.to_room(user_room(user.id), "agent.status", change)  # the agent's other tabs
        if status == "offline":
            await self.requeue_agent(user.id, "agent_offline")
        await self.catch_up_queue()
        await self._apply_all(self.dispatcher.set_status(user.id, status))
        await self._queue_changed()

    async def set_cap(self, agent_id: int, cap: int) -> None:
        async with self.db.write() as conn:
            await conn.execute(update(users_t).where(users_t.c.id == agent_id).values(cap=cap))
        await self.catch_up_queue()
        await self._apply_all(self.dispatcher.set_cap(agent_id, cap))

    async def agent_gone(self, user: UserInfo) -> None:
        """The agent's last socket dropped and the grace period passed."""
        await self.set_status(user, "offline")

    async def requeue_agent(self, agent_id: int, why: str) -> None:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(sessions_t).where(sessions_t.c.agent_id == agent_id)
                                       .where(sessions_t.c.state.in_(fixed("assigned", "active"))))).all()
        taken = []
        for row in rows:
            if not await self._take_back(row, ("assigned", "active"), "requeued", {"why": why, "from": agent_id}):
                continue  # closed or handed on meanwhile
            taken.append(row)
            self.timers.cancel(f"accept:{row.id}")
            await self.push.to_user(agent_id, "session.removed", {"session_id": row.id, "reason": why})
            await self._notify("requeued", row.id, why=why, from_agent=agent_id)
        rows = taken
        queued = [self._queued(await self._get(r.id)) for r in rows]
        if self.shared:  # a resync may already have queued some of them (or another process taken them)
            queued = [q for q in queued if self.dispatcher.agent_of(q.session_id) == agent_id
                      or not self.dispatcher.knows(q.session_id)]
        await self._apply_all(self.dispatcher.requeue_agent_sessions(agent_id, queued))
        for q in queued:  # still waiting for their advisor: the group takes them when advisor_wait ends
            if self.dispatcher.knows(q.session_id) and self.dispatcher.agent_of(q.session_id) is None:
                self._arm_advisor_fallback(q)
        await self._queue_changed()
