"""Conversation history and listing: keyset-paged by message id, newest first.

Paging by ``before`` (an id) instead of an offset keeps pages stable while new messages arrive.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from ..db import Database
from ..errors import not_found
from ..models import Conversation, Message

messages = Message.__table__
conversations = Conversation.__table__


def message_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id, "conversation_id": row.conversation_id, "account_id": row.account_id,
        "channel": row.channel, "direction": row.direction, "kind": row.kind, "peer_id": row.peer_id,
        "sender": row.sender, "text": row.text, "data": json.loads(row.data or "{}"), "sent_at": row.sent_at,
        "created_at": row.created_at, "status": row.status, "recalled": row.recalled_at is not None,
        "recalled_at": row.recalled_at,
    }


def conversation_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "account_id": row.account_id, "channel": row.channel, "thread": row.thread,
            "peer_id": row.peer_id, "created_at": row.created_at, "last_message_at": row.last_message_at}


async def conversation(db: Database, conversation_id: int) -> dict[str, Any]:
    async with db.read() as conn:
        row = (await conn.execute(select(conversations).where(conversations.c.id == conversation_id))).first()
    if row is None:
        raise not_found("unknown_conversation", f"no conversation {conversation_id}")
    return conversation_json(row)


async def history(db: Database, conversation_id: int, limit: int = 50, before: int | None = None) -> dict[str, Any]:
    """One page of a conversation, newest first; ``next_before`` fetches the following page."""
    limit = max(1, min(limit, 200))
    query = select(messages).where(messages.c.conversation_id == conversation_id)
    if before is not None:
        query = query.where(messages.c.id < before)
    async with db.read() as conn:
        rows = (await conn.execute(query.order_by(messages.c.id.desc()).limit(limit + 1))).all()
    page = rows[:limit]
    return {"messages": [message_json(r) for r in page],
            "next_before": page[-1].id if len(rows) > limit else None}
