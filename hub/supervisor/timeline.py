"""Reads the archive into what the SLA clocks and reply-time averages need, so a restart derives them
again from what was stored (sessions, their events, the messages) instead of losing in-memory state."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select

from ..db import Database
from ..models import Message, ServiceSession, SessionEvent
from ..models.base import by_conversation, fixed
from .deadlines import ReplySample, TimelineEvent, reply_samples, with_handovers

sessions_t = ServiceSession.__table__
events_t = SessionEvent.__table__
messages_t = Message.__table__
RESTARTS = ("transferred", "requeued")  # a new holder: the SLA clocks restart for them


@dataclass
class SessionClock:
    """What the SLA rules look at for one open session."""

    session_id: int
    conversation_id: int
    account_id: str
    group: str
    agent_id: int | None
    handover_at: float
    first_reply_at: float | None
    waiting_since: float | None  # the customer is waiting for a person since (None: answered)
    restarted_at: float  # handover, or the last transfer / requeue
    last_agent_at: float | None = None


    @classmethod
    def of(cls, row: Any, waiting_since: float | None, restarted_at: float | None = None) -> "SessionClock":
        return cls(row.id, row.conversation_id, row.account_id, row.group or "", row.agent_id, row.handover_at,
                   row.first_reply_at, waiting_since, max(row.handover_at, restarted_at or 0.0), row.last_agent_at)


def agent_of(sender: str) -> int | None:
    if sender.startswith("agent:"):
        try:
            return int(sender[6:])
        except ValueError:
            return None
    return None


async def open_session_clocks(db: Database) -> list[SessionClock]:
    """Every open session with its waiting time and last restart, from the stored rows and messages."""
    async with db.read() as conn:
        rows = (await conn.execute(select(sessions_t).where(sessions_t.c.state != fixed("closed")))).all()
        if not rows:
            return []
        ids = [r.id for r in rows]
        restarts = dict((await conn.execute(
            select(events_t.c.session_id, func.max(events_t.c.at)).where(events_t.c.session_id.in_(ids))
            .where(events_t.c.kind.in_(RESTARTS)).group_by(events_t.c.session_id))).all())
        out = []
        for r in rows:
            out.append(SessionClock.of(r, await _waiting_since(conn, r), restarts.get(r.id)))
    return out


async def session_clock(db: Database, session_id: int) -> SessionClock | None:
    async with db.read() as conn:
        row = (await conn.execute(select(sessions_t).where(sessions_t.c.id == session_id))).first()
        if row is None or row.state == "closed":
            return None
        restarted = (await conn.execute(select(func.max(events_t.c.at)).where(events_t.c.session_id == session_id)
                                        .where(events_t.c.kind.in_(RESTARTS)))).scalar()
        return SessionClock.of(row, await _waiting_since(conn, row), restarted)


async def _waiting_since(conn: Any, row: Any) -> float | None:
    if row.first_reply_at is None:
        return row.handover_at  # waiting for the first human reply since the handover
    last_agent = row.last_agent_at or row.first_reply_at
    if (row.last_customer_at or 0) <= last_agent:
        return None
    first = (await conn.execute(
        select(func.min(by_conversation(messages_t.c.created_at))).where(messages_t.c.conversation_id == row.conversation_id)
        .where(messages_t.c.direction == "in").where(~messages_t.c.kind.startswith("event."))
        .where(by_conversation(messages_t.c.created_at) > last_agent))).scalar()
    if first is None:  # only events since (a menu click stamps last_customer_at too): nobody is waiting
        return None
    return max(first, row.handover_at)


async def recent_reply_samples(db: Database, since: float) -> list[ReplySample]:
    """Agent reply times since ``since`` (oldest first), paired from the archived messages and handovers."""
    async with db.read_heavy() as conn:
        handovers = (await conn.execute(select(sessions_t.c.conversation_id, sessions_t.c.handover_at,
                                               sessions_t.c.account_id)
                                        .where(sessions_t.c.handover_at >= since))).all()
        if not handovers:
            return []
        conv_ids = sorted({h.conversation_id for h in handovers})
        msgs = []
        for i in range(0, len(conv_ids), 500):
            msgs += (await conn.execute(
                select(messages_t.c.id, messages_t.c.conversation_id, messages_t.c.account_id,
                       messages_t.c.direction, messages_t.c.sender, messages_t.c.created_at, messages_t.c.kind)
                .where(messages_t.c.conversation_id.in_(conv_ids[i:i + 500]))
                .where(messages_t.c.created_at >= since))).all()
    handovers_of: dict[int, list[TimelineEvent]] = {}
    for h in handovers:
        handovers_of.setdefault(h.conversation_id, []).append(
            TimelineEvent(h.handover_at, "handover", account_id=h.account_id))
    messages_of: dict[int, list[TimelineEvent]] = {}
    for m in sorted(msgs, key=lambda m: m.id):  # archive order
        if m.kind.startswith("event."):
            continue
        event = message_event(m.direction, m.sender, m.created_at, m.id, m.account_id)
        if event is not None:
            messages_of.setdefault(m.conversation_id, []).append(event)
    samples: list[ReplySample] = []
    for conv, hs in handovers_of.items():
        samples += reply_samples(with_handovers(messages_of.get(conv, []), hs))
    samples.sort(key=lambda s: s.replied_at)
    return samples


def message_event(direction: str, sender: str, at: float, message_id: int, account_id: str = "") -> TimelineEvent | None:
    """A stored message as a timeline point (None for what does not move the clocks: system notices)."""
    if direction == "in":
        return TimelineEvent(at, "customer", message_id=message_id, account_id=account_id)
    agent = agent_of(sender or "")
    if agent is not None:
        return TimelineEvent(at, "agent", agent_id=agent, message_id=message_id, account_id=account_id)
    if sender == "bot":
        return TimelineEvent(at, "bot", message_id=message_id, account_id=account_id)
    return None
