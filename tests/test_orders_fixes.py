"""Order fixes: receiver data masked in live order.updated pushes, partial refunds in spend, several
shops under one Douyin/Youzan app, shop-scoped custom order ids, out-of-range values refused."""
from __future__ import annotations

import hashlib
import json
import time

import pytest
from sqlalchemy import select

from tests.conftest import WECOM
from tests.helpers import post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.order_standin import DY_KEY, DY_SECRET, YZ_ID, YZ_SECRET
from tests.test_orders_sync import FIX, custom_order, env, hook, load, rows  # noqa: F401 - env is a fixture
from tests.wechat_client import text_xml

RECEIVER = {"name": "张三", "phone": "13912345678", "address": "北京市朝阳区建国路88号"}
RECEIVER_KEYS = ("receiver_name", "receiver_phone", "receiver_address")


async def _order_update_seen_by(env, standin, wecom, role):  # noqa: ANN001, ANN202
    client, hub, *_ = env
    await hub.settings.set("default_group", "presales")
    await make_user(hub, "alice", role=role)
    alice = await Agent(server_url(client), await login(client, "alice")).connect()
    try:
        assert (await alice.call("status", {"status": "online"}))["ok"]
        await hook(client, custom_order("S1", buyer_id="yz-buyer", platform="youzan", unionid="UNION-ORD",
                                        receiver=RECEIVER))
        standin.profiles["wmBuyer"] = {"unionid": "UNION-ORD", "name": "王小姐"}
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmBuyer", "我的面霜发货了吗", 30001))
        [bundle] = await alice.wait("session.new")
        await hook(client, custom_order("S1", "shipped", 1716180000, buyer_id="yz-buyer", platform="youzan",
                                        receiver=RECEIVER))
        [event] = await alice.wait("order.updated")
        return bundle["customer"]["orders"][0], event["order"]
    finally:
        await alice.close()


async def test_order_updated_masks_the_receiver_for_an_agent(env, wecom, standin):
    in_bundle, pushed = await _order_update_seen_by(env, standin, wecom, "agent")
    assert [pushed[k] for k in RECEIVER_KEYS] == ["张*", "139****5678", "北京市朝阳区****"]
    assert [pushed[k] for k in RECEIVER_KEYS] == [in_bundle[k] for k in RECEIVER_KEYS]
    assert pushed["status"] == "shipped" and pushed["masked"] is True


async def test_order_updated_shows_the_receiver_to_an_admin(env, wecom, standin):
    _, pushed = await _order_update_seen_by(env, standin, wecom, "admin")
    assert [pushed[k] for k in RECEIVER_KEYS] == ["张三", "13912345678", "北京市朝阳区建国路88号"]


# ---------------------------------------------------------------- partial refunds in spend

async def _spend(hub, buyer_id):  # noqa: ANN001, ANN202
    from hub.models import Customer
    cust_t = Customer.__table__
    (row,) = await rows(hub, buyer_id=buyer_id)
    async with hub.db.read() as conn:
        c = (await conn.execute(select(cust_t).where(cust_t.c.id == row.customer_id))).first()
    return row.customer_id, (c.paid_total_fen, c.vip_level)


async def test_partially_refunded_order_counts_what_was_kept_toward_vip(env):
    from io import BytesIO

    from hub.orders.csv_import import import_csv
    from hub.orders.rules import apply_rules_bulk
    client, hub, sync, _ = env
    await hub.settings.set("vip_threshold_fen", 50000)
    day = int(time.time()) - 86400
    items = [{"title": "面霜", "quantity": 1, "price_fen": 10000},
             {"title": "精华", "quantity": 1, "price_fen": 90000, "refund_status": "refunded"}]
    assert (await hook(client, custom_order("R1", "shipped", paid_fen=100000, buyer_id="r-1", items=items))).status == 200
    cid, single = await _spend(hub, "r-1")
    assert single == (10000, 0)  # 1000.00 paid, 900.00 of it refunded: ¥100 spent, no VIP
    await apply_rules_bulk(hub.db, time.time(), 50000, [cid])  # the bulk SQL path agrees
    assert (await _spend(hub, "r-1"))[1] == (10000, 0)
    csv = ("order_id,buyer_id,status,paid_yuan,created_at,item_title,quantity,price_yuan,refund_status\n"
           f"C1,c-1,shipped,1000.00,{day},面霜,1,100.00,none\n"
           f"C1,c-1,shipped,1000.00,{day},精华,1,900.00,refunded\n"
           f"C2,c-2,shipped,1000.00,{day},精华,1,1000.00,refunded\n")  # floored at 0, never negative
    result = await import_csv(sync, BytesIO(csv.encode()))
    assert (result["imported"], result["rejected_total"]) == (2, 0), result
    assert (await _spend(hub, "c-1"))[1] == (10000, 0)  # a customer the import created: RunStats
    cid2, bulk2 = await _spend(hub, "c-2")
    assert bulk2 == (0, 0)
    await sync.effects.rules(cid2)
    assert (await _spend(hub, "c-2"))[1] == (0, 0)


# ---------------------------------------------------------------- several shops under one app

def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.mark.parametrize("matching_first", [False, True])
async def test_douyin_push_uses_the_entry_of_its_shop(env, matching_first):
    client, hub, sync, shops = env
    detail = load("douyin_order.json")["data"]["shop_order_detail"]
    shops.douyin[detail["order_id"]] = detail
    cfg = shops.sources()
    good = cfg["douyin"]
    entries = [dict(good, shop_id="shop-A", access_token="token-of-shop-A"), dict(good, shop_id=str(detail["shop_id"]))]
    cfg["douyin"] = entries[::-1] if matching_first else entries
    await hub.settings.set("order_sources", cfg)
    body = (FIX / "douyin_push.json").read_bytes()
    headers = {"app-id": DY_KEY, "event-sign": _md5(DY_KEY.encode() + body + DY_SECRET.encode())}
    resp = await client.post("/webhooks/orders/douyin", data=body, headers=headers)
    assert resp.status == 200, await resp.text()
    assert [(r.shop_id, r.status) for r in await rows(hub, platform="douyin")] == [(str(detail["shop_id"]), "shipped")]


async def test_douyin_push_of_a_shop_no_entry_serves_is_refused(env):
    client, hub, sync, shops = env
    detail = load("douyin_order.json")["data"]["shop_order_detail"]
    shops.douyin[detail["order_id"]] = detail
    cfg = shops.sources()
    cfg["douyin"] = [dict(cfg["douyin"], shop_id="shop-A"), dict(cfg["douyin"], shop_id="shop-B")]
    await hub.settings.set("order_sources", cfg)
    body = (FIX / "douyin_push.json").read_bytes()
    headers = {"app-id": DY_KEY, "event-sign": _md5(DY_KEY.encode() + body + DY_SECRET.encode())}
    resp = await client.post("/webhooks/orders/douyin", data=body, headers=headers)
    assert resp.status == 400 and (await resp.json())["error"] == "unknown_shop"
    assert await rows(hub, platform="douyin") == []


async def test_youzan_push_uses_the_entry_of_its_shop(env):
    client, hub, sync, shops = env
    full = load("youzan_order.json")["response"]["full_order_info"]
    shops.youzan[full["order_info"]["tid"]] = full
    body = (FIX / "youzan_push.json").read_bytes()
    kdt_id = str(json.loads(body)["kdt_id"])
    cfg = shops.sources()
    good = cfg["youzan"]
    cfg["youzan"] = [dict(good, shop_id="other-shop", access_token="token-of-other-shop"), dict(good, shop_id=kdt_id)]
    await hub.settings.set("order_sources", cfg)
    sign = {"Event-Sign": _md5(YZ_ID.encode() + body + YZ_SECRET.encode())}
    resp = await client.post("/webhooks/orders/youzan", data=body, headers=sign)
    assert resp.status == 200, await resp.text()
    assert [r.status for r in await rows(hub, platform="youzan")] == ["shipped"]


async def test_a_platform_entry_without_its_secret_verifies_no_push(env):
    """md5(client_id + body + "") is anyone's to compute: an entry with no secret took forged orders."""
    client, hub, sync, shops = env
    cfg = shops.sources(youzan={"api_base": "", "access_token": ""})
    cfg["youzan"] = {k: v for k, v in cfg["youzan"].items() if k != "client_secret"}
    cfg["douyin"] = dict(cfg["douyin"], app_secret="")
    await hub.settings.set("order_sources", cfg)
    body = (FIX / "youzan_push.json").read_bytes()
    resp = await client.post("/webhooks/orders/youzan", data=body, headers={"Event-Sign": _md5(YZ_ID.encode() + body)})
    assert resp.status == 403 and (await resp.json())["error"] == "not_configured"
    body = (FIX / "douyin_push.json").read_bytes()
    resp = await client.post("/webhooks/orders/douyin", data=body,
                             headers={"app-id": DY_KEY, "event-sign": _md5(DY_KEY.encode() + body)})
    assert resp.status == 403 and (await resp.json())["error"] == "not_configured"
    assert await rows(hub, platform="youzan") == [] and await rows(hub, platform="douyin") == []
    from hub.orders.signatures import verify_douyin_push, verify_youzan_push
    assert not verify_youzan_push(body, {"Event-Sign": _md5(YZ_ID.encode() + body)}, YZ_ID, "")
    assert not verify_douyin_push(body, {"event-sign": _md5(DY_KEY.encode() + body)}, DY_KEY, "")


# ---------------------------------------------------------------- custom order ids are per shop

async def test_custom_orders_of_two_shops_with_one_id_are_two_orders(env):
    from io import BytesIO

    from hub.orders.csv_import import import_csv
    client, hub, sync, _ = env
    a = custom_order("1001", buyer_id="u-a", shop_id="shopA", paid_fen=100)
    b = custom_order("1001", buyer_id="u-b", shop_id="shopB", paid_fen=5000, modified=1716170600)
    assert (await hook(client, a)).status == 200 and (await hook(client, b)).status == 200
    assert (await hook(client, custom_order("1001", buyer_id="u-c", paid_fen=7))).status == 200  # no shop: as before
    stored = [(r.order_id, r.shop_id, r.paid_fen) for r in await rows(hub, platform="custom")]
    assert stored == [("shopA:1001", "shopA", 100), ("shopB:1001", "shopB", 5000), ("1001", "", 7)]
    day = int(time.time()) - 86400
    csv = ("order_id,shop_id,buyer_id,status,paid_yuan,created_at,item_title,quantity,price_yuan\n"
           f"1001,shopA,u-a,shipped,1.00,{day},面霜,1,1.00\n"  # an update of shop A's order only
           f"2002,shopA,u-a,paid,1.00,{day},面霜,1,1.00\n"
           f"2002,shopB,u-b,paid,2.00,{day},面霜,1,2.00\n")
    result = await import_csv(sync, BytesIO(csv.encode()))
    assert (result["imported"], result["rejected_total"]) == (3, 0), result
    stored = {(r.order_id, r.status, r.paid_fen) for r in await rows(hub, platform="custom")}
    assert stored == {("shopA:1001", "shipped", 100), ("shopB:1001", "paid", 5000), ("1001", "paid", 7),
                      ("shopA:2002", "paid", 100), ("shopB:2002", "paid", 200)}
    (row,) = await rows(hub, order_id="shopB:1001")
    from hub.orders.store import get_order, recent_orders
    one = await get_order(hub.db, row_id=row.id)
    assert (one["order_id"], one["order_key"], one["shop_id"]) == ("1001", "shopB:1001", "shopB")
    assert sorted(o["order_id"] for o in await recent_orders(hub.db, row.customer_id)) == ["1001", "2002"]
    too_long = custom_order("x" * 60, shop_id="shop-with-a-long-id")
    resp = await hook(client, too_long)
    assert resp.status == 400 and (await resp.json())["field"] == "order_id"


async def test_migration_gives_stored_custom_orders_their_shop_key(db_url):
    from hub import schema
    from hub.db import Database
    from hub.models.orders import OrderRow
    t = OrderRow.__table__
    db = Database(db_url)
    try:
        await schema.upgrade(db, "0010_session_bot_started")
        base = {"customer_id": None, "buyer_id": "", "buyer_nick": "", "status": "paid", "platform_status": "paid",
                "refund_status": "none", "total_fen": 1, "paid_fen": 1, "postage_fen": 0, "discount_fen": 0,
                "logistics_company": "", "tracking_no": "", "receiver_name": "", "receiver_phone": "",
                "receiver_address": "", "created_at": 1.0, "paid_at": None, "shipped_at": None, "completed_at": None,
                "modified_at": 1.0, "raw": "{}", "synced_at": 1.0}
        async with db.write() as conn:
            await conn.execute(t.insert(), [
                dict(base, platform="custom", order_id="1001", shop_id="shopA"),
                dict(base, platform="custom", order_id="1002", shop_id=""),
                dict(base, platform="youzan", order_id="E1", shop_id="10000001"),
                dict(base, platform="custom", order_id="9" * 60, shop_id="long-shop")])
        await schema.upgrade(db)
        async with db.read() as conn:
            keys = sorted((await conn.execute(select(t.c.platform, t.c.order_id))).all())
        assert keys == [("custom", "1002"), ("custom", "9" * 60), ("custom", "shopA:1001"), ("youzan", "E1")]
        await schema.downgrade(db, "0010_session_bot_started")
        async with db.read() as conn:
            assert sorted((await conn.execute(select(t.c.order_id).where(t.c.platform == "custom"))).scalars()) \
                == ["1001", "1002", "9" * 60]
    finally:
        await db.dispose()


# ---------------------------------------------------------------- values the tables cannot hold

@pytest.mark.parametrize("change, field", [
    ({"paid_fen": 10 ** 20}, "paid_fen"),
    ({"items": [{"title": "面霜", "quantity": 1, "price_fen": 9900, "category": "护肤" * 40}]}, "items[0].category"),
    ({"items": [{"title": "面霜", "quantity": 2 ** 40, "price_fen": 1}]}, "items[0].quantity"),
    ({"items": [{"title": "面霜", "quantity": 1, "price_fen": 1, "sku_id": "s" * 65}]}, "items[0].sku_id"),
    ({"buyer_nick": "n" * 192}, "buyer_nick"),
])
async def test_webhook_value_the_tables_cannot_hold_is_a_400(env, change, field):
    client, hub, *_ = env
    resp = await hook(client, custom_order("X1", **change))
    long_id = await hook(client, custom_order("o" * 65))
    assert long_id.status == 400 and (await long_id.json())["field"] == "order_id"
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["field"] == field
    assert await rows(hub) == []


async def test_csv_lines_the_tables_cannot_hold_are_reported_and_skipped(env):
    from io import BytesIO

    from hub.orders.csv_import import import_csv
    client, hub, sync, _ = env
    day = int(time.time()) - 86400
    head = "order_id,buyer_id,status,paid_yuan,created_at,item_title,quantity,price_yuan,category,sku_id\n"
    csv = head + "".join([
        f"C1,b1,paid,1.00,{day},a,1,1.00,ok,\n",
        f"C2,b2,paid,1.00,{day},b,1,1.00,{'x' * 80},\n",
        f"C3,b3,paid,999999999999999.00,{day},c,1,1.00,,\n",
        f"C4,b4,paid,1.00,{day},d,99999999999,1.00,,\n",
        f"C5,b5,paid,1.00,{day},e,1,1.00,,{'s' * 65}\n",
        f"C6,b6,paid,1.00,{day},f,1,1.00,ok,\n"])
    result = await import_csv(sync, BytesIO(csv.encode()))
    assert result["imported"] == 2 and result["rejected_total"] == 4, result
    assert sorted(r.order_id for r in await rows(hub)) == ["C1", "C6"]
    rejected = json.dumps(result, ensure_ascii=False)
    for column in ("category", "paid_yuan", "quantity", "sku_id"):
        assert f'"{column}"' in rejected, (column, result)


# ---------------------------------------------------------------- times a sender got wrong

async def test_a_time_in_milliseconds_is_refused_not_read_as_the_year_56000(env):
    """Read as seconds, 1716170500000 dated the order in the year 56,000, and every later update of it
    was refused as older than what was stored."""
    client, hub, *_ = env
    resp = await hook(client, custom_order("M1", modified=1716170500 * 1000))
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["field"] == "modified_at" and "milliseconds" in body["message"], body
    assert await rows(hub) == []
    late = await hook(client, custom_order("M1", modified=4_200_000_000))  # seconds, but in 2103
    assert late.status == 400 and "after 2100" in (await late.json())["message"]
    assert (await hook(client, custom_order("M1", modified=1716170500))).status == 200
    shipped = await (await hook(client, custom_order("M1", "shipped", modified=1716170560))).json()
    assert shipped["changed"] == 1
    assert [(r.status, r.modified_at) for r in await rows(hub)] == [("shipped", 1716170560)]


async def test_csv_times_in_milliseconds_or_after_2100_are_reported_and_skipped(env):
    from io import BytesIO

    from hub.orders.csv_import import import_csv
    client, hub, sync, _ = env
    head = "order_id,buyer_id,status,paid_yuan,created_at,item_title,quantity,price_yuan\n"
    csv = head + "".join([
        "T1,b1,paid,1.00,1716170500,a,1,1.00\n",
        "T2,b2,paid,1.00,1716170500000,b,1,1.00\n",
        "T3,b3,paid,1.00,2150-01-01 10:00:00,c,1,1.00\n",
        "T4,b4,paid,1.00,2099-12-31 10:00:00,d,1,1.00\n",
        "T5,b5,paid,1.00,2024-05-20T10:00:00+08:00,e,1,1.00\n",
        "T6,b6,paid,1.00,2100-01-01T00:00:00Z,f,1,1.00\n"])
    result = await import_csv(sync, BytesIO(csv.encode()))
    assert result["imported"] == 3 and result["rejected_total"] == 3, result
    assert sorted(r.order_id for r in await rows(hub)) == ["T1", "T4", "T5"]
    why = {r["line"]: r["message"] for r in result["rejected"]}
    assert "milliseconds" in why[3] and "after 2100" in why[4] and "after 2100" in why[7], why


def test_text_limits_are_the_tables():
    from sqlalchemy import String

    from hub.models.orders import OrderItemRow, OrderRow
    from hub.orders.model import ITEM_TEXT_MAX, ORDER_TEXT_MAX
    for table, limits in ((OrderRow.__table__, ORDER_TEXT_MAX), (OrderItemRow.__table__, ITEM_TEXT_MAX)):
        declared = {c.name: c.type.length for c in table.c if isinstance(c.type, String) and c.type.length}
        assert {k: declared[k] for k in limits} == limits
        assert {k for k in declared if k not in limits} <= {"platform", "status", "refund_status"}


async def test_csv_bad_line_of_a_shop_scoped_custom_order_keeps_the_whole_order_out(env):
    from io import BytesIO

    from hub.orders.csv_import import import_csv
    client, hub, sync, _ = env
    day = int(time.time()) - 86400
    csv = ("order_id,shop_id,buyer_id,status,paid_yuan,created_at,item_title,quantity,price_yuan\n"
           f"1001,shopA,u-a,paid,3.00,{day},a,1,1.00\n"
           f"1001,shopA,u-a,paid,3.00,{day},b,many,2.00\n"  # bad: the order is not imported with one line
           f"1001,shopB,u-b,paid,1.00,{day},c,1,1.00\n")
    result = await import_csv(sync, BytesIO(csv.encode()))
    assert (result["imported"], result["rejected_total"]) == (1, 2), result
    assert [r.order_id for r in await rows(hub)] == ["shopB:1001"]


async def test_a_csv_line_with_a_shop_but_no_order_id_is_refused(env):
    """The fast CSV path built the shop's key first: "s1:" is not empty, so a line with no order id
    was stored as order "s1:" (and every such line of the shop merged into it)."""
    from io import BytesIO

    from hub.orders.csv_import import import_csv
    client, hub, sync, _ = env
    day = int(time.time()) - 86400
    csv = ("order_id,shop_id,buyer_id,status,paid_yuan,created_at,item_title,quantity,price_yuan\n"
           f",s1,u-a,paid,1.00,{day},面霜,1,1.00\n"
           f"3003,s1,u-a,paid,1.00,{day},面霜,1,1.00\n")
    result = await import_csv(sync, BytesIO(csv.encode()))
    assert (result["imported"], result["rejected_total"]) == (1, 1), result
    assert [r.order_id for r in await rows(hub, platform="custom")] == ["s1:3003"]


async def test_reveal_finds_a_shops_custom_order_by_the_id_the_api_shows(env):
    from tests.conftest import auth
    client, hub, *_ = env
    assert (await hook(client, custom_order("1001", shop_id="shopA", receiver=RECEIVER))).status == 200
    for body in ({"shop_id": "shopA"}, {"order_key": "shopA:1001"}):
        resp = await client.post("/api/reveal", headers=auth(), json={
            "platform": "custom", "order_id": "1001", "field": "receiver_phone", **body})
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["value"] == RECEIVER["phone"]


async def test_a_custom_order_id_with_a_colon_cannot_take_another_shops_order(env):
    """Shop A's order 1 is stored as "A:1": a shop-less order "A:1" overwrote it (another buyer's)."""
    client, hub, sync, _ = env
    assert (await hook(client, custom_order("1", buyer_id="bob", shop_id="A"))).status == 200
    resp = await hook(client, custom_order("A:1", buyer_id="alice"))
    assert resp.status == 400 and (await resp.json())["field"] == "order_id"
    resp = await hook(client, custom_order("2", buyer_id="carol", shop_id="B:C"))
    assert resp.status == 400 and (await resp.json())["field"] == "shop_id"
    assert [(r.order_id, r.buyer_id) for r in await rows(hub, platform="custom")] == [("A:1", "bob")]
