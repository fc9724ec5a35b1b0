"""Looking an order up by an id with a NUL (``%00`` in the URL) was a 500 on PostgreSQL (it cannot
compare text with a NUL); no stored order has one, so it is a 404."""
from __future__ import annotations

import pytest

from tests import test_orders_sync
from tests.conftest import auth
from tests.test_orders_sync import custom_order, hook

env = test_orders_sync.env  # the fixture: a hub with order_sources on the stand-in


@pytest.mark.parametrize("url", ["/api/orders/custom/A1%00", "/api/orders/custom/A1?shop_id=%00",
                                 "/api/orders/cus%00tom/A1"])
async def test_order_id_with_a_nul_is_a_404(env, url):
    client, hub, *_ = env
    assert (await hook(client, custom_order("A1"))).status == 200
    assert (await client.get("/api/orders/custom/A1", headers=auth())).status == 200
    resp = await client.get(url, headers=auth())
    assert resp.status == 404, await resp.text()
    assert (await resp.json())["error"] == "unknown_order"
