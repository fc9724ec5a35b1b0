"""Youzan adapter: ``full_order_info`` of ``youzan.trade.get`` (4.0.0) → ``Order``.

Facts §3 (sources Y3, Y4, Y5, Y12). ``order_info``: ``tid`` (string ``E…``), ``status``, ``refund_state``
(int), times ``created``/``pay_time``/``consign_time``/``success_time``/``update_time`` as GMT+8
``yyyy-MM-dd HH:mm:ss`` ([U] for the zone; ``""`` = not set); shop ``node_kdt_id`` → ``root_kdt_id``.
``pay_info``: ``payment``, ``total_fee``, ``post_fee`` yuan strings. ``orders[]``: ``oid``, ``item_id``,
``sku_id``, ``title``, ``num``, ``price`` (unit), ``payment`` (line paid).

Mapping notes:
  * buyer_id = ``buyer_info.yz_open_id`` (4.0.4+) → ``buyer_id`` (deprecated); buyer_nick =
    ``fans_nickname`` — ciphertext, kept as sent, like ``address_info.receiver_name`` /
    ``receiver_tel`` / ``delivery_address`` (``$…$1$``, per-shop keys; decrypt server-side).
  * discount_fen is derived: ``total_fee + post_fee − payment`` (never below 0).
  * ``refund_state`` (0 none, 1 partial refunding, 2 partial refunded, 11 full refunding,
    12 full refunded) gives refund_status; a full refund also sets the order status (11 →
    ``refunding`` unless already terminal, 12 → ``refunded``). Items get the full-refund state, or
    ``unknown`` for a partial refund (the payload does not say which line).
  * Items have no own status here: item status = order status.
  * Carrier / tracking number: their field names in ``delivery_order`` are unverified (facts §3.2
    [U]), so logistics_company and tracking_no stay ``""``; ``consign_time`` gives shipped_at.

Accepted shapes: ``{"response": {"full_order_info": …}}``, ``{"full_order_info": …}`` or the bare
``full_order_info``. Field paths are relative to ``full_order_info``.
"""
from __future__ import annotations

from . import _fields as F
from .model import TERMINAL_STATUSES, Order, OrderItem

#: ``order_info.status`` → normalised (Y4, Y12).
STATUS_MAP = {
    "WAIT_BUYER_PAY": "pending_payment",
    "TRADE_PAID": "paid",  # transient: re-query soon
    "WAIT_CONFIRM": "paid",  # 待成团 / 待接单
    "WAIT_SELLER_SEND_GOODS": "paid",
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_SUCCESS": "completed",
    "TRADE_CLOSED": "closed",
}

#: ``order_info.refund_state`` → normalised order refund_status.
REFUND_MAP = {0: "none", 1: "refunding", 2: "refunded", 11: "refunding", 12: "refunded"}
_ITEM_REFUND = {0: "none", 1: "unknown", 2: "unknown", 11: "refunding", 12: "refunded"}


def _unwrap(payload: dict) -> dict:
    payload = F.root(payload)
    if "response" in payload:
        return F.mapping(F.mapping(payload, "response"), "full_order_info", "response")
    if "full_order_info" in payload:
        return F.mapping(payload, "full_order_info")
    return payload


def _item(o: dict, where: str, status: str, refund: str) -> OrderItem:
    return OrderItem(
        sku_id=F.ident(o, "sku_id", where, required=False),
        product_id=F.ident(o, "item_id", where, required=False),
        title=F.text(o, "title", where, required=True),
        quantity=F.integer(o, "num", where, minimum=1),
        price_fen=F.yuan(o, "price", where),
        paid_fen=F.yuan(o, "payment", where),
        sub_order_id=F.ident(o, "oid", where),
        status=status,
        refund_status=refund,
    )


def parse_order(payload: dict, *, shop_id: str = "") -> Order:
    """Map a ``youzan.trade.get`` full_order_info to an ``Order``; raises ``PayloadError``."""
    full = _unwrap(payload)
    info = F.mapping(full, "order_info")
    oi = "order_info"
    order_id = F.ident(info, "tid", oi)
    platform_status = F.text(info, "status", oi, required=True)
    status = F.lookup(platform_status, STATUS_MAP, F.path(oi, "status"))
    refund_state = F.integer(info, "refund_state", oi, required=False)
    refund = F.lookup(refund_state, REFUND_MAP, F.path(oi, "refund_state"))
    if refund_state == 12:
        status = "refunded"
    elif refund_state == 11 and status not in TERMINAL_STATUSES:
        status = "refunding"
    buyer = F.mapping(full, "buyer_info", required=False)
    address = F.mapping(full, "address_info", required=False)
    pay = F.mapping(full, "pay_info")
    total, postage, paid = F.yuan(pay, "total_fee", "pay_info"), F.yuan(pay, "post_fee", "pay_info", required=False), \
        F.yuan(pay, "payment", "pay_info")
    lines = F.array(full, "orders", nonempty=True)
    items = tuple(_item(F.element(lines, i, "orders"), F.path("orders", i), status, _ITEM_REFUND[refund_state])
                  for i in range(len(lines)))
    return Order(
        platform="youzan",
        order_id=order_id,
        shop_id=shop_id or F.ident(info, "node_kdt_id", oi, required=False)
        or F.ident(info, "root_kdt_id", oi, required=False),
        buyer_id=F.text(buyer, "yz_open_id", "buyer_info") or F.ident(buyer, "buyer_id", "buyer_info", required=False),
        buyer_nick=F.text(buyer, "fans_nickname", "buyer_info"),
        status=status,
        platform_status=platform_status,
        refund_status=refund,
        total_fen=total,
        paid_fen=paid,
        postage_fen=postage,
        discount_fen=max(0, total + postage - paid),
        items=items,
        logistics_company="",
        tracking_no="",
        receiver_name=F.text(address, "receiver_name", "address_info"),
        receiver_phone=F.text(address, "receiver_tel", "address_info"),
        receiver_address=F.text(address, "delivery_address", "address_info"),
        created_at=F.gmt8(info, "created", oi, required=True),
        paid_at=F.gmt8(info, "pay_time", oi),
        shipped_at=F.gmt8(info, "consign_time", oi),
        completed_at=F.gmt8(info, "success_time", oi),
        modified_at=F.gmt8(info, "update_time", oi, required=True),
        raw=payload,
    )
