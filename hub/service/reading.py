"""Reading sessions for agents and supervisors: the session list, one session's bundle, history."""
from __future__ import annotations

from typing import Any

from sqlalchemy import false, func, or_, select

from ..errors import HubError
from ..models import Conversation, Message, ServiceSession
from ..models.base import fixed
from ..archive.history import message_json
from ..privacy.views import mask_bundle, mask_message, mask_page, mask_session
from ..users import UserInfo
from .views import session_bundle, session_json

sessions_t = ServiceSession.__table__
conversations = Conversation.__table__
messages = Message.__table__
OPEN = ("queued", "assigned", "active")


def _readable_conversations(user: UserInfo) -> Any:
    """Conversation ids an agent may read: a session of it is or was theirs, or in one of their groups,
    or they replied in it."""
    mine = or_(sessions_t.c.agent_id == user.id,
               sessions_t.c.group.in_(user.groups) if user.groups else false())
    by_session = select(sessions_t.c.conversation_id).where(mine)
    by_reply = select(messages.c.conversation_id).where(messages.c.sender == f"agent:{user.id}")
    return by_session.union(by_reply)


def _unread_count() -> Any:
    """Per session (correlated): the customer's messages since an agent last answered in it; a session
    not answered yet counts from the end of the conversation's previous session (a returning
    customer's new session counted their whole past from 0)."""
    earlier = sessions_t.alias("earlier")
    previous_end = select(func.max(earlier.c.closed_at)).where(
        (earlier.c.conversation_id == sessions_t.c.conversation_id) & (earlier.c.id != sessions_t.c.id)
    ).correlate(sessions_t).scalar_subquery()  # the listed session (left to itself, a subquery two levels
    # down took service_sessions into its own FROM: the latest close of any conversation)
    since = func.coalesce(sessions_t.c.last_agent_at, previous_end, 0)
    return select(func.count()).select_from(messages).where(
        (messages.c.conversation_id == sessions_t.c.conversation_id) & (messages.c.direction == "in")
        & (messages.c.sender == "customer") & (messages.c.created_at > since)).correlate(sessions_t).scalar_subquery()


async def can_read_conversation(db: Any, user: UserInfo, conversation_id: int) -> bool:
    """Supervisors and admins read every conversation; an agent those of their sessions and groups."""
    if user.is_supervisor:
        return True
    mine = or_(sessions_t.c.agent_id == user.id,
               sessions_t.c.group.in_(user.groups) if user.groups else false())
    async with db.read() as conn:
        if (await conn.execute(select(sessions_t.c.id).where(sessions_t.c.conversation_id == conversation_id)
                               .where(mine).limit(1))).first():
            return True
        return (await conn.execute(select(messages.c.id).where(messages.c.conversation_id == conversation_id)
                                   .where(messages.c.sender == f"agent:{user.id}").limit(1))).first() is not None


async def can_read_customer(db: Any, user: UserInfo, customer_id: int | None) -> bool:
    """An agent may read a customer with a conversation they may read."""
    if user.is_supervisor:
        return True
    if customer_id is None:
        return False
    async with db.read() as conn:
        ids = (await conn.execute(select(conversations.c.id).where(conversations.c.customer_id == customer_id)
                                  .where(conversations.c.id.in_(_readable_conversations(user))).limit(1))).first()
    return ids is not None


def forbidden_conversation() -> HubError:
    return HubError(403, "forbidden", "this conversation is not in your sessions or groups")


async def require_conversation(db: Any, user: UserInfo, conversation_id: int) -> None:
    if not await can_read_conversation(db, user, conversation_id):
        raise forbidden_conversation()


async def require_customer(db: Any, user: UserInfo, customer_id: int | None) -> None:
    if not await can_read_customer(db, user, customer_id):
        raise HubError(403, "forbidden", "this customer has no conversation in your sessions or groups")


class SessionReading:
    """Mixed into SessionService (which provides ``db``, ``profile`` and ``_owned``)."""

    db: Any
    profile: Any

    async def list_for(self, user: UserInfo) -> list[dict[str, Any]]:
        """The open sessions a user sees (a supervisor: all of them), each with its unread count and its
        conversation's last message (the list's preview and time before the session is opened), in two
        queries whatever their number (a query or two per session was thousands for a supervisor on a
        busy day)."""
        last_id = select(func.max(messages.c.id)).where(  # not the hub's own queue notices ("您是下一位")
            (messages.c.conversation_id == sessions_t.c.conversation_id) & (messages.c.sender != "system")
        ).correlate(sessions_t).scalar_subquery()
        q = select(sessions_t, conversations.c.channel, conversations.c.peer_id, conversations.c.thread,
                   _unread_count().label("unread"), last_id.label("last_id")).join(
            conversations, conversations.c.id == sessions_t.c.conversation_id).where(sessions_t.c.state.in_(fixed(*OPEN)))
        if not user.is_supervisor:
            q = q.where(sessions_t.c.agent_id == user.id)
        async with self.db.read() as conn:
            rows = (await conn.execute(q.order_by(sessions_t.c.id))).all()
            ids = [r.last_id for r in rows if r.last_id is not None]
            last = {}
            for start in range(0, len(ids), 10_000):  # well inside SQLite's 32,766 parameters
                chunk = select(messages).where(messages.c.id.in_(ids[start:start + 10_000]))
                last.update((m.id, m) for m in (await conn.execute(chunk)).all())
        out = []
        for r in rows:
            item = mask_session(user, session_json(r, r))
            item["unread"] = r.unread or 0
            m = last.get(r.last_id)
            item["last_message"] = mask_message(user, message_json(m)) if m is not None else None
            out.append(item)
        return out

    async def bundle_for(self, user: UserInfo, session_id: int) -> dict[str, Any]:
        row = await self._owned(user, session_id, read=True)
        await self._audit_outside(user, row, "conversation.view")
        return mask_bundle(user, await session_bundle(self.db, self.profile, session_id))

    async def history_for(self, user: UserInfo, session_id: int, before: Any = None) -> dict[str, Any]:
        from ..api import int_param
        before = int_param(before, "before")  # the socket's cursor, checked as the HTTP API's ("abc": a 400 ack)
        row = await self._owned(user, session_id, read=True)
        await self._audit_outside(user, row, "conversation.history")
        from ..archive.history import history
        return mask_page(user, await history(self.db, row.conversation_id, 50, before))

    async def _audit_outside(self, user: UserInfo, row: Any, action: str) -> None:
        """A read of a session neither the viewer's nor of their groups goes to the access audit."""
        if row is None or getattr(row, "agent_id", None) == user.id or getattr(row, "group", None) in user.groups:
            return
        from ..audit import record
        await record(self.db, self.clock, kind="access", actor=user, action=action,
                     target=f"conversation:{row.conversation_id}", detail={"session_id": row.id})
