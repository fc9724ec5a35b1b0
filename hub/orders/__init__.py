"""E-commerce order sync, pure part: one normalised ``Order`` model, one adapter per platform
(Taobao/Tmall, JD, Youzan, Douyin 抖店, and the hub's own JSON/CSV format), push signature checks and
push-envelope parsing. No I/O, no DB, no clock reads. Facts: /work/shared/ecommerce-orders.md.

    order = parse_order("taobao", payload)          # PayloadError(field=…) on bad input
    if is_newer(stored, order): upsert(order)         # never move back, never overwrite newer data
"""
from __future__ import annotations

from collections.abc import Callable

from . import custom, douyin, jd, taobao, youzan
from .errors import PayloadError
from .model import (ORDER_STATUSES, PLATFORMS, REFUND_STATUSES, TERMINAL_STATUSES, Order, OrderItem,
                    aggregate_refund, fen_to_yuan, gmt8_to_epoch, is_newer, may_move, status_rank, yuan_to_fen)
from .signatures import PushMessage, parse_douyin_push, parse_youzan_push

ADAPTERS: dict[str, Callable[..., Order]] = {
    "taobao": taobao.parse_order,
    "jd": jd.parse_order,
    "youzan": youzan.parse_order,
    "douyin": douyin.parse_order,
    "custom": custom.parse_order,
}


def parse_order(platform: str, payload: dict, *, shop_id: str = "") -> Order:
    """Parse ``payload`` with ``platform``'s adapter. ``shop_id``, when given, overrides the shop id
    found in the payload (the app knows which authorised shop it fetched for)."""
    try:
        adapter = ADAPTERS[platform]
    except (KeyError, TypeError):
        raise PayloadError("platform", f"unknown platform {platform!r}; expected one of {', '.join(PLATFORMS)}") from None
    return adapter(payload, shop_id=shop_id)


__all__ = [
    "ADAPTERS", "ORDER_STATUSES", "PLATFORMS", "REFUND_STATUSES", "TERMINAL_STATUSES", "Order", "OrderItem",
    "PayloadError", "PushMessage", "aggregate_refund", "fen_to_yuan", "gmt8_to_epoch", "is_newer", "may_move",
    "parse_douyin_push", "parse_order", "parse_youzan_push", "status_rank", "yuan_to_fen",
]
