"""The routing floor as the database has it: enabled agents, the sessions they hold, the queue.

Every process's dispatcher is rebuilt from this (``SessionService.resync``), and with several processes
the supervisor dashboard shows it too: the database is the one view they all share, where each
process's dispatcher may be up to a resync behind what the others did.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import func, select

from ..db import Database
from ..models import ServiceSession, User
from ..models.base import fixed
from ..routing.dispatch import AgentState, QueuedSession

sessions_t = ServiceSession.__table__
users_t = User.__table__

# held sessions (with their timer fields) and the queue
HELD_Q = select(sessions_t.c.id, sessions_t.c.agent_id, sessions_t.c.state, sessions_t.c.assigned_at,
                sessions_t.c.last_customer_at, sessions_t.c.last_agent_at, sessions_t.c.conversation_id).where(
    sessions_t.c.state.in_(fixed("assigned", "active"))).where(sessions_t.c.agent_id.is_not(None))
QUEUED_Q = select(sessions_t.c.id, sessions_t.c.group, sessions_t.c.priority, sessions_t.c.handover_at,
                  sessions_t.c.advisor_id).where(sessions_t.c.state == fixed("queued"))
QUEUE_ORDER = (sessions_t.c.priority.desc(), sessions_t.c.handover_at, sessions_t.c.id)  # the dispatcher's
QUEUE_GROUPS_Q = select(sessions_t.c.group, func.count(), func.min(sessions_t.c.handover_at)).where(
    sessions_t.c.state == fixed("queued")).group_by(sessions_t.c.group)
AGENTS_Q = select(users_t).where(users_t.c.disabled.is_(False))


def queued_session(row: Any) -> QueuedSession:
    return QueuedSession(row.id, row.group, row.priority, row.handover_at, row.advisor_id)


@dataclass(frozen=True)
class Floor:
    agents: list[Any]  # enabled users' rows
    held: list[Any]  # HELD_Q rows
    queued: list[QueuedSession] | None  # None: not read

    def held_by(self) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        for row in self.held:
            out.setdefault(row.agent_id, []).append(row.id)
        return out

    def agent_states(self) -> list[AgentState]:
        held = self.held_by()
        return [AgentState(a.id, frozenset(json.loads(a.groups or "[]")), a.status, a.cap, len(held.get(a.id, ())))
                for a in sorted(self.agents, key=lambda a: a.id)]


async def read_floor(db: Database, queue: bool | None = True) -> Floor:
    """One read of the floor. ``queue`` None: the queue only when some agent has room (a long queue in
    a busy hour need not be read every second when nobody could take from it)."""
    async with db.read() as conn:
        agents = (await conn.execute(AGENTS_Q)).all()
        held = (await conn.execute(HELD_Q)).all()
        if queue is None:
            load = Floor(agents, held, None).held_by()
            queue = any(a.status == "online" and len(load.get(a.id, ())) < a.cap for a in agents)
        queued = [queued_session(r) for r in (await conn.execute(QUEUED_Q)).all()] if queue else None
    return Floor(agents, held, queued)


@dataclass(frozen=True)
class QueueSummary:
    """What a supervisor sees of the queue: its length per group, the oldest, the first ``head``."""
    total: int
    per_group: dict[str, int]
    oldest: float | None
    head: list[QueuedSession]


def summarize(waiting: Sequence[QueuedSession], listed: int) -> QueueSummary:
    """A queue in queue order (a dispatcher's) -> its summary."""
    per_group: dict[str, int] = {}
    for q in waiting:
        per_group[q.group] = per_group.get(q.group, 0) + 1
    oldest = min((q.enqueued_at for q in waiting), default=None)
    return QueueSummary(len(waiting), per_group, oldest, list(waiting[:listed]))


async def read_queue_summary(db: Database, listed: int) -> QueueSummary:
    """The database's queue, summed up there (a queue of thousands in a busy hour is not fetched)."""
    async with db.read() as conn:
        groups = (await conn.execute(QUEUE_GROUPS_Q)).all()
        head = (await conn.execute(QUEUED_Q.order_by(*QUEUE_ORDER).limit(listed))).all()
    return QueueSummary(sum(n for _, n, _ in groups), {g: n for g, n, _ in groups},
                        min((t for _, _, t in groups if t is not None), default=None),
                        [queued_session(r) for r in head])
