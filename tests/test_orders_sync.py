"""Order sync end to end: real HTTP into the app, real database, platform gateways played by
tests/order_standin.py. Pushes (signatures, dedup, re-fetch), the generic webhook, no-regress
updates, pollers (backward paging, watermark, a failure between fetch and commit), CSV import,
customer linking, rule tags, and orders reaching the agent's console (session bundle, live push)."""
from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import pathlib
import time

import pytest
from sqlalchemy import func, select

from hub.models import Identity
from hub.models.orders import OrderItemRow, OrderPushMessage, OrderRow, OrderWatermark
from hub.orders.api import ORDERS
from hub.orders.signatures import hub_sign
from tests.conftest import WECOM, auth
from tests.helpers import post
from tests.order_standin import DY_KEY, DY_SECRET, YZ_ID, YZ_SECRET, OrderStandin, gmt8_epoch
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import text_xml

FIX = pathlib.Path(__file__).resolve().parent / "fixtures" / "orders"
SECRET = "hub-webhook-secret"
orders_t, items_t = OrderRow.__table__, OrderItemRow.__table__


def load(name: str):  # noqa: ANN201
    return json.loads((FIX / name).read_text(encoding="utf-8"))


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


@pytest.fixture
async def env(client, hub, aiohttp_server):
    """(client, hub, sync, stand-in) with order_sources pointing at the stand-in."""
    shops = OrderStandin()
    server = await aiohttp_server(shops.app())
    shops.base_url = str(server.make_url("")).rstrip("/")
    await hub.settings.set("order_sources", shops.sources())
    return client, hub, client.server.app[ORDERS], shops


async def rows(hub, **where):  # noqa: ANN001, ANN201
    q = select(orders_t)
    for k, v in where.items():
        q = q.where(orders_t.c[k] == v)
    async with hub.db.read() as conn:
        return (await conn.execute(q.order_by(orders_t.c.id))).all()


async def count(hub, table) -> int:  # noqa: ANN001
    async with hub.db.read() as conn:
        return (await conn.execute(select(func.count()).select_from(table))).scalar()


def custom_order(order_id: str, status: str = "paid", modified: int = 1716170500, **kw) -> dict:  # noqa: ANN003
    body = {"order_id": order_id, "status": status, "paid_fen": 9900, "created_at": int(time.time()) - 86400,
            "modified_at": modified, "buyer_id": "buyer-1",
            "items": [{"title": "面霜", "quantity": 1, "price_fen": 9900, "category": "护肤"}]}
    body.update(kw)
    return body


async def hook(client, payload, secret=SECRET, stamp=None, msg_id=""):  # noqa: ANN001, ANN201
    """POST ``payload`` to the generic webhook, signed with ``secret`` at ``stamp``."""
    body = json.dumps(payload, ensure_ascii=False).encode()
    stamp = int(time.time()) if stamp is None else stamp
    headers = {"X-Hub-Timestamp": str(stamp), "X-Hub-Signature": "sha256=" + hub_sign(secret, stamp, body),
               "Content-Type": "application/json"}
    if msg_id:
        headers["X-Hub-Message-Id"] = msg_id
    return await client.post("/webhooks/orders/hub", data=body, headers=headers)


# ---------------------------------------------------------------- pushes

async def test_youzan_push_signed_refetched_deduped(env):
    client, hub, sync, shops = env
    full = load("youzan_order.json")["response"]["full_order_info"]
    shops.youzan[full["order_info"]["tid"]] = full
    body = (FIX / "youzan_push.json").read_bytes()
    forged = body.replace(b'"sign": "7', b'"sign": "0')  # neither the body sign nor the header matches
    bad = await client.post("/webhooks/orders/youzan", data=forged, headers={"Event-Sign": "0" * 32})
    assert bad.status == 401 and await count(hub, orders_t) == 0
    resp = await client.post("/webhooks/orders/youzan", data=body)  # body `sign` = md5(client_id + msg + secret)
    assert resp.status == 200 and await resp.json() == {"code": 0, "msg": "success"}
    good = {"Event-Sign": md5(YZ_ID.encode() + body + YZ_SECRET.encode())}
    again = await client.post("/webhooks/orders/youzan", data=body, headers=good)  # same msg_id: a repeat
    assert again.status == 200
    [row] = await rows(hub, platform="youzan")
    assert (row.order_id, row.status, row.paid_fen, row.receiver_phone) == \
        ("E20240520100040000000001", "shipped", 28170, "$dGVs$1$")  # ciphertext kept as sent
    assert [c for c in shops.calls if c[0] == "youzan.trade.get"] == [("youzan.trade.get", {"tid": row.order_id})]
    assert await count(hub, items_t) == 2


async def test_youzan_push_uses_pushed_order_without_api_and_names_bad_fields(env):
    client, hub, sync, shops = env
    await hub.settings.set("order_sources", shops.sources(youzan={"api_base": "", "access_token": ""}))
    body = (FIX / "youzan_push.json").read_bytes()
    sign = {"Event-Sign": md5(YZ_ID.encode() + body + YZ_SECRET.encode())}
    assert (await client.post("/webhooks/orders/youzan", data=body, headers=sign)).status == 200
    assert [r.status for r in await rows(hub, platform="youzan")] == ["shipped"] and shops.calls == []
    payload = json.loads(body)
    payload["msg_id"] = None
    bad = json.dumps(payload).encode()
    resp = await client.post("/webhooks/orders/youzan", data=bad,
                             headers={"Event-Sign": md5(YZ_ID.encode() + bad + YZ_SECRET.encode())})
    assert resp.status == 400 and (await resp.json())["field"] == "msg_id"
    await hub.settings.set("order_sources", {})
    assert (await client.post("/webhooks/orders/youzan", data=body, headers=sign)).status == 403


async def test_douyin_push_batch_refetches_and_dedups(env):
    client, hub, sync, shops = env
    detail = load("douyin_order.json")["data"]["shop_order_detail"]
    shops.douyin[detail["order_id"]] = detail
    body = (FIX / "douyin_push.json").read_bytes()
    headers = {"app-id": DY_KEY, "event-sign": md5(DY_KEY.encode() + body + DY_SECRET.encode())}
    assert (await client.post("/webhooks/orders/douyin", data=body, headers={**headers, "event-sign": "f" * 32})
            ).status == 401
    resp = await client.post("/webhooks/orders/douyin", data=body, headers=headers)
    assert resp.status == 200 and await resp.json() == {"code": 0, "msg": "success"}
    assert (await client.post("/webhooks/orders/douyin", data=body, headers=headers)).status == 200
    assert len([c for c in shops.calls if c[0] == "order.orderDetail"]) == 2  # two messages, each once
    [row] = await rows(hub, platform="douyin")
    assert (row.status, row.paid_fen, row.tracking_no) == ("shipped", 13990, "SF0000000000001")
    verify = json.dumps([{"tag": "0", "msg_id": "", "data": "{}"}]).encode()
    ok = await client.post("/webhooks/orders/douyin", data=verify,
                           headers={"event-sign": md5(DY_KEY.encode() + verify + DY_SECRET.encode())})
    assert ok.status == 200
    broken = b'[{"tag": "101", "msg_id": "m9", "data": "{\\"shop_id\\": 1}"}]'
    resp = await client.post("/webhooks/orders/douyin", data=broken,
                             headers={"event-sign": md5(DY_KEY.encode() + broken + DY_SECRET.encode())})
    assert resp.status == 400 and (await resp.json())["field"] == "[0].data.p_id"


async def test_refetch_failure_is_retried_not_lost(env):
    client, hub, sync, shops = env
    detail = load("douyin_order.json")["data"]["shop_order_detail"]
    shops.douyin[detail["order_id"]] = detail
    shops.fail_once.add(("order.orderDetail", detail["order_id"]))
    body = (FIX / "douyin_push.json").read_bytes()
    headers = {"event-sign": md5(DY_KEY.encode() + body + DY_SECRET.encode())}
    assert (await client.post("/webhooks/orders/douyin", data=body, headers=headers)).status == 502
    # the message whose re-fetch failed is not recorded (the redelivery is not taken for a repeat); the
    # batch's other one, fetched beside it, is
    assert await count(hub, OrderPushMessage.__table__) == 1
    assert (await client.post("/webhooks/orders/douyin", data=body, headers=headers)).status == 200
    assert await count(hub, OrderPushMessage.__table__) == 2
    assert [r.status for r in await rows(hub)] == ["shipped"]


# ---------------------------------------------------------------- generic webhook, no-regress

async def test_hub_webhook_signature_and_bad_payloads(env):
    client, hub, *_ = env
    assert (await hook(client, custom_order("A1"), secret="wrong")).status == 401
    assert (await hook(client, custom_order("A1"), stamp=int(time.time()) - 3600)).status == 401
    bad = custom_order("A2")
    del bad["paid_fen"]
    resp = await hook(client, bad)
    assert resp.status == 400 and (await resp.json())["field"] == "paid_fen"
    wrong_type = [{"title": "x", "quantity": "1", "price_fen": 1}]
    batch = {"orders": [custom_order("B1"), custom_order("B2", items=wrong_type)]}
    resp = await hook(client, batch)
    assert resp.status == 400 and (await resp.json())["field"] == "orders[1].items[0].quantity"
    assert await count(hub, orders_t) == 0  # nothing half-written
    resp = await hook(client, {"orders": [custom_order("B1"), custom_order("B2")]}, msg_id="m-1")
    assert (await resp.json()) == {"ok": True, "duplicate": False, "changed": 2, "unchanged": 0}
    resp = await hook(client, {"orders": [custom_order("B1", "shipped", 1716170900)]}, msg_id="m-1")
    assert (await resp.json())["duplicate"] is True
    assert [r.status for r in await rows(hub)] == ["paid", "paid"]


async def test_late_and_repeated_updates_never_regress(env):
    client, hub, *_ = env
    await hook(client, custom_order("C1", "shipped", 1716170900, logistics={"company": "顺丰", "tracking_no": "SF1"}))
    late = await hook(client, custom_order("C1", "paid", 1716170600))  # older copy arrives late
    assert (await late.json())["unchanged"] == 1
    newer_but_back = await hook(client, custom_order("C1", "paid", 1716171000))  # newer time, earlier status
    assert (await newer_but_back.json())["unchanged"] == 1
    same_time = custom_order("C1", "shipped", 1716170900, items=[{"title": "别的", "quantity": 9, "price_fen": 1}])
    assert (await (await hook(client, same_time)).json())["unchanged"] == 1  # items kept: not newer
    await hook(client, custom_order("C1", "completed", 1716172000))
    [row] = await rows(hub, order_id="C1")
    assert (row.status, row.modified_at) == ("completed", 1716172000)
    async with hub.db.read() as conn:
        titles = (await conn.execute(select(items_t.c.title).where(items_t.c.order_row_id == row.id))).scalars().all()
    assert titles == ["面霜"]


# ---------------------------------------------------------------- pollers

def tb_trade(n: int, modified: str, status: str = "WAIT_SELLER_SEND_GOODS") -> dict:
    trade = copy.deepcopy(load("taobao_order.json")["trade_fullinfo_get_response"]["trade"])
    tid = str(3912345678900000000 + n)
    trade.update(tid=int(tid), tid_str=tid, modified=modified, status=status, buyer_open_uid=f"tb-buyer-{n % 2}")
    for o in trade["orders"]["order"]:
        o["status"] = status
    return trade


async def watermark(hub, source: str):  # noqa: ANN001, ANN201
    t = OrderWatermark.__table__
    async with hub.db.read() as conn:
        return (await conn.execute(select(t).where(t.c.source == source))).first()


def gmt8(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch + 8 * 3600))


async def test_taobao_poller_pages_backwards_and_resumes_after_a_failure(env):
    client, hub, sync, shops = env
    now = int(time.time())
    for n in range(5):
        trade = tb_trade(n, gmt8(now - 3600 + 60 * n))
        shops.taobao[trade["tid_str"]] = trade
    await hub.settings.set("order_sources", shops.sources(
        taobao={"page_size": 2, "since": now - 7200, "overlap": 120, "lag": 0}, jd={"enabled": False}))
    # pages (desc by modified): 1 = [4, 3], 2 = [2, 1], 3 = [0]; walked 3, 2, 1; page 2 fails mid-way
    shops.fail_once.add(("taobao.trade.fullinfo.get", tb_trade(1, "")["tid_str"]))
    [result] = await sync.poll_once()
    assert "HTTP 500" in result["error"]
    assert [r.order_id[-1] for r in await rows(hub, platform="taobao")] == ["0"]  # page 3 only
    mark = await watermark(hub, "taobao:tb-shop")
    assert mark.modified_at == now - 7200 and json.loads(mark.cursor)["next_page"] == 2
    [result] = await sync.poll_once()
    assert result["orders"] == 4 and result["windows"] >= 1  # the resumed window, then up to now
    assert sorted(r.order_id[-1] for r in await rows(hub, platform="taobao")) == list("01234")
    pages = [int(p["page_no"]) for m, p in shops.calls if m == "taobao.trades.sold.increment.get"]
    assert pages[:6] == [1, 3, 2, 1, 2, 1]  # total first, then from the last page back; resumed at page 2
    mark = await watermark(hub, "taobao:tb-shop")
    assert mark.modified_at >= now and json.loads(mark.cursor) == {}
    assert len({r.customer_id for r in await rows(hub, platform="taobao")}) == 2  # two buyers
    changed = tb_trade(3, gmt8(time.time() - 30), "WAIT_BUYER_CONFIRM_GOODS")
    shops.taobao[changed["tid_str"]] = changed
    [result] = await sync.poll_once()
    assert result["changed"] == 1 and [r.status for r in await rows(hub, order_id=changed["tid_str"])] == ["shipped"]


async def test_jd_poller(env):
    client, hub, sync, shops = env
    info = load("jd_order.json")["jingdong_pop_order_get_responce"]["orderDetailInfo"]["orderInfo"]
    for n in range(3):
        o = copy.deepcopy(info)
        o.update(orderId=f"29000000000{n}", modified=f"2024-05-21 08:4{n}:00", open_id_buyer="jd-buyer")
        shops.jd[o["orderId"]] = o
    await hub.settings.set("order_sources", shops.sources(
        jd={"page_size": 2, "since": gmt8_epoch("2024-05-21 08:00:00")}, taobao={"enabled": False}))
    [result] = await sync.poll_once()
    assert (result["orders"], result["changed"]) == (3, 3)
    got = await rows(hub, platform="jd")
    assert {r.status for r in got} == {"shipped"} and len({r.customer_id for r in got}) == 1
    assert {r.shop_id for r in got} == {"jd-shop"}
    assert (await sync.poll_once())[0]["changed"] == 0  # overlap re-reads are harmless


# ---------------------------------------------------------------- CSV import

CSV_HEAD = ("platform,order_id,buyer_id,status,paid_yuan,created_at,modified_at,item_title,quantity,price_yuan,"
            "category,receiver_phone,unionid\n")


async def test_csv_import_reports_bad_lines_and_imports_the_rest(env):
    client, hub, *_ = env
    text = CSV_HEAD + (
        "custom,K1,b1,paid,99.00,2024-05-20 10:00:00,,面霜,1,99.00,护肤,,\n"
        "custom,K2,b2,paid,12.345,2024-05-20 10:00:00,,面膜,1,12.00,护肤,,\n"  # line 3: bad money
        "custom,K3,b3,paid,50.00,2024-05-20 10:00:00,,洁面,1,30.00,护肤,,\n"
        "custom,K3,b3,paid,50.00,2024-05-20 10:00:00,,化妆棉,two,20.00,护肤,,\n"  # line 5: K3 is rejected whole
        "custom,K4,b1,completed,20.00,2024-05-21 10:00:00,,\"眼霜, 15ml\",1,20.00,护肤,,\n")
    denied = await client.post("/api/orders/import", data=text.encode())
    assert denied.status == 401
    resp = await client.post("/api/orders/import", data=text.encode(), headers={**auth(), "Content-Type": "text/csv"})
    result = await resp.json()
    assert (result["imported"], result["lines"], result["rejected_total"]) == (2, 5, 3), result
    assert {(r["line"], r["field"]) for r in result["rejected"]} == {(3, "paid_yuan"), (5, "quantity"), (4, "order_id")}
    assert sorted(r.order_id for r in await rows(hub)) == ["K1", "K4"]
    k1, k4 = await rows(hub)
    assert k1.customer_id == k4.customer_id  # same buyer, same customer
    again = await (await client.post("/api/orders/import", data=text.encode(), headers=auth())).json()
    assert (again["imported"], again["unchanged"]) == (0, 2)
    missing = await client.post("/api/orders/import", data=b"order_id,status\nx,paid\n", headers=auth())
    assert missing.status == 400 and (await missing.json())["field"] == "paid_yuan"


async def test_linking_by_buyer_and_plain_phone_and_rule_tags(env):
    client, hub, *_ = env
    await hook(client, custom_order("P1", buyer_id="tb-x", platform="taobao", receiver={"phone": "13800138000"},
                                    paid_fen=150000))
    await hook(client, custom_order("P2", buyer_id="jd-y", platform="jd", receiver={"phone": "+86 138-0013-8000"},
                                    paid_fen=60000, status="completed"))
    await hook(client, custom_order("P3", buyer_id="yz-z", platform="youzan", receiver={"phone": "138****8000"}))
    p1, p2, p3 = [await rows(hub, order_id=o) for o in ("P1", "P2", "P3")]
    assert p1[0].customer_id == p2[0].customer_id != p3[0].customer_id  # masked phones are no key
    profile = await (await client.get(f"/api/customers/{p1[0].customer_id}", headers=auth())).json()
    assert {"VIP", "复购", "护肤"} <= {t["name"] for t in profile["tags"]}
    assert (profile["vip_level"], profile["paid_total_fen"], profile["order_count"]) == (1, 210000, 2)
    assert [o["order_id"] for o in profile["orders"]] == ["P1", "P2"] or len(profile["orders"]) == 2
    async with hub.db.read() as conn:
        phones = (await conn.execute(select(Identity.__table__.c.value).where(
            Identity.__table__.c.kind == "phone"))).scalars().all()
    assert phones == ["13800138000"]


# ---------------------------------------------------------------- the agent's console

async def test_session_shows_orders_and_order_changes_are_pushed_live(env, wecom, standin):
    client, hub, *_ = env
    await hub.settings.set("default_group", "presales")
    await make_user(hub, "alice")
    alice = await Agent(server_url(client), await login(client, "alice")).connect()
    try:
        assert (await alice.call("status", {"status": "online"}))["ok"]
        await hook(client, custom_order("S1", buyer_id="yz-buyer", platform="youzan", unionid="UNION-ORD"))
        standin.profiles["wmBuyer"] = {"unionid": "UNION-ORD", "name": "王小姐"}  # WeCom knows the unionid
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmBuyer", "我的面霜发货了吗", 30001))
        [bundle] = await alice.wait("session.new")
        assert [o["order_id"] for o in bundle["customer"]["orders"]] == ["S1"]
        assert bundle["customer"]["orders"][0]["items"][0]["title"] == "面霜"
        await hook(client, custom_order("S1", "shipped", 1716180000, buyer_id="yz-buyer", platform="youzan",
                                        logistics={"company": "顺丰", "tracking_no": "SF123"}))
        [event] = await alice.wait("order.updated")
        assert event["session_id"] == bundle["session"]["id"]
        assert event["customer_id"] == bundle["customer"]["customer_id"]
        assert (event["order"]["status"], event["order"]["tracking_no"]) == ("shipped", "SF123")
    finally:
        await alice.close()


async def test_orders_follow_a_customer_merge(env):
    client, hub, *_ = env
    await hook(client, custom_order("M1", buyer_id="m-a"))
    await hook(client, custom_order("M2", buyer_id="m-b"))
    (a,), (b,) = await rows(hub, order_id="M1"), await rows(hub, order_id="M2")
    merged = await hub.customers.merge("test", a.customer_id, b.customer_id, "same person")
    assert {r.customer_id for r in await rows(hub)} == {b.customer_id}
    assert sorted(o["order_id"] for o in merged["customer"]["orders"]) == ["M1", "M2"]
    await hub.customers.unmerge("test", merged["merge_id"])
    assert [r.customer_id for r in await rows(hub)] == [a.customer_id, b.customer_id]


# ---------------------------------------------------------------- the bulk path keeps the single path's rules

async def test_csv_bulk_path_matches_single_path(env):
    from io import BytesIO

    from hub.models import Customer
    from hub.orders.csv_import import import_csv
    client, hub, sync, _ = env
    day = int(time.time()) - 86400
    await hook(client, custom_order("W1", buyer_id="w-a", unionid="UNION-CSV"))  # customer A owns the unionid
    lines = [CSV_HEAD.rstrip("\n") + ",buyer_phone"]
    for n in range(12):  # b0..b3 repeat; b1 has a plain phone; y1 later shows the unionid of A -> merge
        lines.append(f"taobao,T{n},b{n % 4},completed,{900 + n}.00,{day},,面霜,1,{900 + n}.00,护肤,138****0000,,"
                     + ("13900139000" if n % 4 == 1 else ""))
    lines.append(f"jd,J1,y1,paid,10.00,{day},,面膜,1,10.00,面膜,,,")
    lines.append(f"jd,J2,y1,shipped,20.00,{day},,面膜,1,20.00,面膜,,UNION-CSV,")
    result = await import_csv(sync, BytesIO(("\n".join(lines) + "\n").encode()), batch_lines=5)
    assert (result["imported"], result["rejected_total"]) == (14, 0), result
    (w1,) = await rows(hub, order_id="W1")
    assert {r.customer_id for r in await rows(hub, buyer_id="y1")} == {w1.customer_id}  # merged into A
    newer = CSV_HEAD + f"taobao,T0,b0,refunded,900.00,{day},{day + 60},面霜,1,900.00,护肤,,\n"
    again = await import_csv(sync, BytesIO(newer.encode()))
    assert (again["imported"], [r.status for r in await rows(hub, order_id="T0")]) == (1, ["refunded"])
    cust_t = Customer.__table__
    async with hub.db.read() as conn:
        bulk = {r.id: (r.paid_total_fen, r.order_count, r.vip_level) for r in (await conn.execute(
            select(cust_t).where(cust_t.c.merged_into.is_(None)))).all()}
    tags = {cid: {t["name"] for t in (await hub.customers.get(cid))["tags"]} for cid in bulk}
    for cid in bulk:  # the single path (CustomerService.apply_order_rules) agrees with the bulk one
        await sync.effects.rules(cid)
    async with hub.db.read() as conn:
        single = {r.id: (r.paid_total_fen, r.order_count, r.vip_level) for r in (await conn.execute(
            select(cust_t).where(cust_t.c.merged_into.is_(None)))).all()}
    assert bulk == single
    assert tags == {cid: {t["name"] for t in (await hub.customers.get(cid))["tags"]} for cid in bulk}
    assert any({"VIP", "复购", "护肤"} <= t for t in tags.values())
    (b1,) = {r.customer_id for r in await rows(hub, buyer_id="b1")}
    async with hub.db.read() as conn:
        phone_owner = (await conn.execute(select(Identity.__table__.c.customer_id).where(
            Identity.__table__.c.value == "13900139000"))).scalar()
    assert phone_owner == b1


def test_fast_csv_rows_equal_the_adapter():
    import csv as csvmod
    import io

    from hub.orders.csv_rows import RowParser
    from hub.orders.custom import CSV_COLUMNS, parse_csv_row
    from hub.orders.errors import PayloadError
    base = {c: "" for c in CSV_COLUMNS} | {"order_id": "A1", "status": "paid", "paid_yuan": "9.90", "quantity": "2",
                                            "created_at": "2024-05-20 10:00:40", "item_title": "T", "price_yuan": "5"}
    variants = [{}, {"platform": "jd", "total_yuan": "10", "modified_at": "1716170500"},
                {"created_at": "2024-05-20T10:00:40+08:00"}, {"paid_yuan": "-1.50"}, {"paid_yuan": "1.234"},
                {"created_at": "2024-02-30 10:00:00"}, {"created_at": "2024-05-20 24:00:00"}, {"quantity": "0"},
                {"quantity": "１"}, {"status": "WAIT"},
                {"refund_status": "refunded", "paid_at": " 2024-05-20 10:01:00 "},
                {"item_paid_yuan": "8.00", "postage_yuan": "1.2", "discount_yuan": "0.30"}, {"price_yuan": ""},
                {"created_at": "1716170440", "completed_at": "2024-05-21 00:00:00"}, {"paid_yuan": "１.00"}]
    header = list(CSV_COLUMNS) + ["unionid"]
    parser = RowParser(header)
    for v in variants:
        row = base | v
        fields = next(csvmod.reader(io.StringIO(",".join(row[c] for c in CSV_COLUMNS) + ",u1")))
        try:
            slow = parse_csv_row(dict(zip(header, fields)), 7)
        except PayloadError as exc:
            with pytest.raises(PayloadError) as got:
                parser(fields, 7)
            assert (got.value.field, got.value.line) == (exc.field, exc.line)
            continue
        fast = parser(fields, 7)
        assert fast == slow and fast.raw["row"]["unionid"] == "u1"


def douyin_batch(detail: dict, n: int) -> bytes:
    """A push of ``n`` orders (copies of ``detail`` under their own ids), one message each."""
    msgs = [{"tag": "101", "msg_id": f"dy-batch-{i}", "data": json.dumps(
        {"p_id": int(detail["order_id"]) + i, "shop_id": detail["shop_id"], "order_status": 2})} for i in range(n)]
    return json.dumps(msgs).encode()


async def test_a_douyin_batch_is_answered_within_the_platforms_five_seconds(env, monkeypatch):
    """Douyin waits 5 s for a push's answer. Twelve orders that take 0.5 s each to re-fetch took 6 s
    one after another; they are fetched several at a time, and what is not done within the budget goes
    on after a 503 (the platform redelivers; what was done is then a duplicate, fetched once)."""
    from hub.orders import api as orders_api
    client, hub, sync, shops = env
    detail = load("douyin_order.json")["data"]["shop_order_detail"]
    for i in range(12):
        shops.douyin[str(int(detail["order_id"]) + i)] = {**detail, "order_id": str(int(detail["order_id"]) + i)}
    shops.delay = 0.5
    body = douyin_batch(detail, 12)
    headers = {"event-sign": md5(DY_KEY.encode() + body + DY_SECRET.encode())}
    started = time.monotonic()
    resp = await client.post("/webhooks/orders/douyin", data=body, headers=headers)
    assert resp.status == 200 and time.monotonic() - started < 3.0, time.monotonic() - started
    assert len(await rows(hub, platform="douyin")) == 12

    monkeypatch.setattr(orders_api, "DOUYIN_BUDGET_S", 0.2)  # a slower platform: the budget runs out
    for i in range(12, 20):
        shops.douyin[str(int(detail["order_id"]) + i)] = {**detail, "order_id": str(int(detail["order_id"]) + i)}
    body = douyin_batch(detail, 20)
    headers = {"event-sign": md5(DY_KEY.encode() + body + DY_SECRET.encode())}
    started = time.monotonic()
    resp = await client.post("/webhooks/orders/douyin", data=body, headers=headers)
    assert resp.status == 503 and time.monotonic() - started < 1.0
    for _ in range(100):  # the rest goes on in the background
        if len(await rows(hub, platform="douyin")) == 20:
            break
        await asyncio.sleep(0.1)
    assert len(await rows(hub, platform="douyin")) == 20
    assert (await client.post("/webhooks/orders/douyin", data=body, headers=headers)).status == 200  # redelivered
    assert len([c for c in shops.calls if c[0] == "order.orderDetail"]) == 20  # each order fetched once
