"""The archive's own follow-up of an inbound message (first step of the ``inbound`` job): recalls
mark the original message, never deleting it. (Conversation timestamps are kept by the writer.)

A recall can come before its original: the platform retries a delivery the hub did not answer
(the hub was down, or refused it) after the customer has already recalled it. The recall then
leaves the original's key in ``early_recalls``, and the archive writers store the original
recalled when it comes (hub/archive/sqlite_batch.py, postgres_batch.py).
"""
from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..clock import Clock
from ..db import Database, retry_busy
from ..models import EarlyRecall, Message
from ..pipeline import JobContext

messages = Message.__table__
early = EarlyRecall.__table__
EARLY_RECALL_KEEP = 7 * 86400.0  # seconds an early recall waits for its original (platforms retry for minutes)


def archive_step(db: Database, clock: Clock):  # noqa: ANN201
    insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    async def step(ctx: JobContext) -> None:
        msg = ctx.message
        recalled = ctx.data.get("recalled_msg_id") if msg.kind == "event.recall" else None
        if not recalled:
            return
        key = "m:" + recalled
        original = (messages.c.account_id == msg.account_id) & (messages.c.dedup_key == key)
        mark = update(messages).where(original & messages.c.recalled_at.is_(None))

        async def write() -> None:
            now = clock.now()
            async with db.write() as conn:
                if (await conn.execute(mark.values(recalled_at=now))).rowcount:
                    return
                if (await conn.execute(select(messages.c.id).where(original))).first() is not None:
                    # there: marked already (this recall's job ran before), or committed since the first
                    # look (PostgreSQL: another writer's batch): a statement of its own marks it
                    await conn.execute(mark.values(recalled_at=now))
                    return
                await conn.execute(insert(early).values(account_id=msg.account_id, msg_key=key, recalled_at=now)
                                   .on_conflict_do_nothing(index_elements=["account_id", "msg_key"]))
                await conn.execute(delete(early).where(early.c.recalled_at < now - EARLY_RECALL_KEEP))
            # the key committed first, then one more look: an original committed before this look is marked
            # here; one committed after it is marked by its writer, which looks at early_recalls after its
            # commit (postgres_batch.py). In one transaction neither saw the other: it stayed unmarked.
            async with db.write() as conn:
                await conn.execute(mark.values(recalled_at=now))

        await retry_busy(write)

    return step
