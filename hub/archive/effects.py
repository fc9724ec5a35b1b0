"""The archive's own follow-up of an inbound message (first step of the ``inbound`` job): recalls
mark the original message, never deleting it. (Conversation timestamps are kept by the writer.)"""
from __future__ import annotations

from sqlalchemy import update

from ..clock import Clock
from ..db import Database, retry_busy
from ..models import Message
from ..pipeline import JobContext

messages = Message.__table__


def archive_step(db: Database, clock: Clock):  # noqa: ANN201
    async def step(ctx: JobContext) -> None:
        msg = ctx.message
        recalled = ctx.data.get("recalled_msg_id") if msg.kind == "event.recall" else None
        if not recalled:
            return

        async def write() -> None:
            async with db.write() as conn:
                await conn.execute(update(messages).where(
                    (messages.c.account_id == msg.account_id) & (messages.c.dedup_key == "m:" + recalled)
                    & messages.c.recalled_at.is_(None)).values(recalled_at=clock.now()))

        await retry_busy(write)

    return step
