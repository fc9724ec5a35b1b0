"""Pure SLA time arithmetic: deadlines that may count only business hours, and reply times paired
from a conversation's timeline (customer waiting -> agent reply), with the bot's time left out.

Nothing here reads the clock or the database: callers pass ``now`` and the events.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

from ..business_hours import BusinessHours, add_business_seconds, business_seconds_between


def deadline(start: float, seconds: float, hours: BusinessHours | None) -> float:
    """When ``seconds`` of (business, if ``hours`` is given) time have passed since ``start``;
    ``math.inf`` if business hours never open again."""
    if hours is None:
        return start + seconds
    return add_business_seconds(hours, start, seconds)


def elapsed(start: float, end: float, hours: BusinessHours | None) -> float:
    """Seconds (business seconds if ``hours``) between ``start`` and ``end``; 0 if end <= start."""
    if end <= start:
        return 0.0
    if hours is None:
        return end - start
    return business_seconds_between(hours, start, end)


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One point of a conversation's timeline, in time order.

    kind: customer (a customer message) | agent (an agent's reply; ``agent_id``) | bot (a bot answered)
    | handover (handed to humans: the wait for a person starts here) | transfer (a new holder: clocks restart)."""

    at: float
    kind: str
    agent_id: int | None = None
    message_id: int | None = None
    account_id: str = ""


@dataclass(frozen=True, slots=True)
class ReplySample:
    """An agent answered a customer who had been waiting since ``waited_from``."""

    agent_id: int
    account_id: str
    waited_from: float
    replied_at: float
    message_id: int | None = None
    waited_message_id: int | None = None  # the customer message the wait began with (None: the handover)

    @property
    def seconds(self) -> float:
        return self.replied_at - self.waited_from


def waiting_since(events: Iterable[TimelineEvent]) -> float | None:
    """When the customer began waiting for a person and is still waiting (None if answered)."""
    waiting: float | None = None
    for e in events:
        waiting = _step(waiting, e)
    return waiting


def _step(waiting: float | None, e: TimelineEvent) -> float | None:
    if e.kind == "customer":
        return waiting if waiting is not None else e.at
    if e.kind == "handover":
        return e.at  # the time spent with the bot is not the agents' response time
    if e.kind in ("bot", "agent"):
        return None
    return waiting


def reply_samples(events: Sequence[TimelineEvent]) -> list[ReplySample]:
    """Every agent reply that answered a waiting customer, with how long the customer waited
    (from their first unanswered message, or from the handover for the first reply)."""
    out: list[ReplySample] = []
    waiting: float | None = None
    waiting_msg: int | None = None
    for e in events:
        if e.kind == "agent" and waiting is not None and e.agent_id is not None:
            out.append(ReplySample(e.agent_id, e.account_id, waiting, e.at, e.message_id, waiting_msg))
        after = _step(waiting, e)
        if after != waiting or e.kind == "handover":
            waiting_msg = e.message_id if e.kind == "customer" else None
        waiting = after
    return out


def with_handovers(messages: Sequence[TimelineEvent], handovers: Sequence[TimelineEvent]) -> list[TimelineEvent]:
    """Merge handovers into messages given in archive order: a handover goes before the first message
    written after it (an agent's reply at the very same instant counts as after it)."""
    out: list[TimelineEvent] = []
    pending = sorted(handovers, key=lambda h: h.at)
    i = 0
    for m in messages:
        while i < len(pending) and (m.at > pending[i].at or (m.kind == "agent" and m.at >= pending[i].at)):
            out.append(pending[i])
            i += 1
        out.append(m)
    out += pending[i:]
    return out


def rolling_average(samples: Sequence[ReplySample], window: int, hours: BusinessHours | None = None,
                    min_samples: int = 1) -> float | None:
    """The mean reply time over the last ``window`` samples (business seconds if ``hours``);
    None with fewer than ``min_samples``."""
    recent = list(samples)[-window:] if window > 0 else list(samples)
    if not recent or len(recent) < max(1, min_samples):
        return None
    return sum(elapsed(s.waited_from, s.replied_at, hours) for s in recent) / len(recent)


def is_finite(t: float) -> bool:
    return not math.isinf(t) and not math.isnan(t)
