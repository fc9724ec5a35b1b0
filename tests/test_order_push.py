"""Order adapters, push side: the signatures on incoming order pushes (Youzan and Douyin md5 signs,
the hub's own HMAC-SHA256 webhook with its timestamp window and secret rotation) and the push envelopes
parsed into messages (ids, event types, modified hints, test pushes), with bad envelopes naming the
field and mutated envelopes giving messages or a PayloadError. Samples: tests/fixtures/orders/*_push.json."""
from __future__ import annotations

import copy
import hashlib
import hmac
import json

import pytest

from hub.orders import PayloadError, parse_douyin_push, parse_youzan_push
from hub.orders import youzan
from hub.orders.signatures import (hub_sign, verify_douyin_push, verify_hub_webhook, verify_youzan_push)
from tests.test_order_payloads import _JUNK, FIXTURES, field_of, utc

YZ_ID, YZ_SECRET = "example-client-id", "example-client-secret"
DY_KEY, DY_SECRET = "7100000000000000001", "dy-app-secret"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ---------------------------------------------------------------- signatures

def test_youzan_signatures():
    body = (FIXTURES / "youzan_push.json").read_bytes()
    good = md5(YZ_ID.encode() + body + YZ_SECRET.encode())
    assert verify_youzan_push(body, {"Event-Sign": good}, YZ_ID, YZ_SECRET)
    assert verify_youzan_push(body, {"event-sign": good.upper()}, YZ_ID, YZ_SECRET)  # header names are case-insensitive
    assert verify_youzan_push(body, {}, YZ_ID, YZ_SECRET)  # body `sign` = md5(client_id + raw msg + secret)
    assert not verify_youzan_push(body, {}, YZ_ID, "wrong-secret")
    tampered = body.replace(b'"test": false', b'"test": true')
    assert not verify_youzan_push(tampered.replace(b'"sign": "', b'"sign": "0'), {"Event-Sign": good}, YZ_ID, YZ_SECRET)
    payload = json.loads(body)
    payload["msg"] = payload["msg"].replace("281.70", "1.00")
    assert not verify_youzan_push(json.dumps(payload).encode(), {}, YZ_ID, YZ_SECRET)
    assert not verify_youzan_push(b"not json", {"Event-Sign": "é" * 32}, YZ_ID, YZ_SECRET)


def test_douyin_signatures():
    body = (FIXTURES / "douyin_push.json").read_bytes()
    good = md5(DY_KEY.encode() + body + DY_SECRET.encode())
    assert verify_douyin_push(body, {"event-sign": good, "app-id": DY_KEY}, DY_KEY, DY_SECRET)
    assert verify_douyin_push(body, {"Event-Sign": good}, DY_KEY, DY_SECRET)
    assert not verify_douyin_push(body, {"event-sign": good, "app-id": "someone-else"}, DY_KEY, DY_SECRET)
    assert not verify_douyin_push(body + b" ", {"event-sign": good}, DY_KEY, DY_SECRET)
    flipped = good[:-1] + ("1" if good[-1] == "0" else "0")
    assert not verify_douyin_push(body, {"event-sign": flipped}, DY_KEY, DY_SECRET)
    assert not verify_douyin_push(body, {}, DY_KEY, DY_SECRET)
    reserialised = json.dumps(json.loads(body)).encode()  # re-serialised JSON breaks the signature
    assert not verify_douyin_push(reserialised, {"event-sign": good}, DY_KEY, DY_SECRET)


def test_hub_webhook_signature():
    body, secret, now = b'{"order_id":"A-1"}', "whsec-1", 1716170440.0
    sig = hmac.new(secret.encode(), b"1716170400." + body, hashlib.sha256).hexdigest()
    assert hub_sign(secret, 1716170400, body) == sig
    ok = {"X-Hub-Timestamp": "1716170400", "X-Hub-Signature": sig}
    assert verify_hub_webhook(body, ok, secret, now)
    assert verify_hub_webhook(body, {"x-hub-timestamp": "1716170400", "x-hub-signature": "sha256=" + sig}, secret, now)
    assert verify_hub_webhook(body, ok, ["old-secret", secret], now)  # rotation
    assert not verify_hub_webhook(body, ok, "wrong", now)
    assert not verify_hub_webhook(body, ok, "", now)
    assert not verify_hub_webhook(body + b" ", ok, secret, now)
    assert not verify_hub_webhook(body, {**ok, "X-Hub-Timestamp": "1716170401"}, secret, now)
    assert not verify_hub_webhook(body, ok, secret, now=1716170400.0 + 301)  # too old
    assert not verify_hub_webhook(body, ok, secret, now=1716170400.0 - 301)  # from the future
    assert verify_hub_webhook(body, ok, secret, now=1716170400.0 + 300)
    assert not verify_hub_webhook(body, {"X-Hub-Signature": sig}, secret, now)
    assert not verify_hub_webhook(body, {**ok, "X-Hub-Timestamp": "1716170400.0"}, secret, now)


# ---------------------------------------------------------------- push envelopes

def test_parse_youzan_push():
    m = parse_youzan_push((FIXTURES / "youzan_push.json").read_bytes())
    assert (m.platform, m.message_id, m.event_type, m.order_id, m.shop_id, m.platform_status, m.test) == \
        ("youzan", "0f1e2d3c-example", "trade_TradeSellerShip", "E20240520100040000000001", "10000001",
         "WAIT_BUYER_CONFIRM_GOODS", False)
    assert m.modified_hint == utc("2024-05-20 08:20:01")  # msg's order_info.update_time
    assert m.dedup_key == ("youzan", "0f1e2d3c-example")
    assert youzan.parse_order(m.data).order_id == m.order_id  # decoded msg is a full_order_info payload


@pytest.mark.parametrize("body,field", [
    (b"{not json", "$"), (b"[]", "$"), (b'{"type": "trade_TradePaid", "id": "E1"}', "msg_id"),
    (b'{"msg_id": "m", "id": "E1"}', "type"), (b'{"msg_id": "m", "type": "t", "msg": "%7Bbad"}', "msg"),
    (b'{"msg_id": "m", "type": "t", "test": "no"}', "test"), (b'{"msg_id": 1.5, "type": "t"}', "msg_id"),
])
def test_parse_youzan_push_errors(body, field):
    with pytest.raises(PayloadError) as exc:
        parse_youzan_push(body)
    assert field_of(exc) == field


def test_parse_douyin_push():
    paid, shipped = parse_douyin_push((FIXTURES / "douyin_push.json").read_bytes())
    assert (paid.message_id, paid.event_type, paid.order_id, paid.shop_id, paid.platform_status, paid.modified_hint) == \
        ("7390000000000000001", "101", "6920000000000000001", "4460000", "2", 1716170462.0)
    assert (shipped.event_type, shipped.platform_status, shipped.modified_hint) == ("102", "3", 1716258601.0)
    assert shipped.data["logistics_msg"]["logistics_code"] == "SF0000000000001"
    (verify,) = parse_douyin_push(b'[{"tag": "0", "msg_id": "", "data": ""}]')
    assert verify.test and verify.order_id == ""
    # the push is a hint: a status or a time as a string of digits (as SDKs send the search's filters) is read
    (hint,) = parse_douyin_push(b'[{"tag": "101", "msg_id": "9", "data": '
                                b'"{\\"p_id\\": 69, \\"order_status\\": \\"2\\", \\"pay_time\\": \\"1716170462\\"}"}]')
    assert (hint.order_id, hint.platform_status, hint.modified_hint) == ("69", "2", 1716170462.0)


@pytest.mark.parametrize("body,field", [
    (b"nope", "$"), (b'"x"', "$"), (b'[{"tag": "101", "msg_id": "1", "data": "{bad"}]', "[0].data"),
    (b'[{"tag": "101", "msg_id": "1", "data": "{}"}]', "[0].data.p_id"),
    (b'[{"tag": "101", "data": "{\\"p_id\\": 1}"}]', "[0].msg_id"),
    (b'[{"tag": "0"}, {"tag": "101", "msg_id": "2", "data": "[1]"}]', "[1].data"),
    (b'[{"tag": "101", "msg_id": "1", "data": "{\\"p_id\\": 1, \\"pay_time\\": \\"x\\"}"}]', "[0].data.pay_time"),
    (b"[7]", "[0]"),
])
def test_parse_douyin_push_errors(body, field):
    with pytest.raises(PayloadError) as exc:
        parse_douyin_push(body)
    assert field_of(exc) == field


def test_push_mutations_give_messages_or_payload_error():
    yz = json.loads((FIXTURES / "youzan_push.json").read_bytes())
    dy = json.loads((FIXTURES / "douyin_push.json").read_bytes())
    for key in list(yz):
        for junk in _JUNK:
            try:
                parse_youzan_push(json.dumps({**yz, key: junk}).encode())
            except PayloadError:
                pass
    for i in range(len(dy)):
        for key in list(dy[i]) + ["p_id", "order_status", "update_time"]:
            for junk in _JUNK:
                messages = copy.deepcopy(dy)
                if key in messages[i]:
                    messages[i][key] = junk
                else:
                    data = json.loads(messages[i]["data"])
                    data[key] = junk
                    messages[i]["data"] = json.dumps(data)
                try:
                    parse_douyin_push(json.dumps(messages).encode())
                except PayloadError:
                    pass
