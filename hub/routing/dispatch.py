"""In-memory, deterministic assignment of waiting sessions to human agents.

The app keeps one ``Dispatcher`` current as agents and sessions change; every mutating call returns the
assignments it caused so the app can persist and announce them. No I/O, no clock reads, no randomness.

Rules:

* An agent takes new sessions only when ``status == 'online'`` and ``load < cap``.
* A group session may go to any agent in that group: least loaded (absolute load) first, ties broken
  round-robin per group (the next agent id after the one picked last in that group, wrapping around).
* An exclusive-advisor session (``agent_id`` set) waits for that agent only, whatever its groups. With
  ``advisor_wait`` set, once ``enqueued_at + advisor_wait <= now`` (``now`` as last given to ``tick``) it
  falls back: the advisor still comes first if available, else any agent of its group.
* Queue order: priority desc, then enqueued_at asc, then session_id asc. After every change the queue is
  drained in that order, so no waiting session is ever left while an agent eligible for it has room.
* Lowering a cap or a forced transfer may leave an agent above cap; nothing is taken away, it just
  receives nothing new until below cap again.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Iterable

STATUSES = frozenset({"online", "busy", "away", "offline"})


class DispatchError(ValueError):
    """An operation that would break the dispatcher's bookkeeping."""


@dataclass(frozen=True)
class AgentState:
    id: int
    groups: frozenset[str]
    status: str
    cap: int
    load: int


@dataclass(frozen=True)
class QueuedSession:
    session_id: int
    group: str
    priority: int
    enqueued_at: float
    agent_id: int | None = None  # exclusive advisor: only that agent may take it


@dataclass(frozen=True)
class Assignment:
    session_id: int
    agent_id: int
    group: str | None  # None for a direct assignment of a session that was not queued
    forced: bool = False


@dataclass
class _Agent:
    id: int
    groups: frozenset[str]
    status: str
    cap: int
    sessions: set[int] = field(default_factory=set)

    def has_room(self) -> bool:
        return self.status == "online" and len(self.sessions) < self.cap


def _key(q: QueuedSession) -> tuple[int, float, int]:
    return (-q.priority, q.enqueued_at, q.session_id)


class Dispatcher:
    """Agents, their held sessions and the waiting queue."""

    def __init__(self, advisor_wait: float | None = None, now: float = 0.0, rr: dict[str, int] | None = None):
        if advisor_wait is not None and advisor_wait < 0:
            raise DispatchError("advisor_wait must be >= 0")
        self.advisor_wait = advisor_wait
        self._now = now
        self._agents: dict[int, _Agent] = {}
        self._held: dict[int, int] = {}  # session_id -> agent_id
        self._queue: dict[int, QueuedSession] = {}
        self._order: list[tuple[int, float, int]] = []  # sorted _key()s of queued sessions
        # for queue_position without a scan of the whole queue: sorted keys of each group's sessions
        # that have no advisor, and the (few) advisor sessions apart
        self._group_order: dict[str, list[tuple[int, float, int]]] = {}
        self._advised: dict[int, QueuedSession] = {}
        self._rr: dict[str, int] = dict(rr or {})  # group -> agent id picked last
        # bumped by every change, so a rebuild from the database can tell that this dispatcher moved
        # while it read (its read may then be older than what this process did meanwhile)
        self.changes = 0

    def round_robin(self) -> dict[str, int]:
        """The per-group round-robin pointers (carried into a dispatcher rebuilt from the database)."""
        return dict(self._rr)

    # ---- agents -------------------------------------------------------------------------------------
    def upsert_agent(self, agent_id: int, *, groups: Iterable[str], cap: int, status: str = "online",
                     sessions: Iterable[int] | None = None) -> list[Assignment]:
        """Add or update an agent. ``sessions`` (if given) replaces the set of sessions it holds, e.g. when
        loading state at start-up; ``None`` keeps its current holdings."""
        _check_status(status)
        _check_cap(cap)
        if isinstance(groups, str):
            raise DispatchError("groups must be a collection of group names, not a string")
        held = None if sessions is None else set(sessions)
        self.changes += 1
        for sid in held or ():
            if sid in self._queue or self._held.get(sid, agent_id) != agent_id:
                raise DispatchError(f"session {sid} is already queued or held by another agent")
        agent = self._agents.get(agent_id)
        if agent is None:
            agent = self._agents[agent_id] = _Agent(agent_id, frozenset(groups), status, cap)
        else:
            agent.groups, agent.status, agent.cap = frozenset(groups), status, cap
        if held is not None:
            for sid in agent.sessions - held:
                del self._held[sid]
            agent.sessions = held
            self._held.update((sid, agent_id) for sid in held)
        return self._drain()

    def set_status(self, agent_id: int, status: str) -> list[Assignment]:
        _check_status(status)
        self._agent(agent_id).status = status
        self.changes += 1
        return self._drain()

    def set_cap(self, agent_id: int, cap: int) -> list[Assignment]:
        _check_cap(cap)
        self._agent(agent_id).cap = cap
        self.changes += 1
        return self._drain()

    def remove_agent(self, agent_id: int) -> tuple[int, ...]:
        """Forget an agent; returns the session ids it held (the caller decides whether to requeue them)."""
        agent = self._agents.pop(agent_id, None)
        if agent is None:
            return ()
        self.changes += 1
        for sid in agent.sessions:
            del self._held[sid]
        return tuple(sorted(agent.sessions))

    def requeue_agent_sessions(self, agent_id: int, sessions: Iterable[QueuedSession],
                               status: str = "offline") -> list[Assignment]:
        """Set the agent's status (default 'offline') and put the given sessions back in the queue with their
        original ``enqueued_at``, then redistribute. Sessions it holds but that are not listed stay held."""
        _check_status(status)
        agent = self._agent(agent_id)
        sessions = list(sessions)
        seen: set[int] = set()
        for q in sessions:
            sid = q.session_id
            if sid in seen or sid in self._queue or self._held.get(sid, agent_id) != agent_id:
                raise DispatchError(f"session {sid} is duplicated, queued, or held by another agent")
            seen.add(sid)
        agent.status = status
        self.changes += 1
        for q in sessions:
            agent.sessions.discard(q.session_id)
            self._held.pop(q.session_id, None)
            self._push(q)
        return self._drain()

    # ---- sessions -----------------------------------------------------------------------------------
    def enqueue(self, session: QueuedSession) -> Assignment | None:
        """Assign at once if an eligible agent has room, else queue."""
        sid = session.session_id
        if sid in self._queue or sid in self._held:
            raise DispatchError(f"session {sid} is already queued or assigned")
        room = {a.id for a in self._agents.values() if a.has_room()}
        agent_id = self._pick(session, room)
        if agent_id is None:
            self._push(session)
            return None
        self._hold(agent_id, sid)
        return Assignment(sid, agent_id, session.group)

    def load_queue(self, sessions: Iterable[QueuedSession]) -> list[Assignment]:
        """Queue many sessions at once (a rebuild from the database), then assign in queue order what
        agents with room may take. One sort instead of an insertion per session: a rebuild with 20,000
        waiting, one by one, took 320 ms (every second with several processes)."""
        sessions = list(sessions)
        ids = {q.session_id for q in sessions}
        if len(ids) != len(sessions) or any(sid in self._queue or sid in self._held for sid in ids):
            raise DispatchError("a session is duplicated, or already queued or assigned")
        self.changes += 1
        for q in sessions:
            self._queue[q.session_id] = q
            key = _key(q)
            self._order.append(key)
            if q.agent_id is None:
                self._group_order.setdefault(q.group, []).append(key)
            else:
                self._advised[q.session_id] = q
        self._order.sort()
        for keys in self._group_order.values():
            keys.sort()
        return self._drain()

    def cancel(self, session_id: int) -> bool:
        """Drop a waiting session (the customer left or a bot solved it); False if it was not queued."""
        if session_id not in self._queue:
            return False
        self._pop(session_id)
        return True

    def release(self, agent_id: int, session_id: int) -> list[Assignment]:
        """The agent no longer holds the session (closed or transferred away); fills the freed room.
        A no-op if the agent does not hold it, so duplicate close events are harmless."""
        agent = self._agents.get(agent_id)
        if agent is None or session_id not in agent.sessions:
            return []
        agent.sessions.discard(session_id)
        del self._held[session_id]
        self.changes += 1
        return self._drain()

    def assign_direct(self, session_id: int, agent_id: int, *, force: bool = False) -> list[Assignment]:
        """Transfer or hand-pick: give the session to ``agent_id`` (taking it out of the queue or from its
        current agent). Without ``force`` the agent must be online with room. Returns this assignment first,
        then any assignments caused by the previous holder's freed room."""
        agent = self._agent(agent_id)
        if self._held.get(session_id) == agent_id:
            return []
        if not force and not agent.has_room():
            raise DispatchError(f"agent {agent_id} is {agent.status} with load {len(agent.sessions)}/{agent.cap}")
        group = None
        if session_id in self._queue:
            group = self._pop(session_id).group
        elif session_id in self._held:
            self._agents[self._held.pop(session_id)].sessions.discard(session_id)
        self._hold(agent_id, session_id)
        return [Assignment(session_id, agent_id, group, forced=force), *self._drain()]

    def tick(self, now: float) -> list[Assignment]:
        """Advance time (only matters for ``advisor_wait`` fallbacks)."""
        self._now = max(self._now, now)
        return self._drain()

    # ---- queries ------------------------------------------------------------------------------------
    def queue_position(self, session_id: int) -> int | None:
        """1-based place among queued sessions competing for the same advisor, or the same group."""
        q = self._queue.get(session_id)
        if q is None:
            return None
        lane, key = self._lane(q), _key(q)
        # advisor sessions competing in the same lane, ahead of this one (there are few of them)
        ahead = sum(1 for other in self._advised.values() if _key(other) < key and self._lane(other) == lane)
        if lane[0] == "agent":
            return ahead + 1
        return bisect.bisect_left(self._group_order.get(q.group, ()), key) + ahead + 1

    def queue_snapshot(self) -> tuple[QueuedSession, ...]:
        """Waiting sessions in queue order (all of them: see ``queue_head`` and ``queue_counts``)."""
        return tuple(self._queue[k[2]] for k in self._order)

    def queue_head(self, n: int) -> tuple[QueuedSession, ...]:
        """The first ``n`` waiting sessions in queue order, without a walk of the whole queue."""
        return tuple(self._queue[k[2]] for k in self._order[:n])

    def oldest_enqueued(self) -> float | None:
        """When the longest-waiting session was queued (a walk of the queue: its head, in priority
        order, may all be VIPs queued later than a normal session still waiting)."""
        waiting = [q.enqueued_at for q in self._queue.values()] + [q.enqueued_at for q in self._advised.values()]
        return min(waiting, default=None)

    def queue_counts(self) -> tuple[int, dict[str, int]]:
        """How many sessions wait, in all and per group: from the per-group orders and the (few)
        advisor sessions, without a walk of the whole queue."""
        per_group = {group: len(keys) for group, keys in self._group_order.items()}
        for q in self._advised.values():
            per_group[q.group] = per_group.get(q.group, 0) + 1
        return len(self._queue), per_group

    def load_of(self, agent_id: int) -> int:
        agent = self._agents.get(agent_id)
        return len(agent.sessions) if agent else 0

    def knows(self, session_id: int) -> bool:
        """Queued or held here."""
        return session_id in self._queue or session_id in self._held

    def agent_of(self, session_id: int) -> int | None:
        return self._held.get(session_id)

    def agents(self) -> tuple[AgentState, ...]:
        return tuple(AgentState(a.id, a.groups, a.status, a.cap, len(a.sessions))
                     for a in sorted(self._agents.values(), key=lambda a: a.id))

    # ---- internals ----------------------------------------------------------------------------------
    def _agent(self, agent_id: int) -> _Agent:
        try:
            return self._agents[agent_id]
        except KeyError:
            raise KeyError(f"unknown agent {agent_id}") from None

    def _fallen_back(self, q: QueuedSession) -> bool:
        return self.advisor_wait is not None and q.enqueued_at + self.advisor_wait <= self._now

    def _lane(self, q: QueuedSession) -> tuple[str, object]:
        if q.agent_id is not None and not self._fallen_back(q):
            return ("agent", q.agent_id)
        return ("group", q.group)

    def _pick(self, q: QueuedSession, room: set[int]) -> int | None:
        """The agent (among ``room``) that should take ``q``, updating the group's round-robin pointer."""
        if q.agent_id is not None and (q.agent_id in room or not self._fallen_back(q)):
            return q.agent_id if q.agent_id in room else None
        candidates = [self._agents[i] for i in room if q.group in self._agents[i].groups]
        if not candidates:
            return None
        least = min(len(a.sessions) for a in candidates)
        tied = sorted(a.id for a in candidates if len(a.sessions) == least)
        last = self._rr.get(q.group)
        chosen = next((i for i in tied if last is not None and i > last), tied[0])
        self._rr[q.group] = chosen
        return chosen

    def _hold(self, agent_id: int, session_id: int) -> None:
        self.changes += 1
        self._agents[agent_id].sessions.add(session_id)
        self._held[session_id] = agent_id

    def _push(self, q: QueuedSession) -> None:
        self.changes += 1
        self._queue[q.session_id] = q
        key = _key(q)
        bisect.insort(self._order, key)
        if q.agent_id is None:
            bisect.insort(self._group_order.setdefault(q.group, []), key)
        else:
            self._advised[q.session_id] = q

    def _pop(self, session_id: int) -> QueuedSession:
        self.changes += 1
        q = self._queue.pop(session_id)
        key = _key(q)
        del self._order[bisect.bisect_left(self._order, key)]
        if q.agent_id is None:
            group = self._group_order[q.group]
            del group[bisect.bisect_left(group, key)]
            if not group:
                del self._group_order[q.group]
        else:
            del self._advised[session_id]
        return q

    def _drain(self) -> list[Assignment]:
        """Assign waiting sessions in queue order while any agent has room.

        Each step takes the first waiting session some agent with room may take: the earliest head of
        the groups those agents are in, or an advisor session (there are few) whose advisor has room or
        which fell back to such a group. That is the session a walk of the whole queue in order would
        assign next (room only shrinks, so what it passed over stays untakeable), without the walk: a
        queue of 20,000 for one group and an idle agent of another cost 70 ms on every release."""
        out: list[Assignment] = []
        room = {a.id for a in self._agents.values() if a.has_room()}
        while room and self._queue:
            q = self._first_takeable(room)
            if q is None:
                break
            agent_id = self._pick(q, room)
            if agent_id is None:  # cannot happen (takeable means an agent with room may take it)
                break
            out.append(self._take(q, agent_id, room))
        return out

    def _take(self, q: QueuedSession, agent_id: int, room: set[int]) -> Assignment:
        """A waiting session to an agent in ``room`` (who leaves it when full)."""
        self._pop(q.session_id)
        self._hold(agent_id, q.session_id)
        if not self._agents[agent_id].has_room():
            room.discard(agent_id)
        return Assignment(q.session_id, agent_id, q.group)

    def _first_takeable(self, room: set[int]) -> QueuedSession | None:
        """The first waiting session (queue order) that an agent in ``room`` may take."""
        groups: set[str] = set()
        for agent_id in room:
            groups |= self._agents[agent_id].groups
        best: tuple[int, float, int] | None = None
        for group in groups:
            keys = self._group_order.get(group)
            if keys and (best is None or keys[0] < best):
                best = keys[0]
        for q in self._advised.values():
            if q.agent_id in room or (q.group in groups and self._fallen_back(q)):
                key = _key(q)
                if best is None or key < best:
                    best = key
        return None if best is None else self._queue[best[2]]


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise DispatchError(f"status must be one of {sorted(STATUSES)}, not {status!r}")


def _check_cap(cap: int) -> None:
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 0:
        raise DispatchError("cap must be an integer >= 0")
