"""Delivery status of what the hub sent into a session: ``message.status`` to the agents who see it.

The outbound sender reports each final status (sent, or failed with the platform's reason); a
微信客服 ``msg_send_fail`` event reports a failure after the platform had accepted the send. The
session's holder gets the event in their stream (so a reconnect replays it), and so does the agent
who wrote the reply if someone else holds the session now. A failure that comes after the session
closed (微信客服 reports "会话已关闭" or an expired window later; a retried send fails for good) still
reaches the agent who wrote the reply: ``closed`` set, with the conversation's last session and the
customer's name, since that session has left their console's list.
"""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from ..models import Conversation, Message, ServiceSession

messages = Message.__table__
sessions_t = ServiceSession.__table__
conversations = Conversation.__table__


class DeliveryStatus:
    """Mixed into SessionService (which provides ``db``, ``push``, ``profile`` and ``_open_session``)."""

    db: Any
    push: Any
    profile: Any

    async def delivery_status(self, message_id: int, status: str, info: dict[str, Any]) -> None:
        async with self.db.read() as conn:
            msg = (await conn.execute(select(messages.c.conversation_id, messages.c.sender, messages.c.text)
                                      .where(messages.c.id == message_id))).first()
        if msg is None:
            return
        writer = _agent_id(msg.sender)
        error = {"errcode": info.get("errcode"), "errmsg": info.get("errmsg") or ""}
        row = await self._open_session(msg.conversation_id)
        if row is None:
            if status == "failed" and writer is not None:
                await self._failed_after_close(writer, msg, message_id, error)
            return
        payload: dict[str, Any] = {"session_id": row.id, "message_id": message_id, "status": status}
        if status == "failed":
            payload["error"] = error
        for user_id in dict.fromkeys(u for u in (row.agent_id, writer) if u):
            await self.push.to_user(user_id, "message.status", payload)

    async def _failed_after_close(self, writer: int, msg: Any, message_id: int, error: dict[str, Any]) -> None:
        """The reply's session is closed (it left the writer's list): they are told all the same, with
        whom it was for and what it said."""
        conversation_id = msg.conversation_id
        async with self.db.read() as conn:
            last = (await conn.execute(select(sessions_t.c.id).where(sessions_t.c.conversation_id == conversation_id)
                                       .order_by(sessions_t.c.id.desc()).limit(1))).first()
            conv = (await conn.execute(select(conversations).where(conversations.c.id == conversation_id))).first()
        customer = (await self.profile(conv)).get("name") if conv is not None else None
        await self.push.to_user(writer, "message.status", {
            "session_id": last.id if last else None, "message_id": message_id, "status": "failed", "error": error,
            "closed": True, "conversation_id": conversation_id, "customer": customer or "",
            "text": (msg.text or "")[:REPLY_SHOWN]})


def _agent_id(sender: str | None) -> int | None:
    if sender and sender.startswith("agent:"):
        try:
            return int(sender[len("agent:"):])
        except ValueError:
            return None
    return None


# 微信客服 msg_send_fail's fail_type: why a message the platform had accepted did not reach the customer
KF_FAIL_TYPES = {0: "未知原因", 1: "客服账号已删除", 2: "应用已关闭", 4: "会话已过期（超过48小时）", 5: "会话已关闭",
                 6: "超过发送条数限制（客户回复前最多5条）", 8: "主体未验证", 10: "客户拒收", 11: "企业没有成员登录企业微信",
                 12: "消息类型不允许发送"}
KF_SEND_FAIL = 3_000_000  # + fail_type: the hub's errcode for such a failure
RECENT_SENDS = 200  # a failure is reported shortly after the send: looked up among the conversation's latest
REPLY_SHOWN = 60  # characters of a failed reply quoted when its session has closed


def kf_send_failure_step(db: Any, outbound: Any):  # noqa: ANN201
    """Pipeline step: a 微信客服 ``msg_send_fail`` event marks the message it names failed (the
    send's ``msgid`` is kept as ``platform_msgid`` in the message's data) and tells its agents."""
    async def step(ctx: Any) -> None:
        msg = ctx.message
        if msg.kind != "event.kf.msg_send_fail":
            return
        data = ctx.data
        fail_msgid = str(data.get("fail_msgid") or "")
        if not fail_msgid:
            return
        async with db.read() as conn:
            sent = (await conn.execute(
                select(messages.c.id, messages.c.data)
                .where((messages.c.conversation_id == msg.conversation_id) & (messages.c.direction == "out"))
                .order_by(messages.c.id.desc()).limit(RECENT_SENDS))).all()
        target = next((r.id for r in sent if _platform_msgid(r.data) == fail_msgid), None)
        if target is None:
            return
        fail_type = _fail_type(data.get("detail_json"))
        await outbound.failed_after_send(target, KF_SEND_FAIL + fail_type,
                                         KF_FAIL_TYPES.get(fail_type, f"发送失败（fail_type {fail_type}）"))

    return step


def _platform_msgid(data: str | None) -> str:
    try:
        return str(json.loads(data or "{}").get("platform_msgid") or "")
    except (ValueError, AttributeError):
        return ""


def _fail_type(detail_json: Any) -> int:
    try:
        return int(json.loads(detail_json or "{}").get("fail_type") or 0)
    except (ValueError, TypeError, AttributeError):
        return 0
