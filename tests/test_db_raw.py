"""The session lookups every customer message makes run on the asyncpg connection itself on PostgreSQL
(hub/db_raw.py): the rows read the same as SQLAlchemy's, values, types and NULLs included, and the
lookups no longer go through SQLAlchemy's execution."""
from __future__ import annotations

from sqlalchemy import event, insert

from hub.db_raw import RawSelect
from hub.models import ServiceSession
from hub.service.sessions import GET_SESSION_Q, OPEN_SESSION_PG, OPEN_SESSION_Q
from tests.conftest import ON_POSTGRES
from tests.helpers import post
from tests.wechat_client import text_xml

import pytest

pytestmark = pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's raw lookups (HUB_TEST_DATABASE=postgres)")


async def test_raw_rows_read_like_sqlalchemys(client, hub, wecom):
    r = await post(client, wecom, text_xml(wecom.receive_id, "wmRaw", "你好", 9_300_001))
    assert r.status == 200
    await hub.pipeline.drain()
    async with hub.db.read() as conn:
        conv = (await conn.exec_driver_sql("SELECT id FROM conversations WHERE peer_id = 'wmRaw'")).scalar()
    async with hub.db.write() as conn:  # a closed session beside the open one: NULLs and a float set
        await conn.execute(insert(ServiceSession.__table__).values(
            conversation_id=conv, account_id=wecom.receive_id, state="closed", group="", priority=2,
            vip_level=1, first_message="旧的", suggestions="[]", created_at=1.5, handover_at=2.25,
            closed_at=3.125, close_reason="resolved"))
        ids = [row[0] for row in (await conn.exec_driver_sql(
            f"SELECT id FROM service_sessions WHERE conversation_id = {conv} ORDER BY id")).all()]
    assert len(ids) == 2
    get = RawSelect(GET_SESSION_Q, "Row")
    async with hub.db.read() as conn:
        for sid in ids:
            ours = await get.first(conn, sid=sid)
            theirs = (await conn.execute(GET_SESSION_Q, {"sid": sid})).first()
            assert ours._mapping == dict(theirs._mapping)
            assert [type(v) for v in ours] == [type(v) for v in theirs]
            assert (ours.id, ours.state, ours.group) == (theirs.id, theirs.state, theirs.group)
        ours = await OPEN_SESSION_PG.first(conn, cid=conv)
        theirs = (await conn.execute(OPEN_SESSION_Q, {"cid": conv})).first()
        assert ours is not None and ours._asdict() == dict(theirs._mapping) and ours.state != "closed"
        assert await get.first(conn, sid=-1) is None


async def test_a_follow_up_looks_its_session_up_off_sqlalchemys_execution(client, hub, wecom):
    r = await post(client, wecom, text_xml(wecom.receive_id, "wmRaw2", "第一条", 9_300_011))
    assert r.status == 200
    await hub.pipeline.drain()
    statements: list[str] = []

    def seen(conn, cursor, statement, *args):  # noqa: ANN001, ANN002, ANN202
        statements.append(statement)

    engines = [hub.db.engine.sync_engine, hub.db.readers.engine.sync_engine]
    for e in engines:
        event.listen(e, "before_cursor_execute", seen)
    try:
        r = await post(client, wecom, text_xml(wecom.receive_id, "wmRaw2", "第二条", 9_300_012))
        assert r.status == 200
        await hub.pipeline.drain()
    finally:
        for e in engines:
            event.remove(e, "before_cursor_execute", seen)
    assert statements  # the job ran its other statements through SQLAlchemy
    assert not [s for s in statements if s.lstrip().startswith("SELECT service_sessions.id, service_sessions.conversation_id")]
