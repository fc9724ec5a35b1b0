"""What an agent's console is sent about a session: the session, the customer, recent history."""
from __future__ import annotations

import json
from typing import Any, Awaitable, Callable

from sqlalchemy import select

from ..archive.history import message_json
from ..db import Database
from ..models import Conversation, Message, ServiceSession, SessionEvent

sessions_t = ServiceSession.__table__
conversations = Conversation.__table__
messages = Message.__table__
events_t = SessionEvent.__table__

# issue "Customer 360" plugs in here: conversation row -> profile (identities, tags, orders)
ProfileProvider = Callable[[Any], Awaitable[dict[str, Any]]]


async def basic_profile(conv: Any) -> dict[str, Any]:
    kind = {"oa": "openid", "wecom": "external_userid", "kf": "external_userid"}.get(conv.channel, "id")
    return {"customer_id": None, "name": conv.peer_id, "identities": [{"kind": kind, "value": conv.peer_id,
                                                                        "account_id": conv.account_id}],
            "tags": [], "orders": [], "vip_level": 0}


def session_json(row: Any, conv: Any | None = None) -> dict[str, Any]:
    out = {
        "id": row.id, "conversation_id": row.conversation_id, "account_id": row.account_id, "state": row.state,
        "group": row.group, "priority": row.priority, "agent_id": row.agent_id, "advisor_id": row.advisor_id,
        "vip_level": row.vip_level, "first_message": row.first_message,
        "suggestions": json.loads(row.suggestions or "[]"), "created_at": row.created_at,
        "handover_at": row.handover_at, "assigned_at": row.assigned_at, "accepted_at": row.accepted_at,
        "first_reply_at": row.first_reply_at, "last_customer_at": row.last_customer_at,
        "last_agent_at": row.last_agent_at, "closed_at": row.closed_at, "close_reason": row.close_reason,
    }
    if conv is not None:
        out.update(channel=conv.channel, peer_id=conv.peer_id, thread=conv.thread)
    return out


async def session_bundle(db: Database, profile: ProfileProvider, session_id: int, history: int = 20) -> dict[str, Any]:
    """The session with its customer profile, the latest messages (oldest first) and its last transfer
    since the handover (who handed it on, and the note written for the next agent), or None."""
    async with db.read() as conn:
        row = (await conn.execute(select(sessions_t).where(sessions_t.c.id == session_id))).first()
        conv = (await conn.execute(select(conversations).where(conversations.c.id == row.conversation_id))).first()
        msgs = (await conn.execute(select(messages).where(messages.c.conversation_id == row.conversation_id)
                                   .order_by(messages.c.id.desc()).limit(history))).all()
        moved = (await conn.execute(select(events_t.c.actor, events_t.c.data, events_t.c.at).where(
            (events_t.c.session_id == session_id) & (events_t.c.kind == "transferred")
            & (events_t.c.at >= (row.handover_at or 0))).order_by(events_t.c.id.desc()).limit(1))).first()
    return {"session": session_json(row, conv), "customer": await profile(conv),
            "history": [message_json(m) for m in reversed(msgs)], "transfer": _transfer_json(moved)}


def _transfer_json(event: Any) -> dict[str, Any] | None:
    if event is None:
        return None
    data = json.loads(event.data or "{}")
    return {"by": event.actor, "from_agent": data.get("from"), "note": data.get("note") or "", "at": event.at}
