"""What happens on the platforms' side of a conversation: a 微信客服 reply staff sent from the WeCom
app (``origin`` 5, sender ``staff``), a session a servicer ended there (``session_status_change``), an
Official Account follower who unsubscribed, a WeCom contact deleted (either side).

The hub's session follows them. The reply is the customer's answer: it shows in the holder's console
and counts as a reply (first reply, the unanswered clock, SLA alerts; not in any agent's average, the
hub cannot tell which of its users the servicer is). A session over on the platform is closed in the
hub, its holder's place freed (it stayed open or queued, was escalated as unanswered and handed on to
agents whose replies could not reach the customer any more).
"""
from __future__ import annotations

import json
from typing import Any

from ..privacy.views import mask_message

ENDED_ON_PLATFORM = 3  # session_status_change change_type (1 taken from the pool, 2 transferred, 4 re-entered)
ENDED_REASON = "ended_on_platform"


class PlatformSide:
    """Mixin of SessionService."""

    async def staff_message(self, message_row: Any) -> bool:
        """A staff member answered from another client; False when the conversation has no open session."""
        row = await self._open_session(message_row.conversation_id)
        if row is None:
            return False
        now = message_row.created_at
        values: dict[str, Any] = {"last_agent_at": now}
        if row.first_reply_at is None:
            values["first_reply_at"] = now
        await self._update(row.id, values, None, None)
        self.timers.cancel(f"unanswered:{row.id}")
        self._escalated.pop(row.id, None)
        if row.agent_id:
            from ..archive.history import message_json
            payload = {"session_id": row.id,
                       "message": mask_message(self.agents.get(row.agent_id), message_json(message_row))}
            await self.push.to_user(row.agent_id, "message.new", payload)
        await self._notify("agent_reply", row.id, agent_id=None, message_id=message_row.id, at=now)
        return True

    async def ended_on_platform(self, conversation_id: int, reason: str = ENDED_REASON) -> bool:
        """The conversation's session is over on the platform (a servicer ended it; the follower
        unsubscribed; the contact was deleted): closed here too, without telling the platform; False
        when none was open (an agent was handed a customer no reply could reach any more)."""
        row = await self._open_session(conversation_id)
        if row is None:
            return False
        await self.close(None, row.id, reason, tell_platform=False)
        return True


def platform_end(kind: str, data: Any) -> str | None:
    """The close reason when this message ends the conversation's session on the platform, else None."""
    if kind == "event.kf.session_status_change":
        return ENDED_REASON if change_type(data) == ENDED_ON_PLATFORM else None
    if kind == "event.unsubscribe":
        return "unsubscribed"  # an Official Account follower left: customer-service messages are refused
    if kind == "event.external_contact" and data.get("change_type") in ("del_external_contact", "del_follow_user"):
        return "contact_deleted"  # the customer deleted the staff member, or the staff member them
    return None


def change_type(data: Any) -> int:
    """A 微信客服 ``session_status_change`` event's change_type (0 when it cannot be read)."""
    try:
        return int(json.loads(data.get("detail_json") or "{}").get("change_type") or 0)
    except (ValueError, TypeError, AttributeError):
        return 0
