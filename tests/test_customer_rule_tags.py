"""Purchase-rule tags follow the orders both ways: VIP comes off when a refund takes the spend under
the threshold, 复购 when the second order is closed (they only ever went on), in the live path and the
bulk import's; a manual VIP tag stays. Text the databases cannot hold is a 400 on every API route."""
from __future__ import annotations

from hub.orders import custom
from hub.orders.api import ORDERS
from tests.conftest import auth


def _order(oid: str, status: str, paid: int, at: float, created: float) -> object:
    return custom.parse_order({
        "platform": "taobao", "order_id": oid, "buyer_id": "tb-rule", "status": status, "paid_fen": paid,
        "created_at": created, "modified_at": at,
        "items": [{"title": "面霜", "quantity": 1, "price_fen": paid, "category": ""}]})


def _phoned(oid: str, buyer: str, phone: str) -> object:
    return custom.parse_order({
        "platform": "custom", "order_id": oid, "buyer_id": buyer, "buyer_phone": phone, "status": "paid",
        "paid_fen": 100, "created_at": 1_700_000_000, "modified_at": 1_700_000_000,
        "items": [{"title": "面霜", "quantity": 1, "price_fen": 100}]})


async def _segment(hub) -> dict:  # noqa: ANN001
    [one] = await hub.customers.segment()
    return one


async def test_rule_tags_come_off_when_the_orders_no_longer_hold_them(client, hub):
    await hub.settings.set("vip_threshold_fen", 100000)
    sync = client.server.app[ORDERS]
    now = hub.clock.now()
    await sync.write([_order("V1", "paid", 200000, now - 100, now - 1000),
                      _order("V2", "paid", 100, now - 100, now - 900)], None)
    got = await _segment(hub)
    assert got["vip_level"] == 1 and {"VIP", "复购"} <= set(got["tags"])
    await sync.write([_order("V1", "refunded", 200000, now - 50, now - 1000)], None)
    got = await _segment(hub)
    assert got["vip_level"] == 0 and "VIP" not in got["tags"] and "复购" in got["tags"], got
    await sync.write([_order("V2", "closed", 100, now - 40, now - 900)], None)
    got = await _segment(hub)
    assert got["order_count"] == 1 and "复购" not in got["tags"], got
    # an agent's own VIP tag is theirs: the rules leave it
    resp = await client.post(f"/api/customers/{got['customer_id']}/tags", json={"add": ["VIP"]}, headers=auth())
    assert resp.status == 200, await resp.text()
    await sync.write([_order("V2", "closed", 100, now - 30, now - 900)], None)
    assert "VIP" in (await _segment(hub))["tags"]


async def test_the_bulk_import_takes_stale_rule_tags_off_too(client, hub):
    from hub.orders.rules import apply_rules_bulk
    await hub.settings.set("vip_threshold_fen", 100000)
    sync = client.server.app[ORDERS]
    now = hub.clock.now()
    await sync.write([_order("B1", "paid", 200000, now - 100, now - 1000)], None)
    cid = (await _segment(hub))["customer_id"]
    assert "VIP" in (await _segment(hub))["tags"]
    await sync.write([_order("B1", "refunded", 200000, now - 50, now - 1000)], None)
    await apply_rules_bulk(hub.db, now, 100000, [cid])
    assert "VIP" not in (await _segment(hub))["tags"]


async def test_text_a_database_cannot_hold_is_a_400(client, hub):
    for method, path, kw in [
            ("POST", "/api/customers/1/tags", {"json": {"add": ["\ud83d"]}}),
            ("POST", "/api/customers/1/tags", {"json": {"add": ["a\x00b"]}}),
            ("GET", "/api/segments?tags=a%00", {}),
            ("POST", "/api/erasures", {"json": {"identity": "openid:a\x00"}}),
            ("POST", "/api/reveal", {"json": {"platform": "custom", "order_id": "A\x00", "field": "receiver_phone"}}),
            ("PUT", "/api/privacy/retention", {"json": {"account_id": "\x00", "messages_days": 30}}),
            ("DELETE", "/api/privacy/retention/%00", {})]:
        resp = await client.request(method, path, headers=auth(), **kw)
        assert resp.status in (400, 404), (path, resp.status, await resp.text())


async def test_an_erasure_of_a_customer_tagged_with_their_phone_after_another_one(client, hub):
    """The second erasure rewrote its phone tag to "[erased]", which the first had made already: a
    unique-name error half-way (a 500, the customer gone, the record never finished)."""
    for oid, buyer, phone in (("T1", "buyer-t1", "13811112222"), ("T2", "buyer-t2", "13833334444")):
        await client.server.app[ORDERS].write([_phoned(oid, buyer, phone)], None)
    ids = sorted(c["customer_id"] for c in await hub.customers.segment())
    assert len(ids) == 2
    for cid, tag in zip(ids, ("13811112222", "13833334444")):
        assert (await client.post(f"/api/customers/{cid}/tags", headers=auth(), json={"add": [tag]})).status == 200
    for cid in ids:
        resp = await client.post(f"/api/customers/{cid}/erase", headers=auth(), json={"requester": "本人"})
        assert resp.status == 200, await resp.text()
    tags = (await (await client.get("/api/tags", headers=auth())).json())["tags"]
    assert not any(t["name"] in ("13811112222", "13833334444") for t in tags)
    records = (await (await client.get("/api/erasures", headers=auth())).json())["erasures"]
    assert len(records) == 2 and all(r["finished_at"] for r in records)


async def test_a_phone_given_with_the_country_code_is_found(client, hub):
    await client.server.app[ORDERS].write([_phoned("P1", "buyer-p1", "13812345678")], None)
    for ident in ("phone:13812345678", "phone:+8613812345678", "phone:+86 138 1234 5678", "phone:86-138-1234-5678"):
        resp = await client.post("/api/erasures", headers=auth(),
                                 json={"identity": ident, "requester": "本人", "dry_run": True})
        assert resp.status == 200, (ident, await resp.text())


async def test_after_an_automatic_merge_the_keyword_tags_go_to_the_merged_customer(client, hub):
    """The same 微信客服 customer in two threads: the second one's profile brought the unionid of an
    Official Account follower, and the first customer was merged into them; the first thread was cached
    as the merged-away customer, and its keyword tags went there, where nothing shows them."""
    from types import SimpleNamespace

    from sqlalchemy import select

    from hub.models import Conversation
    from hub.pipeline import JobContext
    from tests.conftest import OA, WECOM
    conv_t = Conversation.__table__
    await hub.settings.set("keyword_tags", {"过敏": "过敏"})
    profiles: dict = {}

    async def fetch(account, channel, peer):  # noqa: ANN001, ANN202
        return profiles.get((channel, peer), {})
    hub.customers.fetch_profile = fetch

    async def conv(account: str, channel: str, thread: str, peer: str) -> int:
        async with hub.db.write() as conn:
            return (await conn.execute(conv_t.insert().values(account_id=account, channel=channel, thread=thread,
                                                              peer_id=peer, created_at=1.0))).inserted_primary_key[0]

    def said(conv_id: int, account: str, channel: str, peer: str, text: str) -> JobContext:
        return JobContext(1, "in", 0, SimpleNamespace(peer_id=peer, direction="in", conversation_id=conv_id,
                                                      sender="customer", text=text, account_id=account, channel=channel))
    first, follower, second = (await conv(WECOM["id"], "kf", "wkA", "wmKF"), await conv(OA["id"], "oa", "", "oKF"),
                               await conv(WECOM["id"], "kf", "wkB", "wmKF"))
    await hub.customers.identify_step(said(first, WECOM["id"], "kf", "wmKF", "你好"))
    profiles[("oa", "oKF")] = {"unionid": "U-KF"}
    await hub.customers.identify_step(said(follower, OA["id"], "oa", "oKF", "你好"))
    profiles[("kf", "wmKF")] = {"unionid": "U-KF"}
    await hub.customers.identify_step(said(second, WECOM["id"], "kf", "wmKF", "你好"))
    async with hub.db.read() as conn:
        live = (await conn.execute(select(conv_t.c.customer_id).where(conv_t.c.id == follower))).scalar()
    ctx = said(first, WECOM["id"], "kf", "wmKF", "我过敏了")
    await hub.customers.identify_step(ctx)
    assert ctx.state["customer_id"] == live
    assert "过敏" in [t["name"] for t in (await hub.customers.get(live))["tags"]]


async def test_a_phone_as_the_customers_name_is_masked_for_a_supervisor(client, hub):
    """A buyer known only by an order's phone is named after it: the phone identity was masked, the
    name beside it (and in the segment export) was not."""
    from tests.rt_helpers import login, make_user
    await client.server.app[ORDERS].write([_phoned("N1", "", "13812345678")], None)
    nicked = custom.parse_order({  # a buyer whose nick is their phone
        "platform": "custom", "order_id": "N2", "buyer_id": "b-n2", "buyer_nick": "13987654321", "status": "paid",
        "paid_fen": 100, "created_at": 1_700_000_000, "modified_at": 1_700_000_000,
        "items": [{"title": "面霜", "quantity": 1, "price_fen": 100}]})
    await client.server.app[ORDERS].write([nicked], None)
    c = next(c for c in await hub.customers.segment() if not c["name"])
    await make_user(hub, "sue", role="supervisor")
    await login(client, "sue")
    profile = await (await client.get(f"/api/customers/{c['customer_id']}")).json()
    assert "13812345678" not in str(profile), profile
    for fmt in ("", "&format=csv"):
        body = await (await client.get(f"/api/segments?tags={fmt}")).text()
        assert "13987654321" not in body and "139****4321" in body, body


async def test_a_failed_first_profile_fetch_is_tried_again_and_links_the_person(aiohttp_client, hub_config, standin):
    """The unionid comes with the profile, fetched at first contact only: when that fetch failed, the
    person's WeCom and Official Account conversations stayed two customers for good."""
    from sqlalchemy import select

    from hub.app import HUB, create_app
    from hub.clock import FakeClock
    from hub.models import Conversation
    from tests.conftest import OA, WECOM
    from tests.helpers import post
    from tests.wechat_client import PlatformSim, text_xml
    clock = FakeClock()
    client = await aiohttp_client(create_app(hub_config, clock))
    hub = client.server.app[HUB]
    oa = PlatformSim("oa", OA["id"], OA["token"], OA["encoding_aes_key"], OA["receive_id"], clock)
    wecom = PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"], clock)
    standin.profiles["oLate"] = {"unionid": "UNION-LATE", "name": "王"}
    await post(client, oa, text_xml("gh", "oLate", "你好", 1))
    await hub.pipeline.drain()
    real, calls = hub.customers.fetch_profile, []

    async def down_once(account: str, channel: str, peer: str) -> dict:
        calls.append(peer)
        if len(calls) == 1:
            raise TimeoutError("the platform timed out")
        return await real(account, channel, peer)
    hub.customers.fetch_profile = down_once
    standin.profiles["wmLate"] = {"unionid": "UNION-LATE", "name": "王"}
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmLate", "在吗", 2))
    await hub.pipeline.drain()
    conv_t = Conversation.__table__

    async def customers_of() -> set:
        async with hub.db.read() as conn:
            return set((await conn.execute(select(conv_t.c.customer_id).where(
                conv_t.c.peer_id.in_(["oLate", "wmLate"])))).scalars())
    assert len(await customers_of()) == 2
    clock.advance(61)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmLate", "还在吗", 3))
    await hub.pipeline.drain()
    assert len(await customers_of()) == 1 and calls == ["wmLate", "wmLate"]


async def test_a_merge_and_its_undo_are_in_the_audit_log(client, hub):
    """Two customers declared one person (identities, orders and tags moved): it was in no log."""
    for oid, buyer in (("AU1", "buyer-au1"), ("AU2", "buyer-au2")):
        await client.server.app[ORDERS].write([_phoned(oid, buyer, "")], None)
    a, b = sorted(c["customer_id"] for c in await hub.customers.segment())
    merged = await client.post("/api/customers/merge", headers=auth(), json={"source": a, "target": b, "why": "同一人"})
    assert merged.status == 200
    undone = await client.post(f"/api/merges/{(await merged.json())['merge_id']}/undo", headers=auth())
    assert undone.status == 200, await undone.text()
    entries = (await (await client.get("/api/audit", params={"action": "customer"}, headers=auth())).json())["entries"]
    assert {e["action"] for e in entries} >= {"customer.merge", "customer.unmerge"}
