"""Order text the tables cannot hold: a NUL (PostgreSQL refuses it in text) or a lone surrogate
(``\\ud83d`` in the JSON, half an emoji: no UTF-8) in an order's field is a 400 naming the field (a
skipped line in a CSV), never a 500 that the sender retries for ever; in a field no column takes it
stays in the stored payload, escaped."""
from __future__ import annotations

import json
import time
import urllib.parse

import pytest

from hub.orders.signatures import hub_sign
from tests.order_standin import YZ_ID, YZ_SECRET
from tests import test_orders_sync
from tests.test_orders_sync import FIX, SECRET, custom_order, md5, rows

env = test_orders_sync.env  # the fixture: a hub with order_sources on the stand-in

ITEM = {"title": "面霜", "quantity": 1, "price_fen": 9900}


async def hook_ascii(client, payload):  # noqa: ANN001, ANN201
    """Like tests.test_orders_sync.hook, with the JSON ASCII-escaped (a lone surrogate as "\\ud83d")."""
    body, stamp = json.dumps(payload).encode(), int(time.time())
    return await client.post("/webhooks/orders/hub", data=body, headers={
        "X-Hub-Timestamp": str(stamp), "X-Hub-Signature": hub_sign(SECRET, stamp, body),
        "Content-Type": "application/json"})


@pytest.mark.parametrize("change, field", [
    ({"buyer_nick": "小\u0000王"}, "buyer_nick"), ({"buyer_nick": "小王\ud83d"}, "buyer_nick"),
    ({"order_id": "N\u00001"}, "order_id"), ({"buyer_id": "买家\ud83d"}, "buyer_id"),
    ({"receiver": {"name": "张\u0000三", "phone": "", "address": ""}}, "receiver_name"),
    ({"receiver": {"name": "", "phone": "", "address": "北京\ud83d"}}, "receiver_address"),
    ({"items": [{**ITEM, "title": "面霜\u0000"}]}, "items[0].title"),
    ({"items": [{**ITEM, "title": "面霜\ud83d"}]}, "items[0].title"),
    ({"items": [{**ITEM, "sku_id": "sku\ud83d"}]}, "items[0].sku_id"),
])
async def test_webhook_text_the_tables_cannot_hold_is_a_400(env, change, field):
    client, hub, *_ = env
    resp = await hook_ascii(client, {**custom_order("N1"), **change})
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert body["error"] == "invalid_payload" and body["field"] == field
    assert await rows(hub) == []
    assert (await hook_ascii(client, custom_order("N1", buyer_nick="小王😀"))).status == 200  # a whole emoji is fine


async def test_youzan_pushed_order_with_half_an_emoji_outside_the_columns_is_stored(env):
    client, hub, sync, shops = env
    await hub.settings.set("order_sources", shops.sources(youzan={"api_base": "", "access_token": ""}))
    push = json.loads((FIX / "youzan_push.json").read_bytes())
    msg = json.loads(urllib.parse.unquote_plus(push["msg"]))
    msg["full_order_info"]["remark_info"]["buyer_message"] = "尽快发货\ud83d"  # no column: kept in raw
    push["msg"] = urllib.parse.quote_plus(json.dumps(msg))
    body = json.dumps(push).encode()
    resp = await client.post("/webhooks/orders/youzan", data=body,
                             headers={"Event-Sign": md5(YZ_ID.encode() + body + YZ_SECRET.encode())})
    assert resp.status == 200, await resp.text()
    (row,) = await rows(hub, platform="youzan")
    assert "\\ud83d" in row.raw
    stored = json.loads(row.raw)
    assert stored["full_order_info"]["remark_info"]["buyer_message"] == "尽快发货\ud83d"

    msg["full_order_info"]["buyer_info"]["fans_nickname"] = "小\u0000王"  # a column's: refused
    msg["full_order_info"]["order_info"]["update_time"] = "2024-05-20 18:00:00"
    push.update(msg=urllib.parse.quote_plus(json.dumps(msg)), msg_id="another-message")
    body = json.dumps(push).encode()
    resp = await client.post("/webhooks/orders/youzan", data=body,
                             headers={"Event-Sign": md5(YZ_ID.encode() + body + YZ_SECRET.encode())})
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_payload"
    assert "buyer_nick" in (await resp.json())["field"]


async def test_csv_line_with_a_nul_is_reported_and_skipped(env):
    client, hub, *_ = env
    head = "order_id,buyer_id,status,paid_yuan,created_at,item_title,quantity,price_yuan\n"
    text = head + "C1,b1,paid,99.00,2024-05-20 10:00:00,面\x00霜,1,99.00\nC2,b1,paid,9.00,2024-05-20 10:00:00,面膜,1,9.00\n"
    from tests.conftest import auth
    resp = await client.post("/api/orders/import", data=text.encode(), headers={**auth(), "Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["imported"] == 1
    assert [(r["line"], r["field"]) for r in body["rejected"]] == [(2, "item_title")]
    assert [r.order_id for r in await rows(hub)] == ["C2"]
