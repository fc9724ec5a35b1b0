"""The session timers: accept (an assigned session not accepted in time is queued again), unanswered
(a customer left waiting: supervisors are told, the session reassigned), ``reassign`` (the SLA
escalations' too) and the advisor fallback (a session that waited ``advisor_wait`` for its advisor
goes to its group). Not ``timers.py``: that is the keyed ``call_later`` store (``Timers``) these are set on.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ..models import Message
from ..models.base import by_conversation
from ..push import SUPERVISORS
from ..routing.dispatch import Assignment, QueuedSession

messages = Message.__table__


class SessionTimers:
    """Mixed into SessionService (which provides ``db``, ``clock``, ``push``, ``settings``, ``timers``,
    ``dispatcher``, ``_lapsing``, ``_get``, ``_update``, ``_take_back``, ``_event``, ``_notify``, ``_queued``,
    ``_enqueue``, ``_apply_all``, ``catch_up_queue`` (DispatcherSync); ``_queue_changed`` from QueueAnnouncements)."""

    db: Any
    clock: Any
    push: Any
    settings: Any
    timers: Any
    dispatcher: Any
    _lapsing: Any
    _escalated: dict[int, float]

    def _advisor_wait(self) -> float | None:
        wait = float(self.settings.cached("advisor_wait") or 0)
        return wait if wait > 0 else None

    def _arm_advisor_fallback(self, q: QueuedSession) -> None:
        """A session waiting for its advisor: at the end of ``advisor_wait`` the dispatcher lets its
        group take it (the dispatcher only knows the time it is given)."""
        wait = self.dispatcher.advisor_wait
        if q.agent_id is not None and wait is not None:
            self.timers.set(f"advisor:{q.session_id}", q.enqueued_at + wait, self._advisor_fallback)

    async def _advisor_fallback(self) -> None:
        await self._apply_all(self.dispatcher.tick(self.clock.now()))
        await self._queue_changed()

    def _arm_accept_timer(self, session_id: int, assigned_at: float) -> None:
        timeout = float(self.settings.cached("accept_timeout") or 0)
        if timeout > 0:
            self.timers.set(f"accept:{session_id}", assigned_at + timeout, lambda: self._accept_timeout(session_id))

    async def _accept_timeout(self, session_id: int) -> None:
        row = await self._get(session_id)
        if row is None or row.state != "assigned":
            return
        agent = row.agent_id
        agents = self.dispatcher.agents()
        holder_here = any(a.id == agent and a.status == "online" for a in agents)
        if row.group is not None and holder_here and not self.dispatcher.queue_counts()[1].get(row.group) and not any(
                a.id != agent and a.status == "online" and row.group in a.groups and a.load < a.cap for a in agents):
            # nobody else could take it, and nobody waits in its group for the slot: it stays with them for
            # another period (taken back, it came straight back to them: removed and new again, a toast, a
            # beep, its SLA clocks restarted)
            self._arm_accept_timer(session_id, self.clock.now())
            return
        if not await self._take_back(row, ("assigned",), "requeued", {"why": "not_accepted", "from": agent}):
            return  # accepted (or closed, or handed on) since it was read
        await self.catch_up_queue()
        freed = self.dispatcher.release(agent, session_id)
        await self.push.to_user(agent, "session.removed", {"session_id": session_id, "reason": "not_accepted"})
        await self._notify("requeued", session_id, why="not_accepted", from_agent=agent)
        await self._apply_all(freed)
        await self._apply_all(await self._enqueue_passing_over(await self._get(session_id), agent))
        await self._queue_changed()

    async def _unanswered_deadline(self, row: Any) -> float | None:
        """When the session's holder has left the customer unanswered too long; None if nothing waits.
        Counted from the customer's first message since the holder's last reply (a customer asking
        "在吗?" every few minutes does not push it out), or from when the holder got the session if
        later: an agent handed a session whose customer already waited (from the queue, or handed
        back after a reassignment found nobody else) gets the full time, not a deadline already past
        (which fired at once, reassigned, got the session back and fired again, endlessly)."""
        minutes = float(self.settings.cached("unanswered_minutes") or 0)
        if row is None or minutes <= 0 or row.state not in ("assigned", "active"):
            return None
        newest = row.last_customer_at
        if newest is None or (row.last_agent_at or 0) >= newest:
            return None
        async with self.db.read() as conn:
            first = (await conn.execute(select(func.min(by_conversation(messages.c.created_at))).where(
                (messages.c.conversation_id == row.conversation_id) & (messages.c.direction == "in")
                & (messages.c.sender == "customer") & ~messages.c.kind.startswith("event.")
                & (by_conversation(messages.c.created_at) > (row.last_agent_at or 0))))).scalar()
        if first is None:  # only events since (a menu click stamps last_customer_at too): nobody is waiting
            return None
        waiting_since = min(first, newest)
        # once escalated, the same wait is escalated again a full period later, not at every message
        escalated = self._escalated.get(row.id, 0.0)
        return max(waiting_since, row.assigned_at or 0, escalated if escalated > waiting_since else 0) + minutes * 60

    async def _arm_unanswered_timer(self, row: Any) -> None:
        minutes = float(self.settings.cached("unanswered_minutes") or 0)
        if row is None or minutes <= 0 or row.state not in ("assigned", "active"):
            return
        key = f"unanswered:{row.id}"
        if row.last_customer_at is None or (row.last_agent_at or 0) >= row.last_customer_at:
            self._escalated.pop(row.id, None)
            self.timers.cancel(key)
            return
        pending = self.timers.when(key)
        if pending is not None and pending >= (row.assigned_at or 0) + minutes * 60:
            return  # counted from the first unanswered message (or a later hand-over): it stands
        due = await self._unanswered_deadline(row)
        if due is None:
            self.timers.cancel(key)
            return
        self.timers.set(key, due, lambda: self._unanswered(row.id))

    async def _unanswered(self, session_id: int) -> None:
        if session_id in self._lapsing:
            return  # re-armed and fired again while the first firing still runs: that one handles it
        self._lapsing.add(session_id)
        try:
            await self._handle_unanswered(session_id)
        finally:
            self._lapsing.discard(session_id)

    async def _handle_unanswered(self, session_id: int) -> None:
        row = await self._get(session_id)
        due = await self._unanswered_deadline(row)
        if due is None:
            return
        if due > self.clock.now() + 0.0005:  # the session changed hands since the timer was set
            await self._arm_unanswered_timer(row)
            return
        self._escalated[session_id] = self.clock.now()
        action = self.settings.cached("unanswered_action")
        payload = {"session_id": session_id, "agent_id": row.agent_id, "waiting_since": row.last_customer_at}
        await self.push.to_room(SUPERVISORS, "session.escalated", payload)
        async with self.db.write() as conn:
            await self._event(conn, session_id, "unanswered", "system", {"action": action, "agent_id": row.agent_id})
        if action == "reassign":
            await self.reassign(session_id, "unanswered")

    async def reassign(self, session_id: int, why: str, only_to_another: bool = False) -> bool:
        """Take an open session from its agent and route it again, passing that agent over (the
        unanswered timer, SLA escalations). False if it has no agent to take it from."""
        row = await self._get(session_id)
        if row is None or row.state not in ("assigned", "active") or not row.agent_id:
            return False
        agent = row.agent_id
        if only_to_another and not any(a.id != agent and a.status == "online" and a.load < a.cap
                                       and row.group in a.groups for a in self.dispatcher.agents()):
            return False  # an SLA escalation with nobody else to take it: it came straight back (its alert went)
        if not await self._take_back(row, ("assigned", "active"), "requeued", {"why": why, "from": agent}):
            return False  # closed or handed on since it was read
        await self.catch_up_queue()
        freed = self.dispatcher.release(agent, session_id)
        self.timers.cancel(f"accept:{session_id}")
        await self.push.to_user(agent, "session.removed", {"session_id": session_id, "reason": why})
        await self._notify("requeued", session_id, why=why, from_agent=agent)
        await self._apply_all(freed)
        await self._apply_all(await self._enqueue_passing_over(await self._get(session_id), agent))
        await self._queue_changed()
        return True

    async def _enqueue_passing_over(self, row: Any, agent_id: int) -> list[Assignment]:
        """Queue a session (a row, or a ``QueuedSession``) so that ``agent_id`` (who let it lapse, or
        handed it to their own group) is passed over if anyone else can take it."""
        state = next((a for a in self.dispatcher.agents() if a.id == agent_id), None)
        out: list[Assignment] = []
        if state is not None and state.status == "online":
            out += self.dispatcher.set_status(agent_id, "away")
        first = self._enqueue(row if isinstance(row, QueuedSession) else self._queued(row))
        if first is not None:
            out.append(first)
        if state is not None and state.status == "online":
            out += self.dispatcher.set_status(agent_id, "online")
        return out
