"""The archive writer's batch on both databases: a key twice in one batch is one message with one
job (the first of them gets the id), a retried key is a duplicate, and a conversation deleted behind
the writer's cache of conversation ids (another process's erasure) does not cost a message."""
from __future__ import annotations

import pytest
from sqlalchemy import delete, func, select
from sqlalchemy import text as sql_text

from hub.archive.postgres_batch import CONVERSATIONS_SQL, EARLY_RECALL_HITS_SQL, positional
from hub.archive.store import ToArchive
from hub.messages import Text
from hub.models import Conversation, Job, Message

conversations = Conversation.__table__
messages = Message.__table__
jobs = Job.__table__


def text(peer: str, msg_id: str) -> ToArchive:
    return ToArchive("acme-wecom", Text(channel="wecom", peer_id=peer, sent_at=1, msg_id=msg_id, content="在吗"))


async def count(hub, table, *where) -> int:  # noqa: ANN001
    async with hub.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar()


async def test_duplicates_in_one_batch_and_across_batches(hub):
    await hub.pipeline.stop()
    saved = await hub.writer.save([text("wmBatchA", "d1"), text("wmBatchB", "d2"), text("wmBatchA", "d1")])
    assert [s.duplicate for s in saved] == [False, False, True]
    assert saved[0].conversation_id == saved[2].conversation_id != saved[1].conversation_id
    again = await hub.writer.save([text("wmBatchA", "d1"), text("wmBatchA", "d3")])
    assert [s.duplicate for s in again] == [True, False]
    ids = [saved[0].message_id, saved[1].message_id, again[1].message_id]
    assert await count(hub, messages, messages.c.peer_id.in_(["wmBatchA", "wmBatchB"])) == 3
    async with hub.db.read() as conn:
        job_rows = (await conn.execute(select(jobs.c.message_id, jobs.c.conversation_id, jobs.c.kind)
                                       .where(jobs.c.message_id.in_(ids)).order_by(jobs.c.message_id))).all()
    assert [(r.message_id, r.conversation_id, r.kind) for r in job_rows] == [
        (saved[0].message_id, saved[0].conversation_id, "inbound"), (saved[1].message_id, saved[1].conversation_id,
                                                                      "inbound"),
        (again[1].message_id, again[1].conversation_id, "inbound")]


async def test_a_conversation_deleted_behind_the_cache(hub):
    await hub.pipeline.stop()
    [first] = await hub.writer.save([text("wmGone", "g1")])
    async with hub.db.write() as conn:  # as another process's erasure would: the writer is not told
        await conn.execute(delete(jobs).where(jobs.c.conversation_id == first.conversation_id))
        await conn.execute(delete(messages).where(messages.c.conversation_id == first.conversation_id))
        await conn.execute(delete(conversations).where(conversations.c.id == first.conversation_id))
    [second] = await hub.writer.save([text("wmGone", "g2")])
    assert not second.duplicate
    assert await count(hub, messages, messages.c.peer_id == "wmGone", messages.c.conversation_id == second.conversation_id) == 1
    assert await count(hub, conversations, conversations.c.peer_id == "wmGone", conversations.c.id == second.conversation_id) == 1


async def test_jobs_keep_the_order_messages_arrived_in(hub):
    """Two messages of one customer in one batch: the pipeline runs their jobs in arrival order."""
    await hub.pipeline.stop()
    events = ToArchive("acme-wecom", Text(channel="wecom", peer_id="wmOrder", sent_at=2, msg_id="", content="x"))
    saved = await hub.writer.save([text("wmOrder", "z9"), events, text("wmOrder", "a1")])
    async with hub.db.read() as conn:
        order = [r.message_id for r in (await conn.execute(
            select(jobs.c.message_id).where(jobs.c.message_id.in_([s.message_id for s in saved])).order_by(jobs.c.id)))]
    assert order == [s.message_id for s in saved]


async def test_a_full_cache_starts_over_without_losing_a_batch(hub):
    await hub.pipeline.stop()
    await hub.writer.save([text("wmCacheA", "c1")])
    cache = hub.writer._postgres if hub.db.dialect == "postgresql" else hub.writer._sqlite
    cache.cache_size = 1  # the next new conversation overflows it
    saved = await hub.writer.save([text("wmCacheA", "c2"), text("wmCacheB", "c3")])
    assert [s.duplicate for s in saved] == [False, False]
    assert await count(hub, messages, messages.c.peer_id.in_(["wmCacheA", "wmCacheB"])) == 3


async def test_a_batch_longer_than_one_statement(hub):
    """A batch spread over several insert statements (SQLite's writer takes 256 messages at a time):
    a key repeated across the statements' boundary is a duplicate, and every message keeps its id.
    On SQLite the ids follow arrival order; PostgreSQL's batch inserts in key order (its lock order)."""
    await hub.pipeline.stop()
    items = [text(f"wmLong{i % 7}", f"long{i}") for i in range(600)]
    items.insert(400, text("wmLong0", "long3"))  # after the first 256: a retry of a key in the first statement
    saved = await hub.writer.save(items)
    assert [s.duplicate for s in saved] == [i == 400 for i in range(601)]
    ids = [s.message_id for s in saved if not s.duplicate]
    assert len(set(ids)) == 600
    if hub.db.dialect == "sqlite":
        assert ids == sorted(ids)
    async with hub.db.read() as conn:
        stored = dict((await conn.execute(select(messages.c.id, messages.c.dedup_key)
                                          .where(messages.c.id.in_(ids)))).all())
    assert [stored[s.message_id] for s in saved if not s.duplicate] == [f"m:long{i}" for i in range(600)]
    assert await count(hub, jobs, jobs.c.message_id.in_(ids)) == 600


async def generic_plan(hub, table: str, statement: str, types: str, args: str) -> str:  # noqa: ANN001
    """PostgreSQL's generic plan of ``statement`` (as a prepared statement reused many times gets it),
    after ``table`` is analyzed as it stands."""
    async with hub.db.write() as conn:
        await conn.execute(sql_text(f"ANALYZE {table}"))
        await conn.execute(sql_text("SET LOCAL plan_cache_mode = force_generic_plan"))
        await conn.execute(sql_text(f"PREPARE plan_q ({types}) AS {statement}"))
        plan = "\n".join(r[0] for r in await conn.execute(sql_text(f"EXPLAIN EXECUTE plan_q ({args})")))
        await conn.execute(sql_text("DEALLOCATE plan_q"))
    return plan


async def test_postgres_looks_up_known_conversations_by_index(hub):
    """PostgreSQL: the writer asks for conversations it has not cached (another process created them)
    with one index probe per key, on a generic plan too. A join of the keys with the table was planned,
    up to a few thousand conversations (a new brand, bench/scale.py), as a scan of them all per miss."""
    if hub.db.dialect != "postgresql":
        pytest.skip("PostgreSQL's plan")
    await hub.pipeline.stop()
    async with hub.db.write() as conn:
        await conn.execute(conversations.insert(), [
            {"account_id": "acme-wecom", "channel": "wecom", "thread": "", "peer_id": f"wmKnown{i}", "created_at": 1.0}
            for i in range(1000)])
    plan = await generic_plan(hub, "conversations", positional(CONVERSATIONS_SQL, (
        "account_id", "thread", "peer_id", "channel", "now")), "text[], text[], text[], text[], float8",
        "ARRAY['acme-wecom', 'acme-wecom'], ARRAY['', ''], ARRAY['wmKnown5', 'wmNew1'], ARRAY['wecom', 'wecom'], 2.0")
    assert "Seq Scan on conversations" not in plan and "Index Scan using uq_conversation_peer" in plan, plan
    hub.writer.forget_conversations()  # as a process that never saw them
    saved = await hub.writer.save([text("wmKnown5", "k1"), text("wmKnown999", "k2"), text("wmNewOne", "k3")])
    async with hub.db.read() as conn:
        ids = dict((await conn.execute(select(conversations.c.peer_id, conversations.c.id).where(
            conversations.c.peer_id.in_(["wmKnown5", "wmKnown999", "wmNewOne"])))).all())
    assert [s.conversation_id for s in saved] == [ids["wmKnown5"], ids["wmKnown999"], ids["wmNewOne"]]


async def test_postgres_early_recall_look_after_a_batch_reads_no_messages(hub):
    """PostgreSQL: after each batch's commit the writer looks for recalls that came first; on a generic
    plan made while the archive was small, the look (an UPDATE of messages joined with early_recalls)
    scanned the whole messages table at every batch (550 rows read per callback in bench/scale.py).
    It reads early_recalls alone; a hit still marks its message."""
    if hub.db.dialect != "postgresql":
        pytest.skip("PostgreSQL's plan")
    await hub.pipeline.stop()
    await hub.writer.save([text(f"wmLook{i}", f"look{i}") for i in range(20)])
    plan = await generic_plan(hub, "messages", positional(EARLY_RECALL_HITS_SQL, ("ids", "account_id", "dedup_key")),
                              "bigint[], text[], text[]",
                              "ARRAY[1, 2], ARRAY['acme-wecom', 'acme-wecom'], ARRAY['m:a', 'm:b']")
    assert " on messages" not in plan, plan
    async with hub.db.write() as conn:  # a recall that came first, as effects.py leaves it
        await conn.execute(sql_text("INSERT INTO early_recalls (account_id, msg_key, recalled_at) "
                                    "VALUES ('acme-wecom', 'm:lookLate', 5.0)"))
    [saved] = await hub.writer.save([text("wmLookLate", "lookLate")])
    async with hub.db.read() as conn:
        recalled = (await conn.execute(select(messages.c.recalled_at).where(
            messages.c.id == saved.message_id))).scalar()
    assert recalled == 5.0


async def test_a_failed_batch_leaves_no_conversation_id_behind(hub):
    """SQLite: a batch the database refuses takes the conversations it created with it, and SQLite
    gives their ids to the next new conversations: the writer must not remember them, or the
    customer's next message is filed under (and its bot answer sent to) another customer."""
    if hub.db.dialect != "sqlite":
        pytest.skip("PostgreSQL commits new conversations by themselves and never reuses an id")
    await hub.pipeline.stop()
    async with hub.db.write() as conn:  # a real refusal by the database (as a full disk would be)
        await conn.execute(sql_text("CREATE TRIGGER refuse_boom BEFORE INSERT ON messages WHEN NEW.text = 'boom' "
                                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"))
    boom = ToArchive("acme-wecom", Text(channel="wecom", peer_id="wmFirstA", sent_at=1, msg_id="f1", content="boom"))
    with pytest.raises(Exception, match="refused"):
        await hub.writer.save([boom])
    [b] = await hub.writer.save([text("wmSecondB", "f2")])
    [a] = await hub.writer.save([text("wmFirstA", "f3")])
    async with hub.db.read() as conn:
        peers = dict((await conn.execute(select(conversations.c.id, conversations.c.peer_id))).all())
    assert peers[b.conversation_id] == "wmSecondB"
    assert peers[a.conversation_id] == "wmFirstA"


async def refuse_text(hub, value: str) -> None:  # noqa: ANN001
    """A trigger: the database refuses any message whose text is ``value`` (a real refusal)."""
    async with hub.db.write() as conn:
        if hub.db.dialect == "sqlite":
            await conn.execute(sql_text(f"CREATE TRIGGER refuse_{value} BEFORE INSERT ON messages "
                                        f"WHEN NEW.text = '{value}' BEGIN SELECT RAISE(ABORT, 'refused'); END"))
        else:
            await conn.execute(sql_text(f"CREATE FUNCTION refuse_{value}() RETURNS trigger AS $$ BEGIN "
                                        f"IF NEW.text = '{value}' THEN RAISE EXCEPTION 'refused'; END IF; "
                                        "RETURN NEW; END $$ LANGUAGE plpgsql"))
            await conn.execute(sql_text(f"CREATE TRIGGER refuse_{value} BEFORE INSERT ON messages "
                                        f"FOR EACH ROW EXECUTE FUNCTION refuse_{value}()"))


async def test_one_refused_message_does_not_fail_its_batch(hub):
    """A message the database refuses fails alone (its callback is not acknowledged, so the platform
    retries it); the messages committed in the same batch are stored and acknowledged."""
    import asyncio

    await hub.pipeline.stop()
    await refuse_text(hub, "poison")
    poison = ToArchive("acme-wecom", Text(channel="wecom", peer_id="wmPoison", sent_at=1, msg_id="p0", content="poison"))
    # queued together, before the writer task runs again: one batch
    saves = await hub.writer._queued([text("wmMate1", "p1"), text("wmMate2", "p2"), poison,  # noqa: SLF001
                                      text("wmMate3", "p3")])
    results = await asyncio.gather(*saves, return_exceptions=True)
    assert "refused" in str(results[2])
    assert all(not isinstance(r, BaseException) and not r.duplicate for i, r in enumerate(results) if i != 2), results
    assert await count(hub, messages, messages.c.peer_id.in_(["wmMate1", "wmMate2", "wmMate3"])) == 3
    assert await count(hub, messages, messages.c.peer_id == "wmPoison") == 0
    assert await count(hub, jobs, jobs.c.message_id.in_([r.message_id for i, r in enumerate(results) if i != 2])) == 3


async def test_without_its_task_the_writer_stores_more_than_a_batch(hub):
    """A writer not started (the command line, tests) writes everything it is given, a batch at a
    time: past ``max_batch`` the waiters of the rest were never answered (a kf page of 1,000 hung)."""
    import asyncio

    from hub.archive.store import ArchiveWriter

    await hub.pipeline.stop()
    writer = ArchiveWriter(hub.db, hub.clock, max_batch=4)
    try:
        saved = await asyncio.wait_for(writer.save([text(f"wmMany{i}", f"many{i}") for i in range(10)]), 10)
    finally:
        if writer._sqlite is not None:  # noqa: SLF001 - never started, so stop() has nothing to stop
            await writer._sqlite.close()  # noqa: SLF001
    assert len(saved) == 10 and not any(s.duplicate for s in saved)
    assert await count(hub, messages, messages.c.peer_id.like("wmMany%")) == 10


async def test_stopping_mid_write_answers_every_waiter(hub):
    """The writer stopped while its batch waits for the database: stop() writes that batch, and its
    waiters are answered (they waited for ever: the batch had left the queue)."""
    import asyncio

    if hub.db.dialect != "sqlite":
        pytest.skip("the write gate the batch is held at is SQLite's")
    await hub.pipeline.stop()
    await hub.db.gate.acquire()  # the batch below waits for the database
    try:
        pending = asyncio.ensure_future(hub.writer.save_one(text("wmStopping", "s1")))
        while hub.writer._queue or not hub.db.gate._urgent:  # noqa: SLF001 - the writer took it and waits
            await asyncio.sleep(0.001)
        stopping = asyncio.ensure_future(hub.writer.stop())
        await asyncio.sleep(0.05)
    finally:
        hub.db.gate.release()
    await asyncio.wait_for(stopping, 10)
    saved = await asyncio.wait_for(pending, 10)
    assert not saved.duplicate
    assert await count(hub, messages, messages.c.peer_id == "wmStopping") == 1


async def test_one_batchs_messages_get_ids_in_arrival_order(hub):
    """The console and the history API show a conversation in id order: a batch's messages (a kf page,
    a text and an event in one group commit) keep the order they came in, whatever their keys."""
    await hub.pipeline.stop()
    saved = await hub.writer.save([text("wmOrder", "kf-z"), text("wmOrder", "kf-a"), text("wmOrder", "kf-m"),
                                   text("wmOrder", "kf-a")])
    ids = [s.message_id for s in saved]
    assert ids[3] is None and ids[0] < ids[1] < ids[2]
    async with hub.db.read() as conn:
        keys = (await conn.execute(select(messages.c.dedup_key).where(messages.c.peer_id == "wmOrder")
                                   .order_by(messages.c.id))).scalars().all()
    assert [k.rsplit(":", 1)[-1] for k in keys] == ["kf-z", "kf-a", "kf-m"]
