"""The dashboard's figures from the archive: today's (in the brand's timezone) per agent and per group,
and the brand's health (customer messages answered within 48 h, orders linked to a known customer).

Heavy scans are aggregate SQL (the 48 h share over days of messages; linked orders); today's figures read
the day's sessions and the day's customer/agent message times (bounded by one day, by the
``ix_messages_created`` index) and compute percentiles in Python (hub/supervisor/metrics.py), the same on
SQLite and PostgreSQL.
"""
from __future__ import annotations

import asyncio

import logging
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import and_, case, exists, func, or_, select

from ..clock import Clock
from ..db import Database
from ..models import BotOutcome, Message, ServiceSession, SessionEvent
from ..models.base import fixed
from ..models.orders import OrderRow
from .metrics import (Msg, SessionTimes, answered_share, bot_rates, breakdown, day_start, days_ago,
                      in_human_sessions, rate, reply_gaps)

log = logging.getLogger(__name__)
sessions_t = ServiceSession.__table__
messages = Message.__table__
messages_q = Message.__table__.alias("q")  # the customer messages a subquery over ``messages`` looks at
orders_t = OrderRow.__table__
events_t = SessionEvent.__table__
outcomes_t = BotOutcome.__table__

DEFAULT_TZ = "Asia/Shanghai"
ANSWER_WINDOW = 48 * 3600
ANSWERING_SENDERS = ("bot", "agent:%", "staff:%")  # a brand reply; queue notices ("system") are not answers


@dataclass(frozen=True)
class HealthWindow:
    days: float = 7.0
    answer_window: float = ANSWER_WINDOW


def _customer_message(t: Any) -> Any:
    return and_(t.c.direction == "in", t.c.sender == "customer", ~t.c.kind.like("event.%"))


def _brand_reply(t: Any) -> Any:
    return and_(t.c.direction == "out",
                or_(*[t.c.sender.like(p) if "%" in p else t.c.sender == p for p in ANSWERING_SENDERS]))


async def brand_timezone(settings: Any) -> str:
    """The brand's timezone (its day, and every time the pages show): the ``timezone`` setting, else the
    business hours' timezone, else Asia/Shanghai."""
    candidates = [await settings.get("timezone")]
    hours = await settings.get("business_hours")
    if isinstance(hours, dict):
        candidates.append(hours.get("timezone"))
    for tz in candidates:
        if isinstance(tz, str) and tz:
            try:
                ZoneInfo(tz)
                return tz
            except (ZoneInfoNotFoundError, ValueError):
                log.warning("unknown timezone %r in settings; using %s", tz, DEFAULT_TZ)
    return DEFAULT_TZ


class Stats:
    def __init__(self, db: Database, clock: Clock, settings: Any):
        self.db = db
        self.clock = clock
        self.settings = settings

    async def timezone(self) -> str:
        return await brand_timezone(self.settings)

    # -- today ----------------------------------------------------------------------------------
    async def today(self, now: float | None = None) -> dict[str, Any]:
        now = self.clock.now() if now is None else now
        tz = await self.timezone()
        start = day_start(now, tz)
        async with self.db.read_heavy() as conn:  # off the loop thread on SQLite
            rows = (await conn.execute(select(
                sessions_t.c.id, sessions_t.c.conversation_id, sessions_t.c.agent_id, sessions_t.c.group,
                sessions_t.c.created_at, sessions_t.c.handover_at, sessions_t.c.first_reply_at,
                sessions_t.c.closed_at, sessions_t.c.state, sessions_t.c.bot_started_at).where(
                or_(sessions_t.c.handover_at >= start, sessions_t.c.state != fixed("closed"),
                    sessions_t.c.closed_at >= start)))).all()
            msg_rows = (await conn.execute(
                select(messages.c.conversation_id, messages.c.created_at, messages.c.sender)
                .where(messages.c.created_at >= start).where(messages.c.created_at <= now)
                .where(or_(_customer_message(messages),
                           and_(messages.c.direction == "out", messages.c.sender.like("agent:%"))))
                .order_by(messages.c.conversation_id, messages.c.id))).all()
            periods = await _reopened_periods(conn, [r.id for r in rows])
            carried = await _unanswered_at_midnight(conn, sorted({r.conversation_id for r in rows
                                                                 if r.handover_at < start}), start)

        def compute() -> tuple[Any, dict[int, list[float]]]:
            windows: dict[int, list[tuple[float, float | None]]] = {}
            today_sessions, earlier = [], []
            for r in rows:
                windows.setdefault(r.conversation_id, []).extend(periods.get(r.id) or [(r.handover_at, r.closed_at)])
                times = SessionTimes(r.id, r.conversation_id, r.agent_id, r.group or "", r.created_at, r.handover_at,
                                     r.first_reply_at, r.closed_at, r.state, r.bot_started_at)
                # handed over before today (still open, or closed today): its replies today count for its group
                (today_sessions if r.handover_at >= start else earlier).append(times)
            day = sorted(list(carried) + list(msg_rows), key=lambda m: (m.conversation_id, m.created_at))
            msgs = in_human_sessions((Msg(m.conversation_id, m.created_at, m.sender) for m in day), windows)
            handovers: dict[int, list[float]] = {}
            for s in today_sessions:
                handovers.setdefault(s.conversation_id, []).append(s.handover_at)
            return breakdown(today_sessions, reply_gaps(msgs, windows), earlier), handovers

        # a walk over the day's messages (tens of thousands on a busy day): in a thread, so the event
        # loop keeps answering callbacks and pushing messages between its slices instead of stalling
        figures, handovers = await asyncio.to_thread(compute)
        return {"since": start, "until": now, "timezone": tz, **figures.as_json(),
                "bots": bot_rates(await self._bot_first_seen(start, now), handovers), "satisfaction": None}

    async def _bot_first_seen(self, since: float, until: float) -> dict[int, float]:
        """Conversation -> the bot's first decision in [since, until) (welcomes aside), as bots/analytics.py
        counts them; the handovers after it are today's sessions (no join over the session archive)."""
        async with self.db.read_heavy() as conn:  # off the loop thread on SQLite
            rows = (await conn.execute(
                select(outcomes_t.c.conversation_id, func.min(outcomes_t.c.at))
                .where(outcomes_t.c.at >= since).where(outcomes_t.c.at < until)
                .where(outcomes_t.c.outcome != "welcome").group_by(outcomes_t.c.conversation_id))).all()
        return {cid: first for cid, first in rows}

    # -- brand health ---------------------------------------------------------------------------
    async def health(self, now: float | None = None, window: HealthWindow = HealthWindow()) -> dict[str, Any]:
        now = self.clock.now() if now is None else now
        since = days_ago(now, window.days)
        m, r = messages.alias("m"), messages.alias("r")
        answered = exists(select(r.c.id).where(r.c.conversation_id == m.c.conversation_id).where(r.c.id > m.c.id)
                          .where(_brand_reply(r)).where(r.c.created_at <= m.c.created_at + window.answer_window))
        per_message = (select(m.c.created_at.label("at"), case((answered, 1), else_=0).label("ok"))
                       .where(_customer_message(m)).where(m.c.created_at >= since).where(m.c.created_at <= now)
                       .subquery())
        recent = per_message.c.at > now - window.answer_window
        async with self.db.read_heavy() as conn:  # off the loop thread on SQLite
            total, ok, pending = (await conn.execute(select(
                func.count(), func.coalesce(func.sum(per_message.c.ok), 0),
                func.coalesce(func.sum(case((and_(per_message.c.ok == 0, recent), 1), else_=0)), 0)))).one()
            orders, linked = (await conn.execute(select(func.count(), func.count(orders_t.c.customer_id))
                                                 .where(orders_t.c.created_at >= since))).one()
        share = answered_share(int(total), int(ok), int(pending))
        return {"since": since, "until": now, "days": window.days,
                "answered_48h": share.as_json(),
                "linked_orders": {"orders": int(orders), "linked": int(linked), "share": rate(int(linked), int(orders))}}


async def _reopened_periods(conn: Any, session_ids: list[int]) -> dict[int, list[tuple[float, float | None]]]:
    """Session -> its periods with humans [(handed over, closed or None)] for the sessions that were reopened:
    their row keeps only the last handover, the earlier periods are in their events."""
    events: list[Any] = []
    for i in range(0, len(session_ids), 500):
        chunk = session_ids[i:i + 500]
        reopened = select(events_t.c.session_id).where(events_t.c.session_id.in_(chunk)) \
            .where(events_t.c.kind == "reopened")
        events += (await conn.execute(
            select(events_t.c.session_id, events_t.c.kind, events_t.c.at)
            .where(events_t.c.session_id.in_(reopened)).where(events_t.c.kind.in_(("created", "reopened", "closed")))
            .order_by(events_t.c.session_id, events_t.c.at, events_t.c.id))).all()
    out: dict[int, list[tuple[float, float | None]]] = {}
    began: dict[int, float | None] = {}
    for e in events:
        if e.kind == "closed":
            if began.get(e.session_id) is not None:
                out.setdefault(e.session_id, []).append((began[e.session_id], e.at))
            began[e.session_id] = None
        else:
            began[e.session_id] = e.at
    for sid, at in began.items():
        if at is not None:
            out.setdefault(sid, []).append((at, None))
    return out


async def _unanswered_at_midnight(conn: Any, conversation_ids: list[int], start: float) -> list[Any]:
    """The customer messages of these conversations (sessions handed over before ``start``) that no agent
    had answered by ``start``: a question at 23:58 answered at 00:03 is a reply of today, and it was on
    no day's figures (today's read began at midnight and never saw the question)."""
    if not conversation_ids:
        return []
    answered = (select(func.max(messages.c.created_at)).where(
        messages.c.conversation_id == messages_q.c.conversation_id, messages.c.created_at < start,
        messages.c.direction == "out", messages.c.sender.like("agent:%")).scalar_subquery())
    rows = []
    for part in range(0, len(conversation_ids), 500):
        rows += (await conn.execute(
            select(messages_q.c.conversation_id, messages_q.c.created_at, messages_q.c.sender)
            .where(messages_q.c.conversation_id.in_(conversation_ids[part:part + 500]))
            .where(messages_q.c.created_at < start).where(messages_q.c.created_at >= start - 2 * 86400)
            .where(_customer_message(messages_q))
            .where(messages_q.c.created_at > func.coalesce(answered, 0.0)))).all()
    return rows
