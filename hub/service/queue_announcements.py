"""Queue announcements: the customer's place in the queue (the ``queue_text`` message), and
``queue.changed`` to supervisors and to each skill group's room, coalesced to one push every
``QUEUE_PUSH_EVERY`` seconds.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from ..outbound.queue import OutboundRequest
from ..push import SUPERVISORS, group_room
from ..settings import DEFAULTS

log = logging.getLogger(__name__)

QUEUE_PUSH_EVERY = 0.3  # seconds
QUEUE_HEAD = 100  # waiting sessions listed in a supervisor's queue.changed (the total is given too)
TEXT_ERRORS = (KeyError, IndexError, ValueError, AttributeError, TypeError)  # str.format's, on a bad template


# the default text for the customer next in line ("您前面还有 0 位" read as if something were wrong)
NEXT_TEXT = "您是下一位，请稍候，客服马上为您服务。"


def queue_notice(template: str, position: int) -> str:
    """The ``queue_text`` message for the customer at ``position`` (1: next): ``{n}`` is the number
    of customers ahead, ``{position}`` their place. PUT /api/settings checks a new text with this."""
    if position == 1 and template == DEFAULTS["queue_text"]:
        return NEXT_TEXT
    return template.format(n=position - 1, position=position)


class QueueAnnouncements:
    """Mixed into SessionService (which provides ``settings``, ``outbound``, ``push``, ``dispatcher``,
    ``agents`` and ``_queue_push``)."""

    settings: Any
    outbound: Any
    push: Any
    dispatcher: Any
    agents: Any
    _queue_push: Any

    async def _tell_queue_position(self, row: Any) -> None:
        if not await self.settings.get("queue_notify", row.account_id):
            return
        position = self.dispatcher.queue_position(row.id)
        if not position:
            return
        template = str(await self.settings.get("queue_text", row.account_id))
        try:
            text = queue_notice(template, position)
        except TEXT_ERRORS as exc:  # stored before the settings API checked it: the handover goes on
            log.warning("queue_text %r cannot be formatted (%s); the default is sent", template, exc)
            text = queue_notice(DEFAULTS["queue_text"], position)
        await self.outbound.enqueue(OutboundRequest(row.account_id, row.conversation_id, text, "system",
                                                    dedup_key=f"queue:{row.id}:{row.handover_at}"))

    async def _queue_changed(self) -> None:
        """Announce the queue, at most every ``QUEUE_PUSH_EVERY`` seconds (a burst of new sessions
        makes one announcement, not one per session)."""
        if self._queue_push is None:
            self._queue_push = asyncio.get_running_loop().call_later(
                QUEUE_PUSH_EVERY, lambda: asyncio.ensure_future(self._push_queue()))

    async def _push_queue(self) -> None:
        self._queue_push = None
        # counted as the queue changes: a Double 11 queue of thousands is not walked every 0.3 s
        total, per_group = self.dispatcher.queue_counts()
        head = [{"session_id": q.session_id, "group": q.group, "priority": q.priority, "enqueued_at": q.enqueued_at,
                 "advisor_id": q.agent_id} for q in self.dispatcher.queue_head(QUEUE_HEAD)]
        agents = [{"id": a.id, "status": a.status, "cap": a.cap, "load": a.load, "groups": sorted(a.groups)}
                  for a in self.dispatcher.agents()]
        await self.push.to_room(SUPERVISORS, "queue.changed",
                                {"queue": head, "total": total, "per_group": per_group, "agents": agents,
                                 "oldest_enqueued_at": self.dispatcher.oldest_enqueued()})
        groups = set(per_group) | set().union(set(), *(a.groups for a in self.agents.values()))
        for group in groups:
            await self.push.to_room(group_room(group), "queue.changed", {"group": group, "waiting": per_group.get(group, 0)})
