"""Youzan's older order pushes name their type in upper case (``TRADE_ORDER_STATE`` for a status change,
``TRADE_ORDER_REFUND``, ``TRADE`` for the v1 format; the 4.0 push says ``trade_TradePaid``): they were
answered success and dropped, so an app subscribed to them never synced an order."""
from __future__ import annotations

import json
import urllib.parse

import pytest

from tests import test_orders_sync
from tests.order_standin import YZ_ID, YZ_SECRET
from tests.test_orders_sync import load, md5, rows

env = test_orders_sync.env  # the fixture: a hub with order_sources on the stand-in


def legacy_push(tid: str, kind: str, msg_id: str) -> bytes:
    msg = {"update_time": "2024-05-20 16:20:01", "tid": tid, "status": "WAIT_BUYER_CONFIRM_GOODS", "payment": "281.70"}
    return json.dumps({"client_id": YZ_ID, "id": tid, "kdt_id": 10000001, "mode": 1, "msg_id": msg_id,
                       "msg": urllib.parse.quote(json.dumps(msg, separators=(",", ":"))), "sendCount": 0,
                       "status": "WAIT_BUYER_CONFIRM_GOODS", "test": False, "type": kind,
                       "version": 1716193201}).encode()


@pytest.mark.parametrize("kind", ["TRADE_ORDER_STATE", "TRADE_ORDER_REFUND", "TRADE"])
async def test_upper_case_trade_push_refetches_the_order(env, kind):
    client, hub, sync, shops = env
    full = load("youzan_order.json")["response"]["full_order_info"]
    tid = full["order_info"]["tid"]
    shops.youzan[tid] = full
    body = legacy_push(tid, kind, "legacy-1")
    resp = await client.post("/webhooks/orders/youzan", data=body,
                             headers={"Event-Sign": md5(YZ_ID.encode() + body + YZ_SECRET.encode())})
    assert resp.status == 200 and await resp.json() == {"code": 0, "msg": "success"}
    assert [(r.order_id, r.status) for r in await rows(hub, platform="youzan")] == [(tid, "shipped")]
    assert [c for c in shops.calls if c[0] == "youzan.trade.get"] == [("youzan.trade.get", {"tid": tid})]


async def test_a_push_that_is_no_order_is_still_ignored(env):
    client, hub, sync, shops = env
    body = legacy_push("230597762487315507", "SCRM_CUSTOMER_CARD", "card-1")
    resp = await client.post("/webhooks/orders/youzan", data=body,
                             headers={"Event-Sign": md5(YZ_ID.encode() + body + YZ_SECRET.encode())})
    assert resp.status == 200 and await rows(hub, platform="youzan") == [] and shops.calls == []
