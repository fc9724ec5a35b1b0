"""Taobao/Tmall (TOP) adapter: the ``trade`` object of ``taobao.trade.fullinfo.get`` → ``Order``.

Facts §1 (sources T1, T2, T16). Money: yuan strings (``payment``, ``total_fee``, ``post_fee``,
``discount_fee``; per sub-order ``price``, ``payment``/``divide_order_fee``). Times: GMT+8
``yyyy-MM-dd HH:mm:ss`` (``created``, ``pay_time``, ``consign_time``, ``end_time``, ``modified``).
Ids: ``tid_str`` preferred over the 18–19 digit ``tid``; ``orders[].oid``. Receiver: masked
``receiver_name`` / ``receiver_mobile`` (else ``receiver_phone``) / ``receiver_address`` kept as sent
(decrypt via ``oaid``, which stays in ``raw``). Buyer: ``buyer_open_uid`` + ``buyer_nick``. Shop:
``seller_nick`` if present, else the ``shop_id`` argument (which wins when given).

Accepted shapes: the full response ``{"trade_fullinfo_get_response": {"trade": …}}``, ``{"trade": …}``
or the bare ``trade``; sub-orders as ``"orders": {"order": […]}`` (default JSON) or a plain list
(``simplify=true``). ``PayloadError.field`` paths are relative to ``trade``.
"""
from __future__ import annotations

from . import _fields as F
from .errors import PayloadError
from .model import Order, OrderItem, aggregate_refund

#: ``status`` → normalised (T1, T16). ``ALL_WAIT_PAY``/``ALL_CLOSED`` are query filters, never a
#: status, so they are rejected like any unknown value.
STATUS_MAP = {
    "TRADE_NO_CREATE_PAY": "pending_payment",
    "WAIT_BUYER_PAY": "pending_payment",
    "PAY_PENDING": "pending_payment",
    "WAIT_PRE_AUTH_CONFIRM": "pending_payment",
    "PAID_FORBID_CONSIGN": "paid",
    "WAIT_SELLER_SEND_GOODS": "paid",
    "SELLER_CONSIGNED_PART": "shipped",  # partly shipped; platform_status keeps the detail
    "WAIT_BUYER_CONFIRM_GOODS": "shipped",
    "TRADE_BUYER_SIGNED": "completed",  # signed for (cash on delivery)
    "TRADE_FINISHED": "completed",
    "TRADE_CLOSED": "refunded",  # closed AFTER payment: refund succeeded
    "TRADE_CLOSED_BY_TAOBAO": "closed",  # closed BEFORE payment by buyer or seller
}

#: ``orders[].refund_status`` → normalised (T1, T2; ``NO_REFUND`` is [U] but common).
REFUND_MAP = {
    "": "none",
    "NO_REFUND": "none",
    "WAIT_SELLER_AGREE": "requested",
    "WAIT_BUYER_RETURN_GOODS": "refunding",
    "WAIT_SELLER_CONFIRM_GOODS": "refunding",
    "SELLER_REFUSE_BUYER": "rejected",
    "CLOSED": "closed",
    "SUCCESS": "refunded",
}


def _unwrap(payload: dict) -> dict:
    payload = F.root(payload)
    if "error_response" in payload:
        err = payload["error_response"]
        raise PayloadError("error_response", f"TOP error response: {err!r}"[:300])
    if "trade_fullinfo_get_response" in payload:
        return F.mapping(F.mapping(payload, "trade_fullinfo_get_response"), "trade", "trade_fullinfo_get_response")
    if "trade" in payload and "tid" not in payload and "tid_str" not in payload:
        return F.mapping(payload, "trade")
    return payload


def _sub_orders(trade: dict) -> tuple[list, str]:
    value = trade.get("orders")
    if isinstance(value, dict):
        return F.array(value, "order", "orders", nonempty=True), "orders.order"
    return F.array(trade, "orders", nonempty=True), "orders"


def _item(o: dict, where: str, trade_status: str) -> OrderItem:
    sub_status = F.text(o, "status", where)
    status = F.lookup(sub_status, STATUS_MAP, F.path(where, "status")) if sub_status else trade_status
    # divide_order_fee = paid after the trade's discounts are shared out; payment may include postage
    # (single sub-order). Both are validated when present; one of them is required.
    payment = F.yuan(o, "payment", where, required=o.get("divide_order_fee") is None)
    paid = F.yuan(o, "divide_order_fee", where) if o.get("divide_order_fee") is not None else payment
    return OrderItem(
        sku_id=F.ident(o, "sku_id", where, required=False),
        product_id=F.ident(o, "num_iid", where, required=False),
        title=F.text(o, "title", where, required=True),
        quantity=F.integer(o, "num", where, minimum=1),
        price_fen=F.yuan(o, "price", where),
        paid_fen=paid,
        sub_order_id=F.ident(o, "oid", where),
        status=status,
        refund_status=F.lookup(F.text(o, "refund_status", where), REFUND_MAP, F.path(where, "refund_status")),
    )


def parse_order(payload: dict, *, shop_id: str = "") -> Order:
    """Map a ``taobao.trade.fullinfo.get`` trade to an ``Order``; raises ``PayloadError``."""
    trade = _unwrap(payload)
    order_id = F.ident(trade, "tid_str", required=False) or F.ident(trade, "tid")
    platform_status = F.text(trade, "status", required=True)
    status = F.lookup(platform_status, STATUS_MAP, "status")
    subs, prefix = _sub_orders(trade)
    items = tuple(_item(F.element(subs, i, prefix), F.path(prefix, i), status) for i in range(len(subs)))
    lines = [F.element(subs, i, prefix) for i in range(len(subs))]
    return Order(
        platform="taobao",
        order_id=order_id,
        shop_id=shop_id or F.text(trade, "seller_nick"),
        buyer_id=F.text(trade, "buyer_open_uid"),
        buyer_nick=F.text(trade, "buyer_nick"),
        status=status,
        platform_status=platform_status,
        refund_status=aggregate_refund(item.refund_status for item in items),
        total_fen=F.yuan(trade, "total_fee"),
        paid_fen=F.yuan(trade, "payment"),
        postage_fen=F.yuan(trade, "post_fee", required=False),
        discount_fen=F.yuan(trade, "discount_fee", required=False),
        items=items,
        logistics_company=F.distinct_join(F.text(o, "logistics_company", F.path(prefix, i)) for i, o in enumerate(lines)),
        tracking_no=F.distinct_join(F.text(o, "invoice_no", F.path(prefix, i)) for i, o in enumerate(lines)),
        receiver_name=F.text(trade, "receiver_name"),
        receiver_phone=F.first(F.text(trade, "receiver_mobile"), F.text(trade, "receiver_phone")),
        receiver_address=F.text(trade, "receiver_address"),
        created_at=F.gmt8(trade, "created", required=True),
        paid_at=F.gmt8(trade, "pay_time"),
        shipped_at=F.gmt8(trade, "consign_time"),
        completed_at=F.gmt8(trade, "end_time"),
        modified_at=F.gmt8(trade, "modified", required=True),
        raw=payload,
    )
