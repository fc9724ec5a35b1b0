"""Erasure on request: nothing of the customer is left in any table or index but the erasure record;
a later message from the same identity starts a new customer; legal holds block erasure."""
from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy import inspect, select, text

from hub.customers import identity as ident
from hub.models import Conversation, CustomerTag, Identity
from hub.models.orders import OrderItemRow, OrderRow
from hub.archive.search.wiring import INDEXER
from hub.privacy import forget
from tests.conftest import ROOT, auth
from tests.helpers import post
from tests.scale_helpers import private_redis  # noqa: F401 - fixture
from tests.wechat_client import text_xml

SECRET_TEXT = "我的手机13812345678，地址浙江省杭州市西湖区文三路90号"
OTHER_TEXT = "别人的消息 unrelated-customer-text"


async def customer_of(hub, peer: str) -> int | None:  # noqa: ANN001
    t = Conversation.__table__
    async with hub.db.read() as conn:
        return (await conn.execute(select(t.c.customer_id).where(t.c.peer_id == peer))).scalar()


def _all_rows(sync_conn) -> dict[str, list[str]]:  # noqa: ANN001
    out = {}
    names = inspect(sync_conn).get_table_names()
    if sync_conn.dialect.name == "sqlite":  # virtual (FTS) tables and their shadows too
        names = [r[0] for r in sync_conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")]
    for name in names:
        try:
            rows = sync_conn.exec_driver_sql(f'SELECT * FROM "{name}"').fetchall()
        except Exception:  # noqa: BLE001 - a contentless FTS5 table cannot be scanned: searched below
            continue
        out[name] = [" ".join(str(v) for v in r) for r in rows]
    return out


async def scan(hub, needles: list[str]) -> dict[str, list[str]]:  # noqa: ANN001
    """Every table (ORM or not) and every row: which needles occur where."""
    async with hub.db.read_heavy() as conn:
        rows = await conn.run_sync(_all_rows)
    found: dict[str, list[str]] = {}
    for name, lines in rows.items():
        for line in lines:
            for n in needles:
                if n in line:
                    found.setdefault(name, []).append(n)
    return found


async def searched(client, q: str) -> list[int]:  # noqa: ANN001
    """Message ids the archive search (its real index) finds for ``q``."""
    resp = await client.get("/api/search", params={"q": q}, headers=auth())
    assert resp.status == 200, await resp.text()
    return [r["message_id"] for r in (await resp.json())["results"]]


async def seed_customer(client, hub, oa, standin):  # noqa: ANN001
    standin.profiles["oErase1"] = {"unionid": "UNION-ERASE-1", "name": "被删除的客户"}
    await post(client, oa, text_xml("gh", "oErase1", SECRET_TEXT, 501))
    await post(client, oa, text_xml("gh", "oErase1", "转人工", 502))
    await post(client, oa, text_xml("gh", "oKeep1", OTHER_TEXT, 503))
    await hub.pipeline.drain()
    cid = await customer_of(hub, "oErase1")
    assert cid is not None
    now = hub.clock.now()
    async with hub.db.write() as conn:  # an order and a verified phone, as order sync would attach them
        await ident.resolve(conn, now, ident.Key("openid", "oErase1", account_id="acme-oa"),
                            [ident.Key("phone", "13812345678", verified=True)])
        res = await conn.execute(OrderRow.__table__.insert().values(
            platform="taobao", order_id="TB-ERASE-1", customer_id=cid, buyer_id="tb-erase-buyer", status="paid",
            receiver_name="赵六", receiver_phone="13812345678", receiver_address="浙江省杭州市西湖区文三路90号",
            created_at=now, modified_at=now, synced_at=now, raw=json.dumps({"buyer": "tb-erase-buyer"})))
        await conn.execute(OrderItemRow.__table__.insert().values(order_row_id=res.inserted_primary_key[0],
                                                                  title="面霜", status="paid"))
    resp = await client.post(f"/api/customers/{cid}/tags", json={"add": ["敏感肌"]}, headers=auth())
    assert resp.status == 200
    # a ticket about it, with an agent's comment that repeats the address (its events hold the text)
    async with hub.db.read() as conn:
        conv_id = (await conn.execute(select(Conversation.__table__.c.id).where(
            Conversation.__table__.c.peer_id == "oErase1"))).scalar()
    resp = await client.post("/api/tickets", headers=auth(), json={"conversation_id": conv_id, "type": "return", "title": "退货"})
    assert resp.status in (200, 201), await resp.text()
    ticket = await resp.json()
    resp = await client.post(f"/api/tickets/{ticket['id']}/comments", headers=auth(),
                             json={"text": "寄回地址核对：文三路90号 TICKET-NOTE"})
    assert resp.status in (200, 201), await resp.text()
    return cid


async def test_erasure_leaves_no_trace_but_the_record(client, hub, oa, standin):
    forgotten: list[list[int]] = []

    async def index_forget(conn, rows):  # noqa: ANN001 - a further index registered through the hook
        forgotten.append([mid for mid, _ in rows])

    forget.register(index_forget)
    try:
        cid = await seed_customer(client, hub, oa, standin)
        needles = ["oErase1", "UNION-ERASE-1", "13812345678", SECRET_TEXT, "TB-ERASE-1", "tb-erase-buyer",
                   "被删除的客户", "TICKET-NOTE"]
        await client.server.app[INDEXER].catch_up()
        assert await searched(client, "文三路90号") and await searched(client, "13812345678")
        before = await scan(hub, needles)
        assert {"messages", "conversations", "identities", "orders", "ticket_events"} <= set(before)
        async with hub.db.read() as conn:
            msg_ids = list((await conn.execute(text(
                "SELECT m.id FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                "WHERE c.peer_id = 'oErase1'"))).scalars())
        resp = await client.post(f"/api/customers/{cid}/erase", headers=auth(),
                                 json={"requester": "客户本人来电 工单#88", "reason": "PIPL 删除请求"})
        assert resp.status == 200, await resp.text()
        record = await resp.json()
    finally:
        forget._FORGETTERS.remove(index_forget)
    assert record["erased_customer"] == cid and record["finished_at"] is not None
    assert len(record["identity_hashes"]) >= 3 and record["counts"]["messages"] >= 2
    assert sorted(i for chunk in forgotten for i in chunk) == sorted(msg_ids)
    assert not await searched(client, "文三路90号") and not await searched(client, "13812345678")
    left = await scan(hub, needles)
    assert set(left) <= {"erasure_records"}, left  # requester text only; no identity in clear
    assert "erasure_records" not in left or set(left["erasure_records"]) == set()
    async with hub.db.read() as conn:
        assert (await conn.execute(select(CustomerTag.__table__).where(
            CustomerTag.__table__.c.customer_id == cid))).first() is None
    assert OTHER_TEXT in str(await scan(hub, [OTHER_TEXT]))  # other customers untouched
    # provable: the record matches the identity's salted hash
    proof = await (await client.get("/api/erasures", params={"identity": "openid:oErase1", "account_id": "acme-oa"},
                                    headers=auth())).json()
    assert [r["id"] for r in proof["erasures"]] == [record["id"]]
    none = await (await client.get("/api/erasures", params={"identity": "openid:oNobody"}, headers=auth())).json()
    assert none["erasures"] == []
    # a message arriving later from the same identity starts a new customer
    await post(client, oa, text_xml("gh", "oErase1", "我又来了", 504))
    await hub.pipeline.drain()
    again = await customer_of(hub, "oErase1")
    assert again is not None and again != cid
    audit = await (await client.get("/api/audit", params={"action": "customer.erase"}, headers=auth())).json()
    assert any(e["target"] == f"customer:{cid}" for e in audit.get("entries", audit.get("items", [])))


async def test_legal_hold_blocks_erasure_until_lifted(client, hub, oa, standin):
    cid = await seed_customer(client, hub, oa, standin)
    hold = await client.post("/api/holds", json={"kind": "customer", "target_id": cid, "reason": "诉讼 (2024)沪01"},
                             headers=auth())
    assert hold.status == 201
    hold_id = (await hold.json())["id"]
    resp = await client.post(f"/api/customers/{cid}/erase", json={"requester": "客户"}, headers=auth())
    assert resp.status == 409 and (await resp.json())["error"] == "legal_hold"
    assert (await client.delete(f"/api/holds/{hold_id}", headers=auth())).status == 200
    resp = await client.post(f"/api/customers/{cid}/erase", json={"requester": "客户"}, headers=auth())
    assert resp.status == 200


async def test_erase_input_errors(client, hub, oa, standin):
    cid = await seed_customer(client, hub, oa, standin)
    r = await client.post(f"/api/customers/{cid}/erase", json={}, headers=auth())
    assert r.status == 400 and (await r.json())["field"] == "requester"
    r = await client.post("/api/customers/999999/erase", json={"requester": "x"}, headers=auth())
    assert r.status == 404
    r = await client.post("/api/customers/abc/erase", json={"requester": "x"}, headers=auth())
    assert r.status == 400
    r = await client.get("/api/erasures", params={"identity": "nocolon"}, headers=auth())
    assert r.status == 400 and (await r.json())["field"] == "identity"


async def test_cli_erase_by_identity(client, hub, oa, standin, db_url):
    cid = await seed_customer(client, hub, oa, standin)
    out = subprocess.run([sys.executable, "-m", "hub", "customers", "erase", "--db", db_url, "--identity",
                          "phone:13812345678", "--requester", "客户邮件 2024-05-01", "--by", "dpo"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HUB_SECRET_KEY_FILE": str(ROOT / "artifacts" / "t.key")})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["erased_customer"] == cid and result["done_by"] == "cli:dpo"
    # in the audit log as the console's erasure is, by who ran the command
    page = await (await client.get("/api/audit", params={"action": "customer.erase"}, headers=auth())).json()
    [entry] = page["entries"]
    assert entry["actor_name"] == "cli:dpo" and entry["target"] == f"customer:{cid}", entry
    assert entry["after"]["erasure"] == result["id"], entry
    hub.writer.forget_conversations()
    async with hub.db.read() as conn:
        assert (await conn.execute(select(Identity.__table__).where(
            Identity.__table__.c.value == "13812345678"))).first() is None


async def test_a_conversation_after_an_erasure_gets_its_own_customer(client, hub, oa, standin):
    """Erasing the newest customer frees their ids (SQLite hands them out again): the next new
    conversation must be linked to its own new customer, not to what a cache remembers of the
    erased one."""
    await post(client, oa, text_xml("gh", "oNewest", "最后一位客户", 601))
    await hub.pipeline.drain()
    await client.server.app[INDEXER].catch_up()
    cid = await customer_of(hub, "oNewest")
    resp = await client.post(f"/api/customers/{cid}/erase", headers=auth(),
                             json={"requester": "本人", "reason": "PIPL"})
    assert resp.status == 200, await resp.text()
    await post(client, oa, text_xml("gh", "oAfterwards", "我是新客户", 602))
    await hub.pipeline.drain()
    after = await customer_of(hub, "oAfterwards")
    assert after is not None
    async with hub.db.read() as conn:
        ident_owner = (await conn.execute(select(Identity.__table__.c.customer_id).where(
            Identity.__table__.c.value == "oAfterwards"))).scalar()
    assert ident_owner == after
    await client.server.app[INDEXER].catch_up()  # the new message (its id reused) is found too
    assert await searched(client, "我是新客户")


async def test_an_erasure_made_by_the_cli_is_noticed_by_the_running_hub(client, hub, oa, standin, db_url):
    """The CLI (another process) erases the newest customer while the hub runs: the hub notices the
    new erasure record and forgets its cached conversation ids, so the next new customer's messages
    are not filed under the erased conversation's id, which SQLite hands out again."""
    from hub.privacy.wiring import ERASURE_WATCH

    await post(client, oa, text_xml("gh", "oErasedByCli", "最后一位客户", 611))
    await hub.pipeline.drain()
    cid = await customer_of(hub, "oErasedByCli")
    out = subprocess.run([sys.executable, "-m", "hub", "customers", "erase", "--db", db_url, "--customer", str(cid),
                          "--requester", "客户邮件", "--by", "dpo"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "HUB_SECRET_KEY_FILE": str(ROOT / "artifacts" / "t.key")})
    assert out.returncode == 0, out.stderr
    assert await client.server.app[ERASURE_WATCH].check()  # (every 5 s in the running hub)
    await post(client, oa, text_xml("gh", "oAfterCli", "我是新客户", 612))
    await hub.pipeline.drain()
    after = await customer_of(hub, "oAfterCli")
    assert after is not None
    async with hub.db.read() as conn:
        ident_owner = (await conn.execute(select(Identity.__table__.c.customer_id).where(
            Identity.__table__.c.value == "oAfterCli"))).scalar()
    assert ident_owner == after


async def test_erasure_leaves_nothing_in_the_agents_replay_buffer(client, hub, wecom, standin):
    """The console's resume buffer (hub/push.py MemoryStreams; Redis with several processes) repeats
    the customer's messages; the erasure cleaned only the unused ``agent_events`` table, so a console
    resuming from an earlier position got the erased customer's texts replayed."""
    from tests.conftest import WECOM
    from tests.rt_helpers import Agent, login, make_user, server_url

    await hub.settings.set("default_group", "presales")
    await make_user(hub, "erase_agent")
    agent = await Agent(server_url(client), await login(client, "erase_agent")).connect()
    try:
        assert (await agent.call("status", {"status": "online"}))["ok"]
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmErasedLive", SECRET_TEXT, 701))
        [bundle] = await agent.wait("session.new")
        epoch = agent.seqs() and agent.events[-1][1]["epoch"]
    finally:
        await agent.close()
    await hub.pipeline.drain()
    cid = await customer_of(hub, "wmErasedLive")
    resp = await client.post(f"/api/customers/{cid}/erase", headers=auth(), json={"requester": "本人"})
    assert resp.status == 200, await resp.text()
    resumed = await Agent(server_url(client), await login(client, "erase_agent")).connect(epoch=epoch, last_seq=0)
    try:
        await resumed.wait("resync")  # the buffer is gone: the console reloads through the API
        assert SECRET_TEXT not in json.dumps([d for _, d in resumed.events], ensure_ascii=False)
        assert "wmErasedLive" not in json.dumps([d for _, d in resumed.events], ensure_ascii=False)
    finally:
        await resumed.close()
    user_id = bundle["session"]["agent_id"]
    assert await hub.push.streams.since(user_id, hub.push.streams.epoch, 0) is None


async def test_an_erasure_empties_the_replay_buffers_kept_in_redis(private_redis):  # noqa: F811
    """With several processes the resume buffers live in Redis: an erasure empties them too (the
    counters stay, so a resuming console is told to resync)."""
    import redis.asyncio as aioredis

    from hub.privacy.erasure_watch import drop_replay_buffers
    from hub.scale.redis_streams import RedisStreams

    client = aioredis.from_url(private_redis.url)
    try:
        streams = RedisStreams(client, ttl=60)
        await streams.start()
        try:
            await streams.append(7, "message.new", {"text": SECRET_TEXT})
            await streams.append(8, "message.new", {"text": SECRET_TEXT})
            assert len(await streams.since(7, streams.epoch, 0)) == 1
            await drop_replay_buffers(streams)
            assert await streams.since(7, streams.epoch, 0) is None and await streams.since(8, streams.epoch, 0) is None
            assert await streams.last_seq(7) == 1
            later = await streams.append(7, "message.new", {"text": "后来的消息"})
            assert later.seq == 2 and [e.seq for e in await streams.since(7, streams.epoch, 1)] == [2]
        finally:
            await streams.stop()
    finally:
        await client.aclose()


async def test_an_erasure_is_provable_after_a_thousand_more(client, hub, oa, standin):
    """GET /api/erasures?identity= looked only among the newest 1,000 records: an identity erased
    before them could no longer be shown to have been erased."""
    from hub.models import ErasureRecord

    await post(client, oa, text_xml("gh", "oErasedLongAgo", "很久以前", 801))
    await hub.pipeline.drain()
    cid = await customer_of(hub, "oErasedLongAgo")
    resp = await client.post(f"/api/customers/{cid}/erase", headers=auth(), json={"requester": "本人"})
    assert resp.status == 200, await resp.text()
    first = (await resp.json())["id"]
    now = hub.clock.now()
    async with hub.db.write() as conn:
        await conn.execute(ErasureRecord.__table__.insert(), [
            {"erased_customer": 100000 + i, "requester": "x", "reason": "", "done_by": "dpo", "started_at": now,
             "finished_at": now, "identity_hashes": json.dumps([f"{i:064x}"]), "counts": "{}"} for i in range(1000)])
    proof = await (await client.get("/api/erasures", params={"identity": "openid:oErasedLongAgo",
                                                             "account_id": "acme-oa"}, headers=auth())).json()
    assert [r["id"] for r in proof["erasures"]] == [first]
    listed = await (await client.get("/api/erasures", headers=auth())).json()
    assert len(listed["erasures"]) == 1000 and first not in [r["id"] for r in listed["erasures"]]


async def test_a_message_erased_while_the_indexer_reads_it_is_not_indexed(client, hub, oa, standin, monkeypatch):
    """The indexer read a batch, an erasure deleted some of its messages (and their index rows:
    none yet), then the indexer committed its batch: the erased texts' terms stayed in the index."""
    from hub.archive.search import indexer as indexer_mod
    indexer = client.server.app[INDEXER]
    await indexer.stop()  # this test runs the passes itself
    cid = await seed_customer(client, hub, oa, standin)
    erased: list[int] = []
    original = indexer_mod.SearchIndexer._next_rows

    async def read_then_erase(self, conn, last):  # noqa: ANN001, ANN202
        rows = await original(self, conn, last)
        if rows and not erased:
            resp = await client.post(f"/api/customers/{cid}/erase", headers=auth(),
                                     json={"requester": "客户本人", "reason": "PIPL"})
            assert resp.status == 200, await resp.text()
            erased.append(cid)
        return rows

    monkeypatch.setattr(indexer_mod.SearchIndexer, "_next_rows", read_then_erase)
    await indexer.catch_up()
    assert erased
    from hub.archive.search.tokens import fts5_expression, parse_query
    async with hub.db.read() as conn:
        if hub.db.dialect == "postgresql":
            indexed = set((await conn.execute(text("SELECT message_id FROM message_search"))).scalars())
        else:  # a contentless FTS5 table is read by its terms: the erased text's and the kept one's
            indexed = set()
            for words in ("文三路90号", "unrelated-customer-text"):
                indexed |= set((await conn.execute(text("SELECT rowid FROM message_fts WHERE message_fts MATCH :q"),
                                                   {"q": fts5_expression(parse_query(words))})).scalars())
        existing = set((await conn.execute(text("SELECT id FROM messages"))).scalars())
    assert indexed and indexed <= existing, (indexed, existing)
