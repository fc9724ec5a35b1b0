"""Which customer an order belongs to: the identity keys an order carries.

* the buyer id, as an identity of kind = platform (``taobao``, ``jd``, ``youzan``, ``douyin``,
  ``custom``); brand-wide for the four platforms, per shop for ``custom`` (middleware ids collide);
* a phone, only when the brand has it in plain form: the custom formats' ``buyer_phone`` / CSV
  column ``buyer_phone``, else a plain receiver phone. Masked (``138****5678``) and ciphertext
  (``$…$1$``, ``#…#``) values are never keys. A plain phone counts as verified (it decides who the
  customer is, like a verified phone) unless ``order_sources.trust_order_phone`` is false;
* a WeChat unionid, when the source gives one (custom JSON ``unionid``, CSV column ``unionid``).

The first key is the primary one (buyer id, else phone, else unionid); ``identity.resolve`` attaches
the others. Pure functions plus ``link_customer``, which runs inside the caller's write transaction.
"""
from __future__ import annotations

import re
from typing import Any

from ..customers import identity as ident
from .model import Order

_PHONE = re.compile(r"(?:\+?86)?(1[3-9][0-9]{9})")
_PHONE_NOISE = re.compile(r"[\s\-()]")


def plain_phone(text: str) -> str:
    """A usable mainland mobile number (``13812345678``) or ``""`` for masked, ciphertext or other."""
    if not text or "*" in text:
        return ""
    if len(text) == 11 and text[0] == "1" and text.isascii() and text.isdigit():
        return text if text[1] in "3456789" else ""
    m = _PHONE.fullmatch(_PHONE_NOISE.sub("", text))
    return m.group(1) if m else ""


def plain_name(nick: str) -> str:
    """A buyer nick fit to name a customer: not masked (``t**1``) and not ciphertext (``$…$``)."""
    nick = (nick or "").strip()
    if not nick or "*" in nick or nick[0] in "$#" or nick[-1] in "$#":
        return ""
    return nick[:128]


def source_extras(order: Order) -> dict[str, str]:
    """``unionid`` / ``buyer_phone`` given by the hub's own formats (JSON body or CSV row)."""
    raw: Any = order.raw
    if not isinstance(raw, dict):
        return {}
    row = raw.get("row")
    if isinstance(row, dict):
        if not row:
            return {}
        raw = row
    elif isinstance(raw.get("rows"), list) and raw["rows"] and isinstance(raw["rows"][0], dict):
        raw = raw["rows"][0]
    if "unionid" not in raw and "buyer_phone" not in raw:
        return {}
    out = {}
    for key in ("unionid", "buyer_phone"):
        value = raw.get(key)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value).strip():
            out[key] = str(value).strip()
    return out


KeyTuple = tuple[str, str, str, bool]  # (kind, account_id, value, verified), normalised as Key.norm() does


def key_tuples(order: Order, trust_phone: bool = True) -> tuple[list[KeyTuple], str]:
    """(keys, customer name), primary key first; no keys = the order links to no customer."""
    raw = order.raw
    extras = {} if not raw or (isinstance(raw, dict) and raw.get("row") == {}) else source_extras(order)
    keys: list[KeyTuple] = []
    buyer = order.buyer_id.strip()
    if buyer:
        keys.append((order.platform, order.shop_id.strip() if order.platform == "custom" else "", buyer, False))
    phone = plain_phone(extras.get("buyer_phone", "")) or plain_phone(order.receiver_phone)
    if phone:
        keys.append(("phone", "", phone, trust_phone))
    if extras.get("unionid"):
        keys.append(("unionid", "", extras["unionid"], False))
    return keys, plain_name(order.buyer_nick)


def strong(key: KeyTuple) -> bool:
    return key[0] == "unionid" or (key[0] == "phone" and key[3])


def order_keys(order: Order, trust_phone: bool = True) -> tuple[list[ident.Key], str]:
    """Like ``key_tuples``, as ``identity.Key`` objects."""
    keys, name = key_tuples(order, trust_phone)
    return [ident.Key(kind, value, account, verified) for kind, account, value, verified in keys], name


async def link_customer(conn: Any, now: float, order: Order, trust_phone: bool = True) -> int | None:
    """Resolve (or create) the order's customer inside the caller's write transaction."""
    keys, name = order_keys(order, trust_phone)
    if not keys:
        return None
    return await ident.resolve(conn, now, keys[0], keys[1:], name)
