"""Which commits wait for the disk: acknowledged messages and ``write(durable=True)`` do, on both
databases; background writes (jobs, sessions, bookkeeping) do not (SQLite ``synchronous=NORMAL``,
PostgreSQL ``synchronous_commit=off``): their commits never queue behind the WAL flush."""
from __future__ import annotations

from hub.archive import postgres_batch
from hub.archive.postgres_batch import fetch_raw
from tests.helpers import count_messages, post
from tests.wechat_client import text_xml


async def setting(conn, db) -> str:  # noqa: ANN001
    if db.dialect == "postgresql":
        return (await conn.exec_driver_sql("SHOW synchronous_commit")).scalar()
    return {1: "normal", 2: "full"}[(await conn.exec_driver_sql("PRAGMA synchronous")).scalar()]


async def test_durable_writes_wait_for_the_disk_and_background_writes_do_not(hub):
    db = hub.db
    async with db.write() as conn:
        background = await setting(conn, db)
    async with db.write(durable=True) as conn:
        durable = await setting(conn, db)
    async with db.write() as conn:  # durable was for that transaction only
        after = await setting(conn, db)
    if db.dialect == "postgresql":
        assert (background, durable, after) == ("off", "on", "off")
    else:
        assert (background, durable, after) == ("normal", "full", "normal")


async def test_acknowledged_messages_are_committed_durably(client, hub, wecom, monkeypatch):
    if hub.db.dialect != "postgresql":  # SQLite: the writer's own connection is synchronous=FULL
        conn = hub.writer._sqlite._connect()
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        r = await post(client, wecom, text_xml(wecom.receive_id, "wmDurable", "在吗", 9_100_001))
        assert r.status == 200
    else:  # PostgreSQL: the writer's batch is one statement on connections with synchronous_commit on
        statements: list[tuple[bool, str]] = []  # (on the durable engine's connection, statement)

        async def seen(conn, sql: str, *args):  # noqa: ANN001, ANN002, ANN202 - the batch runs on asyncpg itself
            statements.append((conn.engine is hub.db.durable_engine, sql))
            return await fetch_raw(conn, sql, *args)

        monkeypatch.setattr(postgres_batch, "fetch_raw", seen)
        r = await post(client, wecom, text_xml(wecom.receive_id, "wmDurable", "在吗", 9_100_001))
        assert r.status == 200
        assert any(durable and "INSERT INTO messages" in sql for durable, sql in statements), statements
        async with hub.db.durable_statements() as conn:
            assert (await conn.exec_driver_sql("SHOW synchronous_commit")).scalar() == "on"
            first, second = [(await conn.exec_driver_sql("SELECT txid_current()")).scalar() for _ in range(2)]
            assert first != second  # each statement its own transaction
    assert await count_messages(hub, peer_id="wmDurable") == 1
