"""The session lifecycle: handover -> queued -> assigned -> active -> closed, transfer, reopen,
requeue (agent offline, not accepted in time), reassign or escalate when a customer is left
unanswered. The only place that changes sessions; Socket.IO handlers, the pipeline and the API
call it. The in-memory ``Dispatcher`` (hub/routing/dispatch.py) holds agent load and the queue,
rebuilt from the database at start; every assignment is also written with a conditional UPDATE
so it happens once. Mixins of SessionService: agent_actions.py (accept, reply, transfer, close, agent
status and capacity), reading.py (reads), dispatcher_sync.py (rebuilding the
dispatcher from the database), session_timers.py (accept and unanswered timers, reassign),
queue_announcements.py (queue position, ``queue.changed``).
"""
from __future__ import annotations

import asyncio
import json
import logging
from types import SimpleNamespace
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable

from sqlalchemy import bindparam, func, select, update

from ..clock import Clock
from ..db import Database, retry_busy
from ..db_raw import RawSelect
from ..errors import HubError, not_found
from ..models import Conversation, Message, RoutingRule, ServiceSession, SessionEvent, User
from ..models.base import by_conversation, fixed
from ..outbound.queue import Outbound
from ..privacy.views import mask_bundle, mask_message
from .reading import can_read_conversation
from ..push import Push
from ..routing.dispatch import Assignment, Dispatcher, QueuedSession
from ..scale.routing_guard import agent_has_room
from ..tasks import cancel_and_wait
from ..routing.rules import Decision, RoutingInput, decide, parse_rule
from ..settings import Settings
from ..users import UserInfo
from .agent_actions import AgentActions
from .delivery import DeliveryStatus
from .dispatcher_sync import DispatcherSync
from .floor import queued_session
from .platform_side import PlatformSide
from .queue_announcements import QueueAnnouncements
from .reading import SessionReading
from .session_timers import SessionTimers
from .timers import Timers
from .views import ProfileProvider, basic_profile, session_bundle, session_json

log = logging.getLogger(__name__)

sessions_t = ServiceSession.__table__
users_t = User.__table__
events_t = SessionEvent.__table__
conversations = Conversation.__table__
messages = Message.__table__
rules_t = RoutingRule.__table__

# hot-path statements built once (construction and cache-key work is most of a short query's cost)
OPEN_SESSION_Q = select(sessions_t).where(sessions_t.c.conversation_id == bindparam("cid")).where(
    sessions_t.c.state != fixed("closed"))  # open (not IN: its expanding bind cost more than the query)
GET_SESSION_Q = select(sessions_t).where(sessions_t.c.id == bindparam("sid"))
# ... and on PostgreSQL run on the asyncpg connection itself (hub/db_raw.py): each customer message
# looks its session up twice, and SQLAlchemy's execution added 50-100 µs of CPU to each (bench/pg_read_cost.py)
OPEN_SESSION_PG = RawSelect(OPEN_SESSION_Q, "SessionRow")
GET_SESSION_PG = RawSelect(GET_SESSION_Q, "SessionRow")
KF_STATE = {"bot": 1, "queued": 2, "human": 3, "closed": 4}
ASKED_MESSAGES = 5  # the customer's latest texts of a contact that route it and head its session
ASKED_WITHIN = 2 * 3600.0  # seconds back those texts may go


@dataclass(frozen=True)
class SessionChange:
    """What happened to a session, told to ``SessionService.observers`` after it committed.

    kind: handover (data: reopened) | assigned | accepted | customer_message | agent_reply | transferred |
    requeued | closed."""

    kind: str
    session_id: int
    at: float
    data: dict[str, Any]


@dataclass(frozen=True)
class Handover:
    """Why and with what a conversation goes to a human (from the bots)."""

    conversation_id: int
    account_id: str
    first_message: str
    suggestions: list[dict[str, Any]]
    channel_code: str | None = None
    tags: frozenset[str] = frozenset()
    vip_level: int = 0
    in_business_hours: bool = True
    advisor_id: int | None = None
    group: str | None = None
    customer_id: int | None = None
    known_closed: bool = False  # the caller just found no open session (no second look needed)


class SessionService(AgentActions, SessionReading, DispatcherSync, SessionTimers, QueueAnnouncements,
                     DeliveryStatus, PlatformSide):
    def __init__(self, db: Database, clock: Clock, push: Push, outbound: Outbound, settings: Settings,
                 timers: Timers, profile: ProfileProvider = basic_profile, kf_state: Any = None):
        self.db = db
        self.clock = clock
        self._channels: dict[int, str] = {}  # conversation -> channel (see channel_of)
        self.push = push
        self.outbound = outbound
        self.settings = settings
        self.timers = timers
        self.profile = profile
        self.kf_state = kf_state  # async (conversation_row, state, servicer) -> None, for 微信客服
        self.tag_customer: Any = None  # async (customer_id, [tags]) -> None: a routing rule's add_tags
        self.dispatcher = Dispatcher()
        self.rules: list[Any] = []
        self.agents: dict[int, UserInfo] = {}
        self._queue_push: asyncio.TimerHandle | None = None
        # several processes (PostgreSQL): assignments are guarded in the database, the dispatcher resyncs
        self.shared = db.dialect == "postgresql"
        self._resync_task: asyncio.Task | None = None
        self._resync_wanted = False
        self._lapsing: set[int] = set()  # sessions whose unanswered timer is being handled right now
        self._escalated: dict[int, float] = {}  # session -> when its customer's wait was last escalated
        # after-commit listeners: async (SessionChange) -> None (SLA clocks, quality checks, dashboards)
        self.observers: list[Callable[[SessionChange], Awaitable[None]]] = []

    # -- start-up: rebuild the in-memory state from the database --------------------------------
    async def load(self) -> None:
        await self.load_rules()
        await self.resync()
        if self.shared and self._resync_task is None:
            self._resync_task = asyncio.create_task(self._resync_loop(), name="routing-resync")

    async def stop(self) -> None:
        if self._resync_task is not None:
            await cancel_and_wait(self._resync_task)
            self._resync_task = None

    async def load_rules(self) -> None:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(rules_t).order_by(rules_t.c.position, rules_t.c.id))).all()
        parsed = []
        for r in rows:
            try:
                parsed.append(parse_rule({**json.loads(r.data), "enabled": r.enabled, "name": r.name}, r.id, r.position))
            except ValueError as exc:  # validated on save; an old row that no longer parses is skipped
                log.warning("routing rule %s skipped: %s", r.id, exc)
        self.rules = parsed

    def _queued(self, row: Any) -> QueuedSession:
        return queued_session(row)

    # -- handover from the bots -----------------------------------------------------------------
    async def route(self, h: Handover) -> dict[str, Any]:
        """Open (or join) the conversation's session and route it. Returns the session json."""
        existing = None if h.known_closed else await self._open_session(h.conversation_id)
        if existing is not None:
            return session_json(existing)
        h = replace(h, first_message=await self._asked(h.conversation_id, h.first_message))
        decision = decide(self.rules, RoutingInput(
            account_id=h.account_id, platform=await self.channel_of(h.conversation_id), channel=h.channel_code,
            tags=h.tags, vip_level=h.vip_level, first_message=h.first_message,
            in_business_hours=h.in_business_hours), await self.settings.get("default_group"))
        now = self.clock.now()
        group = h.group or decision.group
        advisor = h.advisor_id or decision.agent_id

        was_reopened = False

        async def write() -> int | None:
            nonlocal was_reopened
            async with self.db.write() as conn:
                reopened = await self._reopen_candidate(conn, h.conversation_id, now)
                was_reopened = reopened is not None
                bot_started = await self._bot_started(conn, h.conversation_id, now)
                if reopened is not None:
                    await conn.execute(update(sessions_t).where(sessions_t.c.id == reopened.id).values(
                        state="queued", agent_id=None, closed_at=None, close_reason=None, handover_at=now,
                        assigned_at=None, accepted_at=None, first_reply_at=None, last_customer_at=now,
                        advisor_id=advisor, group=group, priority=decision.priority, bot_started_at=bot_started,
                        # what the customer asks now (routed by it), not the previous contact's question
                        vip_level=h.vip_level, first_message=h.first_message[:500],
                        suggestions=json.dumps(h.suggestions, ensure_ascii=False)))
                    await self._event(conn, reopened.id, "reopened", "customer", {"previous_agent": reopened.agent_id})
                    return reopened.id
                res = await conn.execute(sessions_t.insert().values(
                    conversation_id=h.conversation_id, account_id=h.account_id, state="queued", group=group,
                    priority=decision.priority, advisor_id=advisor, vip_level=h.vip_level,
                    first_message=h.first_message[:500], suggestions=json.dumps(h.suggestions, ensure_ascii=False),
                    created_at=now, handover_at=now, last_customer_at=now, bot_started_at=bot_started))
                sid = res.inserted_primary_key[0]
                await self._event(conn, sid, "created", "bot", {"group": group, "rule": decision.matched_rule_id,
                                                                "trace": list(decision.trace)})
                return sid

        try:
            session_id = await retry_busy(write)
        except Exception as exc:  # the partial unique index: another worker opened it first
            if "uq_open_session" in str(exc) or "UNIQUE" in str(exc).upper():
                row = await self._open_session(h.conversation_id)
                if row is not None:
                    return session_json(row)
            raise
        row = await self._get(session_id)
        if decision.add_tags and h.customer_id and self.tag_customer is not None:
            await self.tag_customer(h.customer_id, list(decision.add_tags))
        await self._kf(row, "queued")
        await self._notify("handover", session_id, reopened=was_reopened)
        assignment = self._enqueue(self._queued(row))
        await self._apply(assignment)
        if assignment is None:
            await self._tell_queue_position(row)
        await self._queue_changed()
        return session_json(await self._get(session_id) if assignment is not None else row)

    async def _asked(self, conversation_id: int, handover_text: str) -> str:
        """What the customer asked in this contact, for the routing rules and the agent's first look: their
        texts since the conversation's last session closed, oldest first ("怎么申请退货？ / 转人工"). The
        handover message alone ("转人工", after the bot had answered the question) went to the default
        group, and the agent and the dashboard saw "转人工" as the customer's question."""
        async with self.db.read() as conn:
            closed = (await conn.execute(select(func.max(sessions_t.c.closed_at)).where(
                sessions_t.c.conversation_id == conversation_id))).scalar() or 0.0
            closed = max(closed, self.clock.now() - ASKED_WITHIN)  # (not a first pull's days-old history)
            texts = (await conn.execute(select(messages.c.text).where(
                (messages.c.conversation_id == conversation_id) & (messages.c.direction == "in")
                & (messages.c.sender == "customer") & (messages.c.kind == "text") & (messages.c.created_at > closed)
                & messages.c.recalled_at.is_(None)).order_by(messages.c.id.desc()).limit(ASKED_MESSAGES))).scalars().all()
        asked = [t.strip() for t in reversed(texts) if t and t.strip()]
        if handover_text.strip() and (not asked or asked[-1] != handover_text.strip()):
            asked.append(handover_text.strip())  # (an image or a card: its kind)
        return " / ".join(dict.fromkeys(asked))[:500] or handover_text

    async def _bot_started(self, conn: Any, conversation_id: int, now: float) -> float:
        """When the customer began this contact with the bot: their first message since the
        conversation's last session closed (the bot time a supervisor sees ends at the handover)."""
        closed = (await conn.execute(select(func.max(sessions_t.c.closed_at)).where(
            sessions_t.c.conversation_id == conversation_id))).scalar() or 0.0
        first = (await conn.execute(select(func.min(by_conversation(messages.c.created_at))).where(
            (messages.c.conversation_id == conversation_id) & (messages.c.direction == "in")
            & (messages.c.sender == "customer") & (by_conversation(messages.c.created_at) > closed)))).scalar()
        return min(first, now) if first is not None else now

    async def _reopen_candidate(self, conn: Any, conversation_id: int, now: float) -> Any:
        window = float(await self.settings.get("reopen_window") or 0)
        row = (await conn.execute(select(sessions_t).where(sessions_t.c.conversation_id == conversation_id)
                                  .where(sessions_t.c.state == fixed("closed")).order_by(sessions_t.c.id.desc())
                                  .limit(1))).first()
        if row is not None and row.closed_at and now - row.closed_at <= window:
            return row
        return None

    # -- inbound customer messages on an open session ------------------------------------------
    async def open_session_for(self, ctx_state: dict[str, Any], conversation_id: int) -> Any:
        """The conversation's open session, looked up once per pipeline job (cached in its state)."""
        if "open_session" not in ctx_state:
            ctx_state["open_session"] = await self._open_session(conversation_id)
        return ctx_state["open_session"]

    async def customer_message(self, conversation_id: int, message_row: Any, row: Any = None) -> bool:
        """A customer wrote in a conversation: deliver to its session's agent. False if no session.
        A ``row`` read earlier in the job (before the bots ran) is read again: an agent who closed the
        session meanwhile got the message, and nobody else (no session took it)."""
        if row is not None:
            row = await self._get(row.id)
            if row is not None and row.state == "closed":
                row = None
        row = row if row is not None else await self._open_session(conversation_id)
        if row is None:
            return False
        now = message_row.created_at  # the archive writer already set the session's last_customer_at
        from ..archive.history import message_json
        if row.agent_id:
            payload = {"session_id": row.id,
                       "message": mask_message(self.agents.get(row.agent_id), message_json(message_row))}
            await self.push.to_user(row.agent_id, "message.new", payload)
            await self._arm_unanswered_timer(SimpleNamespace(**{**row._mapping, "last_customer_at": now}))
        await self._notify("customer_message", row.id, message_id=message_row.id, at=now)
        return True

    # -- internals ------------------------------------------------------------------------------
    def _enqueue(self, q: QueuedSession) -> Assignment | None:
        """Queue (or assign at once); with several processes a resync that ran meanwhile may already
        know the session from the database: then it is left as the resync placed it."""
        if self.shared and self.dispatcher.knows(q.session_id):
            return None
        assignment = self.dispatcher.enqueue(q)
        if assignment is None:
            self._arm_advisor_fallback(q)
        return assignment

    async def _apply_all(self, assignments: list[Assignment]) -> None:
        for a in assignments:
            await self._apply(a)

    async def _apply(self, assignment: Assignment | None) -> None:
        """Persist an assignment the dispatcher made and tell the agent."""
        if assignment is None:
            return
        now = self.clock.now()

        async def write() -> bool:
            async with self.db.write() as conn:
                if self.shared and not assignment.forced and not await agent_has_room(conn, assignment.agent_id):
                    return False
                # not to an agent gone offline since the pick (their requeue read the sessions before
                # this one was theirs, and it waited for them until the accept timeout)
                present = select(users_t.c.id).where(users_t.c.id == assignment.agent_id,
                                                     users_t.c.status != fixed("offline")).exists()
                res = await conn.execute(update(sessions_t).where(sessions_t.c.id == assignment.session_id)
                                         .where(sessions_t.c.state == fixed("queued")).where(present)
                                         .values(state="assigned", agent_id=assignment.agent_id, assigned_at=now))
                if res.rowcount != 1:
                    return False
                await self._event(conn, assignment.session_id, "assigned", "router", {"agent_id": assignment.agent_id})
                return True

        if not await retry_busy(write):
            log.warning("assignment of session %s to %s lost a race; releasing", assignment.session_id,
                        assignment.agent_id)
            self.dispatcher.release(assignment.agent_id, assignment.session_id)
            if self.shared:
                self._resync_soon()  # another process changed that agent or session
            return
        self._arm_accept_timer(assignment.session_id, now)
        await self._notify("assigned", assignment.session_id, agent_id=assignment.agent_id)
        bundle = mask_bundle(self.agents.get(assignment.agent_id),
                             await session_bundle(self.db, self.profile, assignment.session_id))
        await self.push.to_user(assignment.agent_id, "session.new", bundle)
        await self._arm_unanswered_timer(await self._get(assignment.session_id))

    async def _kf(self, row: Any, state: str, user: UserInfo | None = None) -> None:
        if self.kf_state is None:
            return
        try:
            await self.kf_state(row, KF_STATE[state], user)
        except Exception as exc:  # noqa: BLE001 - the platform's view is best effort; the hub's is the truth
            log.warning("kf service_state for session %s -> %s failed: %s", row.id, state, exc)

    async def channel_of(self, conversation_id: int) -> str:
        """The conversation's channel (wecom, oa, kf): it never changes, so it is remembered."""
        channel = self._channels.get(conversation_id)
        if channel is None:
            async with self.db.read() as conn:
                channel = (await conn.execute(select(conversations.c.channel).where(
                    conversations.c.id == conversation_id))).scalar() or ""
            if len(self._channels) > 100_000:
                self._channels.clear()
            self._channels[conversation_id] = channel
        return channel

    def forget_conversations(self) -> None:
        """After conversations were deleted (erasure): their ids may come back."""
        self._channels.clear()

    async def _open_session(self, conversation_id: int) -> Any:
        async with self.db.read() as conn:
            if self.db.dialect == "postgresql":
                return await OPEN_SESSION_PG.first(conn, cid=conversation_id)
            return (await conn.execute(OPEN_SESSION_Q, {"cid": conversation_id})).first()

    async def _get(self, session_id: int) -> Any:
        async with self.db.read() as conn:
            if self.db.dialect == "postgresql":
                return await GET_SESSION_PG.first(conn, sid=session_id)
            return (await conn.execute(GET_SESSION_Q, {"sid": session_id})).first()

    async def check_readable(self, user: UserInfo, session_id: int) -> None:
        """403 unless the user may read the session's conversation (theirs, their groups', or a supervisor)."""
        row = await self._get(session_id)
        if row is None:
            raise not_found("unknown_session", f"no session {session_id}")
        if not await can_read_conversation(self.db, user, row.conversation_id):
            raise HubError(403, "forbidden", "this session is not yours")

    async def _owned(self, user: UserInfo, session_id: int, read: bool = False) -> Any:
        row = await self._get(session_id)
        if row is None:
            raise not_found("unknown_session", f"no session {session_id}")
        if row.agent_id != user.id and not user.is_supervisor:
            raise HubError(403, "forbidden", "this session is not yours")
        return row

    async def _update(self, session_id: int, values: dict[str, Any], event: str | None, user: UserInfo | None,
                      data: dict[str, Any] | None = None) -> None:
        async def write() -> None:
            async with self.db.write() as conn:
                await conn.execute(update(sessions_t).where(sessions_t.c.id == session_id).values(**values))
                if event:
                    await self._event(conn, session_id, event, f"agent:{user.id}" if user else "system", data or {})

        await retry_busy(write)

    async def _change(self, row: Any, values: dict[str, Any], event: str, user: UserInfo | None,
                      data: dict[str, Any] | None = None) -> bool:
        """``_update`` only while the session is as ``row`` read it (its state and holder): an action
        racing another (a close and a transfer, an accept and the accept timer) must not write over it.
        False, and nothing written, when it changed meanwhile."""
        async def write() -> bool:
            async with self.db.write() as conn:
                holder = (sessions_t.c.agent_id.is_(None) if row.agent_id is None
                          else sessions_t.c.agent_id == row.agent_id)
                res = await conn.execute(update(sessions_t).where(sessions_t.c.id == row.id)
                                         .where(sessions_t.c.state == row.state).where(holder).values(**values))
                if res.rowcount != 1:
                    return False
                await self._event(conn, row.id, event, f"agent:{user.id}" if user else "system", data or {})
                return True

        return await retry_busy(write)

    async def _take_back(self, row: Any, states: tuple[str, ...], event: str, data: dict[str, Any]) -> bool:
        """Queue the session again, taking it from ``row.agent_id``, only if it is still in one of
        ``states`` with that agent (a timer read it a moment ago: the agent may have accepted,
        replied or closed since). False, and nothing written, when it changed meanwhile."""
        async def write() -> bool:
            async with self.db.write() as conn:
                res = await conn.execute(update(sessions_t).where(sessions_t.c.id == row.id)
                                         .where(sessions_t.c.state.in_(states))
                                         .where(sessions_t.c.agent_id == row.agent_id)
                                         .values(state="queued", agent_id=None, assigned_at=None, accepted_at=None))
                if res.rowcount != 1:
                    return False
                await self._event(conn, row.id, event, "system", data)
                return True

        return await retry_busy(write)

    async def _notify(self, kind: str, session_id: int, **data: Any) -> None:
        """Tell the observers what just committed; one failing observer never fails the action."""
        if not self.observers:
            return
        change = SessionChange(kind, session_id, self.clock.now(), data)
        for observer in list(self.observers):
            try:
                await observer(change)
            except Exception:  # noqa: BLE001
                log.exception("session observer %r failed on %s", observer, kind)

    async def _event(self, conn: Any, session_id: int, kind: str, actor: str, data: dict[str, Any]) -> None:
        await conn.execute(events_t.insert().values(session_id=session_id, kind=kind, actor=actor,
                                                    data=json.dumps(data, ensure_ascii=False), at=self.clock.now()))


__all__ = ["Decision", "Handover", "SessionChange", "SessionService"]
