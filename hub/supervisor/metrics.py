"""Pure figures for the supervisor dashboard: percentiles, averages, rates, reply gaps, the local day.

No I/O and no clock reads: callers pass rows and ``now``. Durations are seconds; a figure with no data
is ``None`` (the page shows "—"), never 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

HEALTHY_48H_SHARE = 0.9  # operators call a private-domain desk healthy above this


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0..100) by linear interpolation between closest ranks; None if empty."""
    if not 0 <= p <= 100:
        raise ValueError("p must be within 0..100")
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * p / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def rate(part: int, whole: int) -> float | None:
    """part / whole rounded to 4 places; None when there is nothing to divide."""
    return round(part / whole, 4) if whole else None


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)


def day_start(now: float, tz: str) -> float:
    """Epoch seconds of local midnight (in ``tz``) of the day containing ``now``."""
    zone = ZoneInfo(tz)
    local = datetime.fromtimestamp(now, zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone).timestamp()


def days_ago(now: float, days: float) -> float:
    return now - timedelta(days=days).total_seconds()


@dataclass(frozen=True)
class Msg:
    """One archived message as the reply-time figures need it (ordered by id within a conversation)."""

    conversation_id: int
    at: float
    sender: str  # customer | agent:<id> | bot | system | staff:<userid>


@dataclass(frozen=True)
class ReplyGap:
    """A customer message and the agent reply that answered it."""

    conversation_id: int
    asked_at: float
    agent_id: int
    seconds: float


def reply_gaps(messages: Iterable[Msg],
               windows: dict[int, list[tuple[float, float | None]]] | None = None) -> list[ReplyGap]:
    """For each customer message, the time until the next agent reply in its conversation.

    ``messages`` must be ordered by conversation then time. Customer messages with no agent reply
    after them (the bot answered, or nobody yet) give no gap, nor (with ``windows``, as for
    ``in_human_sessions``) those whose session closed before the reply: a later session's reply is no answer."""
    out: list[ReplyGap] = []
    waiting: list[Msg] = []
    current: int | None = None
    for m in messages:
        if m.conversation_id != current:
            current, waiting = m.conversation_id, []
        if m.sender == "customer":
            waiting.append(m)
        elif m.sender.startswith("agent:"):
            agent = _agent_id(m.sender)
            for asked in waiting:
                if windows is not None and _closed_before(windows.get(m.conversation_id, ()), asked.at, m.at):
                    continue
                out.append(ReplyGap(m.conversation_id, asked.at, agent, max(0.0, m.at - asked.at)))
            waiting = []
    return out


def _closed_before(windows: Iterable[tuple[float, float | None]], asked: float, replied: float) -> bool:
    """The session(s) a question was asked in had all closed before the reply."""
    ends = [end for start, end in windows if start <= asked and (end is None or asked <= end)]
    return bool(ends) and all(end is not None and end < replied for end in ends)


def in_human_sessions(messages: Iterable[Msg], windows: dict[int, list[tuple[float, float | None]]]) -> list[Msg]:
    """Keep agent messages, and customer messages written while their conversation was with humans
    (``windows``: conversation -> [(handover_at, closed_at or None)]): a question the bot handled hours
    before a handover is not an agent's reply time."""
    out = []
    for m in messages:
        if m.sender != "customer" or any(start <= m.at and (end is None or m.at <= end)
                                         for start, end in windows.get(m.conversation_id, ())):
            out.append(m)
    return out


def _agent_id(sender: str) -> int:
    try:
        return int(sender.split(":", 1)[1])
    except (IndexError, ValueError):
        return 0


@dataclass(frozen=True)
class SessionTimes:
    """One service session handed to humans in the period."""

    id: int
    conversation_id: int
    agent_id: int | None
    group: str
    created_at: float  # the customer's first message of the session (bot time starts)
    handover_at: float  # handed to humans (first-response time starts)
    first_reply_at: float | None
    closed_at: float | None
    state: str
    bot_started_at: float | None = None  # the customer's first message to the bot before the handover

    @property
    def first_response(self) -> float | None:
        return None if self.first_reply_at is None else max(0.0, self.first_reply_at - self.handover_at)

    @property
    def bot_time(self) -> float:
        started = self.bot_started_at if self.bot_started_at is not None else self.created_at
        return max(0.0, self.handover_at - started)


@dataclass
class Figures:
    """The figures of one slice (everyone, one agent, one group)."""

    sessions: int = 0
    closed: int = 0
    first_responses: list[float] = field(default_factory=list)
    bot_times: list[float] = field(default_factory=list)
    reply_times: list[float] = field(default_factory=list)
    unanswered: int = 0  # handed over, no first reply yet

    def add_session(self, s: SessionTimes) -> None:
        self.sessions += 1
        self.closed += s.state == "closed"
        self.bot_times.append(s.bot_time)
        if s.first_response is None:
            self.unanswered += s.state != "closed"
        else:
            self.first_responses.append(s.first_response)

    def as_json(self) -> dict[str, float | int | None]:
        return {
            "sessions": self.sessions, "closed": self.closed, "awaiting_first_reply": self.unanswered,
            "first_response_p50": rounded(percentile(self.first_responses, 50)),
            "first_response_p90": rounded(percentile(self.first_responses, 90)),
            "first_responses": len(self.first_responses),
            "bot_time_avg": rounded(mean(self.bot_times)),
            "bot_time_p50": rounded(percentile(self.bot_times, 50)),
            "avg_reply": rounded(mean(self.reply_times)),
            "replies": len(self.reply_times),
        }


@dataclass
class Breakdown:
    """Figures for everyone, per agent and per group."""

    total: Figures = field(default_factory=Figures)
    agents: dict[int, Figures] = field(default_factory=dict)
    groups: dict[str, Figures] = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"total": self.total.as_json(),
                "agents": {str(k): v.as_json() for k, v in sorted(self.agents.items())},
                "groups": {k: v.as_json() for k, v in sorted(self.groups.items())}}


def breakdown(sessions: Iterable[SessionTimes], gaps: Iterable[ReplyGap],
              earlier: Iterable[SessionTimes] = ()) -> Breakdown:
    """Session figures per agent (who holds / held the session) and group; reply times per replying agent
    and per the group of the session the question was asked in (``earlier``: sessions not counted in the
    period, handed over before it, whose questions may be answered in it)."""
    out = Breakdown()
    by_conversation: dict[int, list[SessionTimes]] = {}
    for s in earlier:
        by_conversation.setdefault(s.conversation_id, []).append(s)
    for s in sessions:
        out.total.add_session(s)
        out.groups.setdefault(s.group, Figures()).add_session(s)
        if s.agent_id is not None:
            out.agents.setdefault(s.agent_id, Figures()).add_session(s)
        by_conversation.setdefault(s.conversation_id, []).append(s)
    for g in gaps:
        out.total.reply_times.append(g.seconds)
        out.agents.setdefault(g.agent_id, Figures()).reply_times.append(g.seconds)
        session = _session_at(by_conversation.get(g.conversation_id, ()), g.asked_at)
        if session is not None:
            out.groups.setdefault(session.group, Figures()).reply_times.append(g.seconds)
    return out


def _session_at(sessions: Iterable[SessionTimes], at: float) -> SessionTimes | None:
    """The session of a conversation a message at ``at`` belongs to (the latest one begun by then)."""
    best = None
    for s in sessions:
        if s.created_at <= at and (best is None or s.created_at > best.created_at):
            best = s
    return best


@dataclass(frozen=True)
class AnsweredShare:
    """Customer messages answered within the window (48 h) among those that can be judged."""

    answered: int
    judged: int  # answered + those whose window has passed without an answer
    pending: int  # unanswered but still inside their window

    @property
    def share(self) -> float | None:
        return rate(self.answered, self.judged)

    def as_json(self, healthy: float = HEALTHY_48H_SHARE) -> dict:
        share = self.share
        return {"answered": self.answered, "judged": self.judged, "pending": self.pending, "share": share,
                "healthy": None if share is None else share >= healthy, "threshold": healthy}


def answered_share(total: int, answered: int, pending: int) -> AnsweredShare:
    """From the three counts the SQL gives (every customer message, those answered in time, those
    unanswered still inside the window)."""
    if min(total, answered, pending) < 0 or answered + pending > total:
        raise ValueError("inconsistent counts")
    return AnsweredShare(answered, total - pending, pending)


def bot_rates(first_seen: dict[int, float], handovers: dict[int, list[float]]) -> dict[str, float | int | None]:
    """Conversations the bot saw (``first_seen``: conversation -> its first bot decision in the period) and
    how many went to a human after it (a handover at or after that time): the rest the bot resolved."""
    handed = sum(1 for cid, first in first_seen.items() if any(h >= first for h in handovers.get(cid, ())))
    seen = len(first_seen)
    return {"conversations": seen, "resolved_by_bot": seen - handed, "handed_over": handed,
            "bot_resolution_rate": rate(seen - handed, seen), "handover_rate": rate(handed, seen)}


def waiting_seconds(since: float | None, now: float) -> float | None:
    return None if since is None else max(0.0, now - since)
