"""Customer 360: identity resolution by strong keys, merge and unmerge, tags pushed live, segments."""
from __future__ import annotations

import csv
import io

from sqlalchemy import select

from hub.customers import identity as ident
from hub.models import Conversation, Identity, TagRemoval
from tests.conftest import OA, WECOM, auth
from tests.helpers import post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import text_xml


async def customer_of(hub, peer: str) -> int:  # noqa: ANN001
    t = Conversation.__table__
    async with hub.db.read() as conn:
        return (await conn.execute(select(t.c.customer_id).where(t.c.peer_id == peer))).scalar()


async def test_unionid_links_oa_follower_and_wecom_contact(client, hub, oa, wecom, standin):
    standin.profiles["oUnion"] = {"unionid": "UNION-1", "name": "王小姐"}
    standin.profiles["wmUnion"] = {"unionid": "UNION-1", "name": "王小姐"}
    standin.profiles["oOther"] = {"unionid": "UNION-2", "name": "李先生"}
    await post(client, oa, text_xml("gh", "oUnion", "你好", 1))
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmUnion", "在吗", 2))
    await post(client, oa, text_xml("gh", "oOther", "咨询", 3))
    await hub.pipeline.drain()
    a, b, c = await customer_of(hub, "oUnion"), await customer_of(hub, "wmUnion"), await customer_of(hub, "oOther")
    assert a == b != c
    profile = await (await client.get(f"/api/customers/{a}", headers=auth())).json()
    kinds = {(i["kind"], i["value"]) for i in profile["identities"]}
    assert {("openid", "oUnion"), ("external_userid", "wmUnion"), ("unionid", "UNION-1")} <= kinds
    assert profile["name"] == "王小姐"


async def test_resolution_rules_pure_db(hub):
    async with hub.db.write() as conn:
        now = 1.0
        a = await ident.resolve(conn, now, ident.Key("taobao", "tb-buyer-1"),
                                [ident.Key("phone", "138 0013 8000", verified=True)])
        b = await ident.resolve(conn, now, ident.Key("jd", "jd-pin-9"),
                                [ident.Key("phone", "13800138000", verified=True)])
        c = await ident.resolve(conn, now, ident.Key("youzan", "yz-1"),
                                [ident.Key("phone", "13800138000", verified=False)])  # unverified: not strong
        d = await ident.resolve(conn, now, ident.Key("taobao", "tb-buyer-1"))
    assert a == b == d and c != a


async def test_merge_moves_everything_and_unmerge_restores(client, hub, oa):
    await post(client, oa, text_xml("gh", "oM1", "我是小王", 10))
    await post(client, oa, text_xml("gh", "oM2", "我也是小王，换了个号", 11))
    await hub.pipeline.drain()
    c1, c2 = await customer_of(hub, "oM1"), await customer_of(hub, "oM2")
    await client.post(f"/api/customers/{c1}/tags", json={"add": ["老客户"]}, headers=auth())
    await client.post(f"/api/customers/{c2}/tags", json={"add": ["敏感肌", "老客户"]}, headers=auth())
    bad = await client.post("/api/customers/merge", json={"source": c2, "target": c1}, headers=auth())
    assert bad.status == 400 and (await bad.json())["field"] == "why"
    resp = await client.post("/api/customers/merge", json={"source": c2, "target": c1, "why": "客户本人确认"},
                             headers=auth())
    assert resp.status == 200
    merged = await resp.json()
    assert {t["name"] for t in merged["customer"]["tags"]} == {"老客户", "敏感肌"}
    assert await customer_of(hub, "oM2") == c1
    assert {i["value"] for i in merged["customer"]["identities"]} >= {"oM1", "oM2"}
    # a new message from the merged-away identity lands on the surviving customer
    await post(client, oa, text_xml("gh", "oM2", "还在吗", 12))
    await hub.pipeline.drain()
    assert await customer_of(hub, "oM2") == c1
    undo = await client.post(f"/api/merges/{merged['merge_id']}/undo", headers=auth())
    assert undo.status == 200
    assert await customer_of(hub, "oM2") == c2 and await customer_of(hub, "oM1") == c1
    t1 = await (await client.get(f"/api/customers/{c1}", headers=auth())).json()
    t2 = await (await client.get(f"/api/customers/{c2}", headers=auth())).json()
    assert {t["name"] for t in t1["tags"]} == {"老客户"}
    assert {t["name"] for t in t2["tags"]} == {"敏感肌", "老客户"}
    async with hub.db.read() as conn:
        ids = (await conn.execute(select(Identity.__table__.c.value).where(
            Identity.__table__.c.customer_id == c2))).scalars().all()
    assert "oM2" in ids
    assert (await client.post(f"/api/merges/{merged['merge_id']}/undo", headers=auth())).status == 404


async def test_keyword_tags_and_manual_tags_pushed_live(client, hub, wecom):
    await hub.settings.set("default_group", "presales")
    await make_user(hub, "alice")
    alice = await Agent(server_url(client), await login(client, "alice")).connect()
    try:
        assert (await alice.call("status", {"status": "online"}))["ok"]
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmTag", "我是敏感肌，宝宝也能用吗", 20))
        [bundle] = await alice.wait("session.new")
        assert {t["name"] for t in bundle["customer"]["tags"]} == {"敏感肌", "母婴"}
        assert all(t["source"] == "keyword" for t in bundle["customer"]["tags"])
        ack = await alice.call("tag", {"session_id": bundle["session"]["id"], "add": ["高意向"]})
        assert ack["ok"] and "高意向" in {t["name"] for t in ack["tags"]}
        pushed = await alice.wait("customer.tags")
        assert "高意向" in {t["name"] for t in pushed[-1]["tags"]}
    finally:
        await alice.close()


async def test_segments_filter_and_csv(client, hub, oa):
    for i, text in enumerate(["过敏了怎么办", "随便看看", "宝宝能用吗"]):
        await post(client, oa, text_xml("gh", f"oSeg{i}", text, 30 + i))
    await hub.pipeline.drain()
    data = await (await client.get("/api/segments", params={"tags": "过敏"}, headers=auth())).json()
    assert [c["name"] for c in data["customers"]] == ["oSeg0"] or len(data["customers"]) == 1
    resp = await client.get("/api/segments", params={"tags": "母婴", "format": "csv"}, headers=auth())
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert len(rows) == 1 and "母婴" in rows[0]["tags"]
    from tests.rt_helpers import make_user as mk
    await mk(hub, "agent9")
    token = await login(client, "agent9")
    assert (await client.get("/api/segments", headers={"Authorization": f"Bearer {token}"})).status == 403


async def test_merge_and_unmerge_recount_purchases(client, hub, oa):
    """A VIP merged into a profile with no orders: the surviving profile is the VIP (routing's
    VIP-first and the spend segments read these figures); undoing the merge gives them back."""
    from hub.models.orders import OrderRow

    await post(client, oa, text_xml("gh", "oVipA", "我是老客户", 20))
    await post(client, oa, text_xml("gh", "oNewB", "换了个号", 21))
    await hub.pipeline.drain()
    a, b = await customer_of(hub, "oVipA"), await customer_of(hub, "oNewB")
    now = hub.clock.now()
    async with hub.db.write() as conn:
        await conn.execute(OrderRow.__table__.insert().values(
            platform="custom", order_id="VIP-A-1", customer_id=a, status="completed", paid_fen=300000,
            created_at=now, modified_at=now, synced_at=now))
    await hub.customers.apply_order_rules(a, [{"paid_fen": 300000, "status": "completed", "created_at": now,
                                               "categories": []}])

    async def figures(cid: int) -> tuple:
        c = await (await client.get(f"/api/customers/{cid}", headers=auth())).json()
        return c["vip_level"], c["paid_total_fen"], c["order_count"]

    assert await figures(a) == (1, 300000, 1) and await figures(b) == (0, 0, 0)
    resp = await client.post("/api/customers/merge", json={"source": a, "target": b, "why": "同一人"}, headers=auth())
    assert resp.status == 200
    assert await figures(b) == (1, 300000, 1)
    undo = await client.post(f"/api/merges/{(await resp.json())['merge_id']}/undo", headers=auth())
    assert undo.status == 200
    assert await figures(a) == (1, 300000, 1) and await figures(b) == (0, 0, 0)


async def test_undoing_merges_out_of_order_gives_each_customer_their_own(client, hub, oa):
    """A into B, then B into C; the first merge is undone, then the second: A, B and C each end up
    with their own conversations (the second undo moved A's back to B: it had recorded them)."""
    peers = {"A": "oChainA", "B": "oChainB", "C": "oChainC"}
    for n, peer in enumerate(peers.values()):
        await post(client, oa, text_xml("gh", peer, "你好", 30 + n))
    await hub.pipeline.drain()
    ids = {k: await customer_of(hub, p) for k, p in peers.items()}

    async def merge(source: str, target: str) -> int:
        resp = await client.post("/api/customers/merge", headers=auth(),
                                 json={"source": ids[source], "target": ids[target], "why": "同一人"})
        assert resp.status == 200, await resp.text()
        return (await resp.json())["merge_id"]

    first, second = await merge("A", "B"), await merge("B", "C")
    assert {await customer_of(hub, p) for p in peers.values()} == {ids["C"]}
    for merge_id in (first, second):
        assert (await client.post(f"/api/merges/{merge_id}/undo", headers=auth())).status == 200
    assert {k: await customer_of(hub, p) for k, p in peers.items()} == ids
    async with hub.db.read() as conn:
        owners = dict((await conn.execute(select(Identity.__table__.c.value, Identity.__table__.c.customer_id).where(
            Identity.__table__.c.value.in_(list(peers.values()))))).all())
    assert owners == {p: ids[k] for k, p in peers.items()}


async def test_agents_adding_the_same_new_tag_at_once_all_succeed(hub):
    """Two agents add the same new tag to two customers, or the same tag to one customer, at the
    same moment (PostgreSQL runs the transactions in parallel): every call succeeds and each
    customer has the tag once (the unique name and the (customer, tag) key failed one of them)."""
    import asyncio

    from hub.models import Customer

    async with hub.db.write() as conn:
        ids = [(await conn.execute(Customer.__table__.insert().values(name=f"c{i}", created_at=1.0)))
               .inserted_primary_key[0] for i in range(2)]
    for i in range(10):
        results = await asyncio.gather(
            hub.customers.tag("user:1", ids[0], [f"新标签{i}"]), hub.customers.tag("user:2", ids[1], [f"新标签{i}"]),
            hub.customers.tag("user:1", ids[0], [f"同标签{i}"]), hub.customers.tag("user:2", ids[0], [f"同标签{i}"]),
            return_exceptions=True)
        assert [r for r in results if isinstance(r, BaseException)] == []
    tags = await hub.customers.get(ids[0])
    assert sorted(t["name"] for t in tags["tags"]) == sorted([f"新标签{i}" for i in range(10)]
                                                             + [f"同标签{i}" for i in range(10)])
    assert sorted(t["name"] for t in (await hub.customers.get(ids[1]))["tags"]) == sorted(f"新标签{i}" for i in range(10))


async def test_removing_a_tag_takes_its_name_as_adding_does(client, hub, oa):
    """Adding " 高意向 " stores "高意向", and removing " 高意向 " answered 404 unknown_tag; a name that is
    not a string reached the query (PostgreSQL: a DataError, a 500)."""
    await post(client, oa, text_xml("gh", "oTagTrim", "你好", 41))
    await hub.pipeline.drain()
    c = await customer_of(hub, "oTagTrim")
    r = await client.post(f"/api/customers/{c}/tags", json={"add": [" 高意向 "]}, headers=auth())
    assert r.status == 200 and [t["name"] for t in (await r.json())["tags"]] == ["高意向"]
    r = await client.post(f"/api/customers/{c}/tags", json={"remove": [" 高意向 "]}, headers=auth())
    assert r.status == 200, await r.text()
    assert (await r.json())["tags"] == []
    for bad in (5, None, ["x"], "", "x" * 65):
        r = await client.post(f"/api/customers/{c}/tags", json={"remove": [bad]}, headers=auth())
        assert r.status == 400, (bad, r.status, await r.text())
        assert (await r.json())["field"] == "remove"


async def test_tagging_a_merged_customer_tags_the_one_it_was_merged_into(client, hub, oa):
    """GET /api/customers/{id} of a customer merged into another shows the one it was merged into,
    but tags posted to its id went onto the merged-away shell, where nothing shows them."""
    await post(client, oa, text_xml("gh", "oTagShellA", "你好", 51))
    await post(client, oa, text_xml("gh", "oTagShellB", "你好", 52))
    await hub.pipeline.drain()
    a, b = await customer_of(hub, "oTagShellA"), await customer_of(hub, "oTagShellB")
    r = await client.post("/api/customers/merge", json={"source": a, "target": b, "why": "同一人"}, headers=auth())
    assert r.status == 200
    r = await client.post(f"/api/customers/{a}/tags", json={"add": ["合并后打的标签"]}, headers=auth())
    assert r.status == 200 and "合并后打的标签" in {t["name"] for t in (await r.json())["tags"]}
    profile = await (await client.get(f"/api/customers/{a}", headers=auth())).json()
    assert profile["customer_id"] == b and "合并后打的标签" in {t["name"] for t in profile["tags"]}
    segment = await (await client.get("/api/segments", params={"tags": "合并后打的标签"}, headers=auth())).json()
    assert [c["customer_id"] for c in segment["customers"]] == [b]


async def test_a_keyword_tag_an_agent_removed_stays_off_in_every_process_until_an_agent_adds_it(client, hub, oa):
    """The removal is in the database: a process that never saw it (another worker, or this one after a
    restart: its cache emptied) does not put the tag back at the customer's next matching word."""
    async def names() -> set[str]:
        data = await (await client.get(f"/api/customers/{cid}", headers=auth())).json()
        return {t["name"] for t in data["tags"]}

    await post(client, oa, text_xml("gh", "oRm", "我是敏感肌", 40))
    await hub.pipeline.drain()
    cid = await customer_of(hub, "oRm")
    assert "敏感肌" in await names()
    resp = await client.post(f"/api/customers/{cid}/tags", json={"remove": ["敏感肌"]}, headers=auth())
    assert resp.status == 200, await resp.text()
    hub.customers.forget_conversations()  # as a process that never saw the removal
    await post(client, oa, text_xml("gh", "oRm", "敏感肌能用吗", 41))
    await hub.pipeline.drain()
    assert "敏感肌" not in await names()
    # an agent's own add lifts the removal: taken off again later, the words bring it back no more
    resp = await client.post(f"/api/customers/{cid}/tags", json={"add": ["敏感肌"]}, headers=auth())
    assert "敏感肌" in {t["name"] for t in (await resp.json())["tags"]}
    async with hub.db.read() as conn:
        left = (await conn.execute(select(TagRemoval.__table__))).all()
    assert left == []
