"""Bodies from outside with JSON too deep for Python's parser or integers of hundreds of digits, and
query numbers in other scripts' digits: a 400 (401 before a signature is checked), never a 500."""
from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from hub import safe_json
from tests.conftest import auth
from tests.order_standin import YZ_ID, YZ_SECRET
from tests.test_orders_sync import env  # noqa: F401 - the fixture: a hub with order_sources on the stand-in

DEEP = b"[" * 20_000 + b"]" * 20_000


def test_safe_json_refuses_what_the_standard_parser_dies_on():
    with pytest.raises(ValueError):
        safe_json.loads(DEEP)
    with pytest.raises(ValueError):
        safe_json.loads('{"modified_at": ' + "9" * 400 + "}")
    assert safe_json.loads('{"tid": 2052541093921234567, "x": [1, -2]}') == {"tid": 2052541093921234567, "x": [1, -2]}


async def test_webhooks_and_the_api_answer_hostile_json_with_a_4xx(env):
    client, hub, sync, shops = env
    resp = await client.post("/webhooks/orders/youzan", data=DEEP, headers={"Event-Sign": "0" * 32})
    assert resp.status == 401  # the body sign was looked for in it: a 500 for anyone
    body = DEEP
    resp = await client.post("/webhooks/orders/youzan", data=body,
                             headers={"Event-Sign": hashlib.md5(YZ_ID.encode() + body + YZ_SECRET.encode()).hexdigest()})
    assert resp.status == 400
    ts = str(int(time.time()))
    for payload in (DEEP, json.dumps({"platform": "custom", "order_id": "H1", "buyer_id": "b", "status": "paid",
                                      "paid_fen": 1, "created_at": 1_700_000_000}).replace(
                        '"created_at": 1700000000', '"created_at": 1700000000, "modified_at": ' + "9" * 400).encode()):
        sig = hmac.new(b"hub-webhook-secret", ts.encode() + b"." + payload, hashlib.sha256).hexdigest()
        resp = await client.post("/webhooks/orders/hub", data=payload,
                                 headers={"X-Hub-Timestamp": ts, "X-Hub-Signature": sig})
        assert resp.status == 400, await resp.text()
    resp = await client.post("/api/channels", data=DEEP, headers={**auth(), "Content-Type": "application/json"})
    assert resp.status == 400
    for path in ("/api/channels/1/stats?days=²", "/api/channels/1/qr.svg?scale=²"):
        assert (await client.get(path, headers=auth())).status in (400, 404)
