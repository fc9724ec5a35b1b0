"""The archive's own follow-up of an inbound message (first step of the ``inbound`` job):
conversation timestamps, and recalls marking the original message (never deleting it)."""
from __future__ import annotations

from sqlalchemy import update

from ..clock import Clock
from ..db import Database, retry_busy
from ..models import Conversation, Message
from ..pipeline import JobContext

messages = Message.__table__
conversations = Conversation.__table__


def archive_step(db: Database, clock: Clock):  # noqa: ANN201
    async def step(ctx: JobContext) -> None:
        msg = ctx.message

        async def write() -> None:
            async with db.write() as conn:
                values = {"last_message_at": msg.created_at}
                if msg.direction == "in" and msg.sender == "customer":
                    values["last_inbound_at"] = msg.created_at
                await conn.execute(update(conversations).where(conversations.c.id == msg.conversation_id)
                                   .values(**values))
                if msg.kind == "event.recall":
                    recalled = ctx.data.get("recalled_msg_id")
                    if recalled:
                        await conn.execute(update(messages).where(
                            (messages.c.account_id == msg.account_id)
                            & (messages.c.dedup_key == "m:" + recalled)
                            & messages.c.recalled_at.is_(None)).values(recalled_at=clock.now()))

        await retry_busy(write)

    return step
