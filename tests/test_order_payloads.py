"""Order adapters, payload side: each platform's order payload (Taobao, JD, Youzan, Douyin) and the
hub's own custom JSON and CSV rows → a normalised Order, bad payloads naming the offending field, and
the robustness check that any mutated payload gives an Order or a PayloadError, nothing else. Samples:
tests/fixtures/orders/ (invented values that follow the field names in /work/shared/ecommerce-orders.md).
The fixture helpers here (FIXTURES, load, utc, field_of, _JUNK) are shared with test_order_push.py and
test_order_model.py."""
from __future__ import annotations

import copy
import csv
import io
import json
import pathlib
from datetime import datetime, timezone

import pytest

from hub.orders import Order, PayloadError, parse_order
from hub.orders import custom, douyin, jd, taobao, youzan

FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures" / "orders"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def utc(text: str) -> float:
    """An ISO UTC time → epoch seconds, computed independently of the code under test."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def field_of(exc: pytest.ExceptionInfo) -> str:
    return exc.value.field


# ---------------------------------------------------------------- Taobao

def test_taobao_full_order():
    payload = load("taobao_order.json")
    o = parse_order("taobao", payload)
    assert (o.platform, o.order_id, o.shop_id) == ("taobao", "3912345678901234567", "示例旗舰店")
    assert (o.buyer_id, o.buyer_nick) == ("AAH-example-uid", "t**1")
    assert (o.status, o.platform_status) == ("shipped", "WAIT_BUYER_CONFIRM_GOODS")
    assert (o.total_fen, o.paid_fen, o.postage_fen, o.discount_fen) == (21800, 21507, 800, 1093)
    assert o.created_at == utc("2024-05-20 02:00:40") == 1716170440.0  # "2024-05-20 10:00:40" GMT+8
    assert o.paid_at == utc("2024-05-20 02:01:02")
    assert o.shipped_at == utc("2024-05-21 01:30:00")
    assert o.modified_at == utc("2024-05-21 07:12:09")
    assert o.completed_at is None
    assert (o.logistics_company, o.tracking_no) == ("中通快递", "ZT0000000000001,ZT0000000000002")
    assert (o.receiver_name, o.receiver_phone, o.receiver_address) == ("张**", "*******1234", "文**路**号")
    a, b = o.items
    assert (a.sub_order_id, a.product_id, a.sku_id, a.title, a.quantity, a.price_fen, a.paid_fen) == \
        ("3912345678901234568", "680000000001", "5000000000001", "示例T恤", 1, 10900, 10400)
    assert (b.quantity, b.price_fen, b.paid_fen, b.refund_status) == (2, 5450, 10307, "requested")
    assert (a.status, a.refund_status) == ("shipped", "none")
    assert o.refund_status == "requested"  # the most pressing item state
    assert o.raw is payload


def test_taobao_accepts_bare_trade_and_simplified_orders_and_shop_override():
    trade = load("taobao_order.json")["trade_fullinfo_get_response"]["trade"]
    trade["orders"] = trade["orders"]["order"]  # simplify=true shape
    del trade["tid_str"]
    o = taobao.parse_order(trade, shop_id="shop-7")
    assert o.order_id == "3912345678901234567" and o.shop_id == "shop-7" and len(o.items) == 2
    assert o == parse_order("taobao", load("taobao_order.json"), shop_id="shop-7")


@pytest.mark.parametrize("status,expected", [
    ("WAIT_BUYER_PAY", "pending_payment"), ("WAIT_SELLER_SEND_GOODS", "paid"), ("SELLER_CONSIGNED_PART", "shipped"),
    ("TRADE_FINISHED", "completed"), ("TRADE_CLOSED", "refunded"), ("TRADE_CLOSED_BY_TAOBAO", "closed"),
])
def test_taobao_status_map(status, expected):
    trade = load("taobao_order.json")["trade_fullinfo_get_response"]["trade"]
    trade["status"] = status
    for sub in trade["orders"]["order"]:
        del sub["status"]  # items fall back to the trade status
    o = taobao.parse_order(trade)
    assert (o.status, o.platform_status) == (expected, status)
    assert {i.status for i in o.items} == {expected}


def _taobao_trade() -> dict:
    return load("taobao_order.json")["trade_fullinfo_get_response"]["trade"]


@pytest.mark.parametrize("mutate,field", [
    (lambda t: t.pop("payment"), "payment"),
    (lambda t: t.pop("modified"), "modified"),
    (lambda t: (t.pop("tid_str"), t.pop("tid")), "tid"),
    (lambda t: (t.pop("tid_str"), t.__setitem__("tid", 3.9e18)), "tid"),
    (lambda t: t.__setitem__("payment", 215.07), "payment"),
    (lambda t: t.__setitem__("total_fee", "218.001"), "total_fee"),
    (lambda t: t["orders"]["order"][1].__setitem__("payment", "1.2.3"), "orders.order[1].payment"),
    (lambda t: t["orders"]["order"][1].__setitem__("divide_order_fee", "abc"), "orders.order[1].divide_order_fee"),
    (lambda t: t["orders"]["order"][0].__setitem__("num", "1"), "orders.order[0].num"),
    (lambda t: t["orders"]["order"][0].pop("title"), "orders.order[0].title"),
    (lambda t: t["orders"]["order"][0].__setitem__("refund_status", "WHATEVER"), "orders.order[0].refund_status"),
    (lambda t: t.__setitem__("status", "ALL_WAIT_PAY"), "status"),  # a query filter, never a status
    (lambda t: t.__setitem__("created", "2024/05/20 10:00:40"), "created"),
    (lambda t: t.__setitem__("orders", {"order": []}), "orders.order"),
    (lambda t: t.__setitem__("orders", "x"), "orders"),
])
def test_taobao_bad_payloads_name_the_field(mutate, field):
    trade = _taobao_trade()
    mutate(trade)
    with pytest.raises(PayloadError) as exc:
        taobao.parse_order(trade)
    assert field_of(exc) == field


# ---------------------------------------------------------------- JD

def test_jd_full_order():
    o = parse_order("jd", load("jd_order.json"))
    assert (o.order_id, o.shop_id, o.buyer_id, o.buyer_nick) == ("290000000001", "10001", "o-example-buyer", "jd_example***")
    assert (o.status, o.platform_status, o.refund_status) == ("shipped", "WAIT_GOODS_RECEIVE_CONFIRM", "unknown")
    assert (o.total_fen, o.paid_fen, o.postage_fen, o.discount_fen) == (39800, 38400, 600, 2000)
    assert o.created_at == utc("2024-05-20 02:00:00")
    assert o.paid_at == utc("2024-05-20 02:00:30")
    assert o.modified_at == utc("2024-05-21 00:45:12")
    assert o.completed_at is None  # "0001-01-01 00:00:00" means not set
    assert (o.logistics_company, o.tracking_no) == ("467", "JDVA00000000001,JDVA00000000002")
    assert (o.receiver_name, o.receiver_phone, o.receiver_address) == ("李**", "138****0000", "北京朝阳区三环以内***")
    a, b = o.items
    assert (a.sku_id, a.product_id, a.title, a.quantity, a.price_fen) == ("100012345678", "10001234", "示例耳机 黑色", 1, 19900)
    assert (b.quantity, b.price_fen, b.paid_fen, b.sub_order_id) == (2, 9950, 19900, "")  # itemTotal = quantity


@pytest.mark.parametrize("state,expected", [
    ("WAIT_SELLER_STOCK_OUT", "paid"), ("FINISHED_L", "completed"), ("TRADE_CANCELED", "closed"),
    ("LOCKED", "refunding"), ("POP_ORDER_PAUSE", "paid"),
])
def test_jd_status_map(state, expected):
    payload = load("jd_order.json")
    payload["jingdong_pop_order_get_responce"]["orderDetailInfo"]["orderInfo"]["orderState"] = state
    assert jd.parse_order(payload).status == expected


def _jd_info() -> dict:
    return load("jd_order.json")["jingdong_pop_order_get_responce"]["orderDetailInfo"]["orderInfo"]


@pytest.mark.parametrize("mutate,field", [
    (lambda i: i.pop("orderId"), "orderId"),
    (lambda i: i.__setitem__("orderPayment", 384.0), "orderPayment"),
    (lambda i: i.__setitem__("orderTotalPrice", "3 98"), "orderTotalPrice"),
    (lambda i: i["itemInfoList"][1].__setitem__("itemTotal", "two"), "itemInfoList[1].itemTotal"),
    (lambda i: i["itemInfoList"][0].__setitem__("jdPrice", "1,99"), "itemInfoList[0].jdPrice"),
    (lambda i: i.__setitem__("orderState", "WAIT_BUYER_PAY"), "orderState"),
    (lambda i: i.__setitem__("modified", "0001-01-01 00:00:00"), "modified"),
    (lambda i: i.__setitem__("consigneeInfo", ["x"]), "consigneeInfo"),
    (lambda i: i["consigneeInfo"].__setitem__("mobile", 13800000000), "consigneeInfo.mobile"),
    (lambda i: i.__setitem__("itemInfoList", [1]), "itemInfoList[0]"),
])
def test_jd_bad_payloads_name_the_field(mutate, field):
    info = _jd_info()
    mutate(info)
    with pytest.raises(PayloadError) as exc:
        jd.parse_order(info)
    assert field_of(exc) == field


# ---------------------------------------------------------------- Youzan

def test_youzan_full_order():
    o = parse_order("youzan", load("youzan_order.json"))
    assert (o.order_id, o.shop_id, o.buyer_id) == ("E20240520100040000000001", "10000001", "exampleYzOpenId0001")
    assert (o.status, o.platform_status, o.refund_status) == ("shipped", "WAIT_BUYER_CONFIRM_GOODS", "none")
    assert (o.total_fen, o.paid_fen, o.postage_fen, o.discount_fen) == (29800, 28170, 1000, 2630)
    # ciphertext kept exactly as it came
    assert (o.buyer_nick, o.receiver_name, o.receiver_phone, o.receiver_address) == \
        ("$ZXhhbXBsZQ==$1$", "$bmFtZQ==$1$", "$dGVs$1$", "$YWRkcg==$1$")
    assert o.created_at == utc("2024-05-20 02:00:40")
    assert o.shipped_at == utc("2024-05-20 08:20:00")
    assert o.modified_at == utc("2024-05-20 08:20:01")
    assert o.completed_at is None  # "" = not set
    assert (o.logistics_company, o.tracking_no) == ("", "")  # carrier fields unverified in the facts
    a, b = o.items
    assert (a.sub_order_id, a.product_id, a.sku_id, a.quantity, a.price_fen, a.paid_fen) == \
        ("3000000000000001", "400000001", "500000001", 1, 14900, 13914)
    assert (b.quantity, b.price_fen, b.paid_fen) == (2, 7450, 13256)


@pytest.mark.parametrize("status,refund_state,expected,refund", [
    ("WAIT_BUYER_PAY", 0, "pending_payment", "none"), ("TRADE_PAID", 0, "paid", "none"),
    ("WAIT_CONFIRM", 0, "paid", "none"), ("TRADE_SUCCESS", 2, "completed", "refunded"),
    ("WAIT_SELLER_SEND_GOODS", 11, "refunding", "refunding"), ("TRADE_CLOSED", 12, "refunded", "refunded"),
    ("TRADE_CLOSED", 0, "closed", "none"),
])
def test_youzan_status_and_refund_state(status, refund_state, expected, refund):
    payload = load("youzan_order.json")
    info = payload["response"]["full_order_info"]["order_info"]
    info["status"], info["refund_state"] = status, refund_state
    o = youzan.parse_order(payload)
    assert (o.status, o.refund_status, o.platform_status) == (expected, refund, status)
    assert {i.refund_status for i in o.items} == {"unknown" if refund_state in (1, 2) else refund}


@pytest.mark.parametrize("mutate,field", [
    (lambda f: f.pop("pay_info"), "pay_info"),
    (lambda f: f["pay_info"].__setitem__("payment", "２８１.７０"), "pay_info.payment"),  # full-width digits
    (lambda f: f["orders"][0].__setitem__("price", "149.005"), "orders[0].price"),
    (lambda f: f["orders"][1].__setitem__("num", 0), "orders[1].num"),
    (lambda f: f["order_info"].pop("tid"), "order_info.tid"),
    (lambda f: f["order_info"].__setitem__("refund_state", "0"), "order_info.refund_state"),
    (lambda f: f["order_info"].__setitem__("refund_state", 99), "order_info.refund_state"),
    (lambda f: f["order_info"].__setitem__("update_time", "2024-02-30 10:00:00"), "order_info.update_time"),
    (lambda f: f["buyer_info"].__setitem__("yz_open_id", ["x"]), "buyer_info.yz_open_id"),
])
def test_youzan_bad_payloads_name_the_field(mutate, field):
    full = load("youzan_order.json")["response"]["full_order_info"]
    mutate(full)
    with pytest.raises(PayloadError) as exc:
        youzan.parse_order({"full_order_info": full})
    assert field_of(exc) == field


# ---------------------------------------------------------------- Douyin

def test_douyin_full_order():
    o = parse_order("douyin", load("douyin_order.json"))
    assert (o.order_id, o.shop_id, o.buyer_id, o.buyer_nick) == ("6920000000000000001", "4460000", "1@#ExampleOpenId==", "")
    assert (o.status, o.platform_status, o.refund_status) == ("shipped", "3", "requested")
    assert (o.total_fen, o.paid_fen, o.postage_fen, o.discount_fen) == (14490, 13990, 0, 500)
    assert (o.created_at, o.paid_at, o.shipped_at, o.modified_at) == (1716170440.0, 1716170462.0, 1716258600.0, 1716258601.0)
    assert o.completed_at is None  # finish_time 0
    assert (o.logistics_company, o.tracking_no) == ("顺丰速运", "SF0000000000001")
    assert (o.receiver_name, o.receiver_phone, o.receiver_address) == \
        ("#example-name-cipher#", "$$example-cipher$$", "#example-cipher#")
    a, b = o.items
    assert (a.sub_order_id, a.product_id, a.sku_id, a.title, a.quantity, a.price_fen, a.paid_fen) == \
        ("6920000000000000001", "3600000000001", "1750000000001", "示例面霜 50ml", 1, 9990, 9490)
    assert (b.sub_order_id, b.quantity, b.price_fen, b.paid_fen, b.refund_status) == \
        ("6920000000000000002", 2, 2250, 4500, "requested")


def test_douyin_masked_fallback_and_refund_codes():
    d = load("douyin_order.json")["data"]["shop_order_detail"]
    for key in ("encrypt_post_receiver", "encrypt_post_tel"):
        d[key] = ""
    d["post_addr"]["encrypt_detail"] = ""
    d["main_status"] = 22  # refunded after shipment while order_status stays 3
    d["sku_order_list"][0]["after_sale_info"] = {"after_sale_status": 28, "refund_status": 1}  # buyer cancelled
    d["sku_order_list"][1]["after_sale_info"] = {"after_sale_status": 12, "refund_status": 3}
    o = douyin.parse_order(d)
    assert (o.receiver_name, o.receiver_phone, o.receiver_address) == ("王*", "138****0000", "科技园****")
    assert (o.status, o.platform_status) == ("refunded", "22")
    assert [i.refund_status for i in o.items] == ["closed", "refunded"]
    assert o.refund_status == "refunded"


@pytest.mark.parametrize("mutate,field", [
    (lambda d: d.__setitem__("pay_amount", "13990"), "pay_amount"),  # fen are integers, not strings
    (lambda d: d.__setitem__("order_amount", 144.9), "order_amount"),
    (lambda d: d.pop("sku_order_list"), "sku_order_list"),
    (lambda d: d.pop("update_time"), "update_time"),
    (lambda d: (d.pop("main_status"), d.__setitem__("order_status", 77)), "order_status"),
    (lambda d: d["sku_order_list"][1].__setitem__("item_num", True), "sku_order_list[1].item_num"),
    (lambda d: d["sku_order_list"][1]["after_sale_info"].__setitem__("after_sale_status", 999),
     "sku_order_list[1].after_sale_info.after_sale_status"),
    (lambda d: d["logistics_info"][0].__setitem__("ship_time", "1716258600"), "logistics_info[0].ship_time"),
    (lambda d: d["post_addr"].__setitem__("encrypt_detail", {"x": 1}), "post_addr.encrypt_detail"),
])
def test_douyin_bad_payloads_name_the_field(mutate, field):
    d = load("douyin_order.json")["data"]["shop_order_detail"]
    mutate(d)
    with pytest.raises(PayloadError) as exc:
        douyin.parse_order(d)
    assert field_of(exc) == field


def test_douyin_error_envelope():
    with pytest.raises(PayloadError) as exc:
        douyin.parse_order({"err_no": 30002, "message": "no permission"})
    assert field_of(exc) == "err_no"


# ---------------------------------------------------------------- robustness: only PayloadError escapes

_JUNK = (None, [], {}, "", "x", 1.5, True, -1, "9" * 40)


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for k, v in node.items():
            yield prefix + (k,)
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node[:2]):
            yield prefix + (i,)
            yield from _paths(v, prefix + (i,))


@pytest.mark.parametrize("platform", ["taobao", "jd", "youzan", "douyin"])
def test_any_mutation_gives_an_order_or_payload_error(platform):
    base = load(f"{platform}_order.json")
    checked = 0
    for p in list(_paths(base)):
        for junk in _JUNK + ("DELETE",):
            payload = copy.deepcopy(base)
            parent = payload
            for k in p[:-1]:
                parent = parent[k]
            if junk == "DELETE":
                if isinstance(parent, list):
                    continue
                del parent[p[-1]]
            else:
                parent[p[-1]] = junk
            try:
                assert isinstance(parse_order(platform, payload), Order)
            except PayloadError:
                pass
            checked += 1
    assert checked > 200
    for junk in _JUNK:
        with pytest.raises(PayloadError):
            parse_order(platform, junk)


def test_unknown_platform():
    with pytest.raises(PayloadError) as exc:
        parse_order("pinduoduo", {})
    assert field_of(exc) == "platform"


# ---------------------------------------------------------------- custom JSON and CSV

def test_custom_json_order():
    o = parse_order("custom", {
        "order_id": 1001, "status": "paid", "paid_fen": 9900, "discount_fen": 1000,
        "created_at": "2024-05-20T10:00:40+08:00", "modified_at": "2024-05-20 10:01:03", "paid_at": 1716170462,
        "receiver": {"name": "张**", "phone": "138****0000", "address": "杭州市***"},
        "logistics": {"company": "中通快递", "tracking_no": "ZT1"},
        "items": [{"title": "T恤", "quantity": 1, "price_fen": 10900, "paid_fen": 9900, "category": "服装"}]})
    assert (o.platform, o.order_id, o.status, o.platform_status, o.refund_status) == ("custom", "1001", "paid", "paid", "none")
    assert (o.total_fen, o.paid_fen, o.discount_fen) == (10900, 9900, 1000)
    assert (o.created_at, o.modified_at, o.paid_at) == (1716170440.0, 1716170463.0, 1716170462.0)
    assert o.items[0].category == "服装" and o.items[0].status == "paid"
    assert o.receiver_phone == "138****0000" and o.tracking_no == "ZT1"


@pytest.mark.parametrize("change,field", [
    ({"status": "shipping"}, "status"), ({"paid_fen": "99.00"}, "paid_fen"), ({"paid_fen": None}, "paid_fen"),
    ({"created_at": "2024-05-20T10:00:40"}, "created_at"), ({"items": [{"title": "x", "quantity": 1}]}, "items[0].price_fen"),
    ({"platform": "amazon"}, "platform"),
])
def test_custom_json_errors(change, field):
    base = {"order_id": "A", "status": "paid", "paid_fen": 1, "created_at": 1716170440, "modified_at": 1716170440}
    with pytest.raises(PayloadError) as exc:
        custom.parse_order({**base, **change})
    assert field_of(exc) == field


CSV_TEXT = """order_id,platform,status,paid_yuan,postage_yuan,created_at,shipped_at,receiver_phone,item_title,sku_id,quantity,price_yuan,item_paid_yuan,refund_status,category,tracking_no
A-1,custom,shipped,207.07,8.00,2024-05-20 10:00:40,2024-05-21 09:30:00,138****0000,示例T恤,S1,1,109.00,104.00,none,服装,ZT1
A-1,custom,shipped,207.07,8.00,2024-05-20 10:00:40,2024-05-21 09:30:00,138****0000,示例袜子,S2,2,54.50,,WAIT,服装,ZT1
B-2,taobao,paid,10.00,,1716170440,,,贴纸,,3,3.335,,,,
"""


def test_csv_rows_and_merge():
    rows = list(csv.DictReader(io.StringIO(CSV_TEXT)))
    first = custom.parse_csv_row(rows[0], 2)
    assert (first.order_id, first.status, first.paid_fen, first.postage_fen) == ("A-1", "shipped", 20707, 800)
    assert first.created_at == utc("2024-05-20 02:00:40")
    assert first.modified_at == first.shipped_at == utc("2024-05-21 01:30:00")  # latest given time
    assert first.items[0].paid_fen == 10400 and first.items[0].category == "服装"
    with pytest.raises(PayloadError) as exc:
        custom.parse_csv_row(rows[1], 3)  # refund_status "WAIT" is not a normalised value
    assert (exc.value.field, exc.value.line) == ("refund_status", 3)
    assert "line 3" in str(exc.value)
    rows[1]["refund_status"] = "requested"
    with pytest.raises(PayloadError) as exc:
        custom.parse_csv_row(rows[2], 4)  # 3.335 yuan is not a whole number of fen
    assert (exc.value.field, exc.value.line) == ("price_yuan", 4)
    rows[2]["price_yuan"] = "3.30"
    merged = custom.merge_csv_orders(custom.parse_csv_row(r, n) for n, r in enumerate(rows, start=2))
    a, b = merged
    assert [i.title for i in a.items] == ["示例T恤", "示例袜子"]
    assert a.items[1].paid_fen == 10900 and a.total_fen == 21800 and a.refund_status == "requested"
    assert (b.platform, b.order_id, b.total_fen, b.items[0].quantity) == ("taobao", "B-2", 990, 3)


def test_csv_merge_refuses_disagreeing_lines():
    rows = list(csv.DictReader(io.StringIO(CSV_TEXT)))[:2]
    rows[1]["refund_status"], rows[1]["status"] = "none", "completed"
    with pytest.raises(PayloadError) as exc:
        custom.merge_csv_orders([custom.parse_csv_row(rows[0], 2), custom.parse_csv_row(rows[1], 3)])
    assert (exc.value.field, exc.value.line) == ("status", 3)


@pytest.mark.parametrize("column,value", [("quantity", "1.5"), ("quantity", "0"), ("order_id", ""),
                                          ("paid_yuan", "¥207"), ("created_at", "yesterday"), ("platform", "amazon")])
def test_csv_bad_cells(column, value):
    row = next(csv.DictReader(io.StringIO(CSV_TEXT)))
    row[column] = value
    with pytest.raises(PayloadError) as exc:
        custom.parse_csv_row(row, 7)
    assert (exc.value.field, exc.value.line) == (column, 7)
