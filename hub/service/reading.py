"""Reading sessions for agents and supervisors: the session list, one session's bundle, history."""
from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from ..models import Conversation, Message, ServiceSession
from ..users import UserInfo
from .views import session_bundle, session_json

sessions_t = ServiceSession.__table__
conversations = Conversation.__table__
messages = Message.__table__
OPEN = ("queued", "assigned", "active")


class SessionReading:
    """Mixed into SessionService (which provides ``db``, ``profile`` and ``_owned``)."""

    db: Any
    profile: Any

    async def list_for(self, user: UserInfo) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            q = select(sessions_t, conversations.c.channel, conversations.c.peer_id, conversations.c.thread).join(
                conversations, conversations.c.id == sessions_t.c.conversation_id).where(sessions_t.c.state.in_(OPEN))
            if not user.is_supervisor:
                q = q.where(sessions_t.c.agent_id == user.id)
            rows = (await conn.execute(q.order_by(sessions_t.c.id))).all()
        out = []
        for r in rows:
            item = session_json(r, r)
            item["unread"] = await self._unread(r)
            out.append(item)
        return out

    async def bundle_for(self, user: UserInfo, session_id: int) -> dict[str, Any]:
        await self._owned(user, session_id, read=True)
        return await session_bundle(self.db, self.profile, session_id)

    async def history_for(self, user: UserInfo, session_id: int, before: Any = None) -> dict[str, Any]:
        row = await self._owned(user, session_id, read=True)
        from ..archive.history import history
        return await history(self.db, row.conversation_id, 50, int(before) if before else None)

    async def _unread(self, row: Any) -> int:
        since = row.last_agent_at or 0
        async with self.db.read() as conn:
            return (await conn.execute(select(func.count()).select_from(messages).where(
                (messages.c.conversation_id == row.conversation_id) & (messages.c.direction == "in")
                & (messages.c.sender == "customer") & (messages.c.created_at > since)))).scalar() or 0

