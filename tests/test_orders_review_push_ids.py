"""A push whose message id is longer than order_push_messages.message_id (128) was a 500 on PostgreSQL
at the dedup record, so the platform redelivered it for ever; the id is made to fit as inbound
platform values are (``archive.store.fit``: a digest of the whole kept), and dedup still holds."""
from __future__ import annotations

import json

from tests import test_orders_sync
from tests.order_standin import YZ_ID, YZ_SECRET
from tests.test_orders_sync import FIX, load, md5, rows

env = test_orders_sync.env  # the fixture: a hub with order_sources on the stand-in


async def test_long_push_message_ids_fit_and_still_dedup(env):
    client, hub, sync, shops = env
    full = load("youzan_order.json")["response"]["full_order_info"]
    shops.youzan[full["order_info"]["tid"]] = full

    async def push(msg_id: str):  # noqa: ANN202
        payload = json.loads((FIX / "youzan_push.json").read_bytes())
        payload["msg_id"] = msg_id
        body = json.dumps(payload).encode()
        return await client.post("/webhooks/orders/youzan", data=body,
                                 headers={"Event-Sign": md5(YZ_ID.encode() + body + YZ_SECRET.encode())})

    def fetches() -> int:
        return len([c for c in shops.calls if c[0] == "youzan.trade.get"])

    long_id = "m" * 300
    assert (await push(long_id)).status == 200
    assert [r.status for r in await rows(hub, platform="youzan")] == ["shipped"] and fetches() == 1
    assert (await push(long_id)).status == 200 and fetches() == 1  # a redelivery: a duplicate
    assert (await push(long_id[:-1] + "x")).status == 200 and fetches() == 2  # differs past the cut: another
    assert (await push("short-id")).status == 200 and fetches() == 3
