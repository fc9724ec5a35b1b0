"""Push receivers' signature checks and push-envelope parsing (pure: no I/O, ``now`` is passed in).

Every check works on the RAW request body bytes (re-serialised JSON breaks the signatures, facts
§4.1 D4) and compares with ``hmac.compare_digest``. Checks return ``bool``; the parsers raise
``PayloadError`` naming the field.

* Youzan (facts §3.1, Y8–Y10): header ``Event-Sign`` = ``md5_hex(client_id + raw_body + client_secret)``;
  the body field ``sign`` = ``md5_hex(client_id + msg + client_secret)`` with ``msg`` exactly as
  received (still URL-encoded). The sources disagree on which one is current, so
  ``verify_youzan_push`` accepts a push if EITHER matches (both need the secret). Other headers:
  ``Event-Type`` (e.g. ``trade_TradePaid``), ``Client-Id`` [U].
* Douyin 抖店 (facts §4.1, D3–D5): header ``event-sign`` = ``md5_hex(app_key + raw_body + app_secret)``
  (lowercase hex; compared case-insensitively), header ``app-id`` = app_key (checked when present).
  Only MD5 is implemented: an HMAC-SHA256 variant selected by a header is unverified [U].
* Generic hub webhook (our design): header ``X-Hub-Timestamp`` = integer Unix seconds (ASCII digits),
  header ``X-Hub-Signature`` = ``hex(hmac_sha256(secret, timestamp + "." + raw_body))``, optionally
  prefixed ``sha256=``. Accepted when ``|now − timestamp| ≤ tolerance`` (default 300 s) and the HMAC
  matches one of the given secrets (several = key rotation). The window bounds replays; exact
  repeats inside it are absorbed by ``is_newer`` / message-id dedup downstream.

Push messages are hints (facts §5.3): dedup on ``PushMessage.dedup_key`` = (platform, message_id),
then re-fetch the order detail and upsert it only if ``is_newer``.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from .. import safe_json
from . import _fields as F
from .errors import PayloadError

YOUZAN_SIGN_HEADER, YOUZAN_TYPE_HEADER, YOUZAN_CLIENT_HEADER = "Event-Sign", "Event-Type", "Client-Id"
DOUYIN_SIGN_HEADER, DOUYIN_APP_HEADER = "event-sign", "app-id"
HUB_SIGNATURE_HEADER, HUB_TIMESTAMP_HEADER = "X-Hub-Signature", "X-Hub-Timestamp"
HUB_DEFAULT_TOLERANCE = 300

#: Douyin push ``tag`` → event (facts §4.1, D3/D5); tag "0" is the URL verification message.
DOUYIN_TAGS = {
    "0": "verify", "100": "doudian_trade_TradeCreate", "101": "doudian_trade_TradePaid",
    "102": "doudian_trade_TradeSellerShip", "103": "doudian_trade_TradeSuccess",
    "105": "doudian_trade_TradeAddressChanged", "106": "doudian_trade_TradeCanceled",
    "110": "doudian_trade_TradePending", "113": "doudian_trade_TradeMemoModify",
    "200": "refund created", "206": "refund success", "207": "after-sale closed",
}
_DOUYIN_TIME_KEYS = ("update_time", "complete_time", "cancel_time", "pay_time", "create_time")


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _same(given: str | None, expected: str) -> bool:
    if not given:
        return False
    return hmac.compare_digest(_b(given.strip().lower()), _b(expected))


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive header lookup that works for plain dicts too."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def md5_hex(*parts: str | bytes) -> str:
    return hashlib.md5(b"".join(_b(p) for p in parts)).hexdigest()


# ---------------------------------------------------------------- signatures

def youzan_sign(client_id: str, data: str | bytes, client_secret: str) -> str:
    """``md5_hex(client_id + data + client_secret)``; data = raw body (header) or raw ``msg`` (body sign)."""
    return md5_hex(client_id, data, client_secret)


def verify_youzan_push(body: bytes, headers: Mapping[str, str], client_id: str, client_secret: str) -> bool:
    """True if header ``Event-Sign`` matches the raw body, or the body's ``sign`` matches its ``msg``
    (an empty secret never matches: ``md5(client_id + body)`` is anyone's to compute)."""
    if not client_secret:
        return False
    if _same(_header(headers, YOUZAN_SIGN_HEADER), youzan_sign(client_id, body, client_secret)):
        return True
    try:
        payload = safe_json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    if not isinstance(payload, dict) or not isinstance(payload.get("msg"), str) or not isinstance(payload.get("sign"), str):
        return False
    if payload.get("client_id") not in (None, client_id):
        return False
    return _same(payload["sign"], youzan_sign(client_id, payload["msg"], client_secret))


def douyin_sign(app_key: str, body: bytes, app_secret: str) -> str:
    """``md5_hex(app_key + raw_body + app_secret)`` (facts §4.1)."""
    return md5_hex(app_key, body, app_secret)


def verify_douyin_push(body: bytes, headers: Mapping[str, str], app_key: str, app_secret: str) -> bool:
    """True if header ``event-sign`` matches and header ``app-id``, when sent, equals ``app_key`` (an
    empty secret never matches)."""
    if not app_secret:
        return False
    app_id = _header(headers, DOUYIN_APP_HEADER)
    if app_id is not None and not hmac.compare_digest(_b(app_id.strip()), _b(app_key)):
        return False
    return _same(_header(headers, DOUYIN_SIGN_HEADER), douyin_sign(app_key, body, app_secret))


def hub_sign(secret: str, timestamp: str | int, body: bytes) -> str:
    """``hex(hmac_sha256(secret, f"{timestamp}." + body))`` — what a sender puts in ``X-Hub-Signature``."""
    return hmac.new(_b(secret), _b(str(timestamp)) + b"." + body, hashlib.sha256).hexdigest()


def verify_hub_webhook(body: bytes, headers: Mapping[str, str], secrets: str | Sequence[str], now: float,
                       tolerance: float = HUB_DEFAULT_TOLERANCE) -> bool:
    """True if ``X-Hub-Timestamp`` is within ``tolerance`` seconds of ``now`` and ``X-Hub-Signature``
    is the HMAC of ``timestamp + "." + body`` under one of ``secrets`` (empty secrets never match)."""
    stamp, signature = _header(headers, HUB_TIMESTAMP_HEADER), _header(headers, HUB_SIGNATURE_HEADER)
    if not stamp or not signature:
        return False
    stamp = stamp.strip()
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12) or abs(now - int(stamp)) > tolerance:
        return False
    signature = signature.strip()
    if signature.lower().startswith("sha256="):
        signature = signature[len("sha256="):]
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    ok = False
    for secret in candidates:  # no early exit: same work whichever secret matches
        if secret:
            ok |= _same(signature, hub_sign(secret, stamp, body))
    return ok


# ---------------------------------------------------------------- push envelopes

@dataclass(frozen=True)
class PushMessage:
    """One push message, reduced to what the app needs to dedup and re-fetch.

    ``event_type``: Youzan ``type`` (e.g. ``trade_TradeBuyerPay``) or the Douyin ``tag`` (``"101"``;
    names in ``DOUYIN_TAGS``). ``platform_status``: the raw status the push carried, if any.
    ``modified_hint``: epoch seconds the order was at least modified at, if the push says (a hint
    only). ``test``: Youzan ``test`` flag / Douyin tag "0" verification — reply success, do nothing.
    ``data``: the decoded inner message (Youzan ``msg``, Douyin ``data``)."""

    platform: str
    message_id: str
    event_type: str
    order_id: str
    shop_id: str
    platform_status: str
    modified_hint: float | None
    test: bool = False
    data: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    @property
    def dedup_key(self) -> tuple[str, str]:
        return (self.platform, self.message_id)


def _json(body: bytes | str, where: str) -> Any:
    try:
        return safe_json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(where, f"not valid JSON: {exc}") from None


def parse_youzan_push(body: bytes) -> PushMessage:
    """Parse a Youzan push body (facts §3.1): ``msg_id``, ``type`` required; ``id`` = tid for trade
    messages; ``kdt_id`` shop; ``status``; ``test``; ``msg`` URL-decoded then JSON-parsed. The order id
    is ``msg``'s ``full_order_info.order_info.tid`` (or ``tid``) when present, else ``id``; the modified
    hint is that ``order_info.update_time`` (GMT+8), else ``version`` read as epoch ms [U]."""
    p = F.root(_json(body, "$"))
    test = p.get("test", False)
    if not isinstance(test, bool):
        raise PayloadError("test", f"expected a boolean, got {F.kind(test)}")
    data: dict = {}
    if p.get("msg") not in (None, ""):
        decoded = _json(unquote_plus(F.text(p, "msg")), "msg")
        if not isinstance(decoded, dict):
            raise PayloadError("msg", "decoded msg is not a JSON object")
        data = decoded
    full = data.get("full_order_info")
    info = full.get("order_info") if isinstance(full, dict) else None
    info = info if isinstance(info, dict) else {}
    where = "msg.full_order_info.order_info"
    order_id = F.ident(info, "tid", where, required=False) or F.ident(data, "tid", "msg", required=False) \
        or F.ident(p, "id", required=False)
    hint = F.gmt8(info, "update_time", where)
    version = F.integer(p, "version", required=False, default=0)
    if hint is None and version > 10**11:
        hint = version / 1000.0
    return PushMessage(
        platform="youzan", message_id=F.ident(p, "msg_id"), event_type=F.text(p, "type", required=True),
        order_id=order_id, shop_id=F.ident(p, "kdt_id", required=False), platform_status=F.text(p, "status"),
        modified_hint=hint, test=test, data=data,
    )


def parse_douyin_push(body: bytes) -> list[PushMessage]:
    """Parse a Douyin push body: a JSON ARRAY of ``{"tag", "msg_id", "data": "<JSON string>"}`` (facts
    §4.1; a single object is accepted as a one-element array, as the D4 README reads it). ``data`` is
    double-encoded; ``p_id`` (int64) → order_id string; the hint is the latest of its time fields.
    Tag "0" (URL verification) needs neither ``msg_id`` nor ``p_id``."""
    messages = _json(body, "$")
    single = isinstance(messages, dict)
    if single:
        messages = [messages]
    if not isinstance(messages, list):
        raise PayloadError("$", f"expected a JSON array, got {F.kind(messages)}")
    out = []
    for i in range(len(messages)):
        m = F.element(messages, i, "")
        where = "" if single else F.path("", i)
        tag = F.ident(m, "tag", where)
        verify = tag == "0"
        raw_data = m.get("data")
        if isinstance(raw_data, str) and raw_data.strip():
            data = _json(raw_data, F.path(where, "data"))
        elif isinstance(raw_data, dict):
            data = raw_data
        elif verify and raw_data in (None, ""):
            data = {}
        else:
            raise PayloadError(F.path(where, "data"), "missing or not a JSON string/object")
        if not isinstance(data, dict):
            raise PayloadError(F.path(where, "data"), "decoded data is not a JSON object")
        dw = F.path(where, "data")
        # a hint, not state (the order is fetched): a status or time as a string of digits is read too
        times = [F.integer(data, k, dw, required=False, minimum=0, digits=True) for k in _DOUYIN_TIME_KEYS]
        status = data.get("order_status")
        out.append(PushMessage(
            platform="douyin", message_id=F.ident(m, "msg_id", where, required=not verify), event_type=tag,
            order_id=F.ident(data, "p_id", dw, required=not verify), shop_id=F.ident(data, "shop_id", dw, required=False),
            platform_status="" if status is None else str(F.integer(data, "order_status", dw, digits=True)),
            modified_hint=float(max(times)) if any(times) else None, test=verify, data=data,
        ))
    return out
