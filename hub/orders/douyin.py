"""Douyin 抖店 adapter: ``shop_order_detail`` of ``/order/orderDetail`` → ``Order``.

Facts §4 (sources D1, D2). Money is already integer fen (``order_amount``, ``pay_amount``,
``post_amount``, ``promotion_amount``; per sku ``origin_amount`` = unit price 商品现价, ``pay_amount``);
times are Unix seconds (``create_time``, ``pay_time``, ``ship_time``, ``finish_time``, ``update_time``;
0 = not set). ``order_id`` is a string; ``shop_id``/``product_id``/``sku_id`` are int64 → strings.

Mapping notes:
  * status comes from ``main_status`` when present (a superset of ``order_status`` that also shows
    refunds: 21/22/39 → ``refunded``), else ``order_status``; platform_status is that code as text.
    Each sku order is mapped the same way, falling back to the parent's status.
  * total_fen = ``order_amount``, discount_fen = ``promotion_amount`` (0 if absent).
  * buyer_id = ``doudian_open_id`` → ``open_id``; no buyer nick in the detail.
  * receiver: the ciphertext is preferred (it is what ``/order/batchDecrypt`` needs; the masked copy
    stays in ``raw``): name = ``encrypt_post_receiver`` → ``mask_post_receiver`` → ``post_receiver``;
    phone = ``encrypt_post_tel`` → ``mask_post_tel`` → ``post_tel``; address =
    ``post_addr.encrypt_detail`` → ``mask_post_addr.detail`` → ``post_addr.detail``.
  * logistics from ``logistics_info[]``: ``company_name`` (else ``company``) and ``tracking_no``,
    distinct values joined with ``,``; shipped_at = ``ship_time``, else the earliest package ship_time.
  * item refund_status from ``after_sale_info``: ``after_sale_status`` when non-zero, else
    ``refund_status`` (1 pending, 3 success, 4 failed). A cancelled after-sale is 28 while
    ``refund_status`` stays 1, hence after_sale_status first.

Accepted shapes: ``{"err_no": 0, "data": {"shop_order_detail": …}}``, ``{"shop_order_detail": …}``
or the bare object. Field paths are relative to ``shop_order_detail``.
"""
from __future__ import annotations

from . import _fields as F
from .errors import PayloadError
from .model import Order, OrderItem, aggregate_refund

#: ``main_status`` / ``order_status`` code → normalised (D1, D2).
STATUS_MAP = {
    1: "pending_payment",  # 待确认/待支付
    103: "pending_payment",  # 部分支付
    105: "paid",  # 已支付
    2: "paid",  # 备货中
    101: "shipped",  # 部分发货
    3: "shipped",  # 已发货
    5: "completed",  # 已完成
    4: "closed",  # 已取消
    21: "refunded",  # refunded before shipment
    22: "refunded",  # refunded after shipment
    39: "refunded",  # refunded after receipt
}

#: ``after_sale_info.after_sale_status`` → normalised (53 "completed" is resolved via refund_status).
AFTER_SALE_MAP = {
    0: "none", 6: "requested", 7: "refunding", 11: "refunding", 13: "refunding", 14: "refunding",
    27: "rejected", 29: "rejected", 12: "refunded", 28: "closed", 51: "closed",
}
#: ``after_sale_info.refund_status`` → normalised.
REFUND_MAP = {0: "none", 1: "refunding", 3: "refunded", 4: "closed"}


def _unwrap(payload: dict) -> dict:
    payload = F.root(payload)
    if payload.get("err_no") not in (None, 0):
        raise PayloadError("err_no", f"Douyin error {payload.get('err_no')!r}: {payload.get('message')!r}"[:300])
    if "data" in payload:
        return F.mapping(F.mapping(payload, "data"), "shop_order_detail", "data")
    if "shop_order_detail" in payload:
        return F.mapping(payload, "shop_order_detail")
    return payload


def _status(obj: dict, where: str, default: tuple[str, str] | None = None) -> tuple[str, str]:
    key = "main_status" if obj.get("main_status") is not None else "order_status"
    if obj.get(key) is None and default is not None:
        return default
    code = F.integer(obj, key, where)
    return F.lookup(code, STATUS_MAP, F.path(where, key)), str(code)


def _refund(sku: dict, where: str) -> str:
    info = F.mapping(sku, "after_sale_info", where, required=False)
    w = F.path(where, "after_sale_info")
    after_sale = F.integer(info, "after_sale_status", w, required=False)
    refund = F.integer(info, "refund_status", w, required=False)
    if after_sale == 53:  # after-sale completed: money back or not
        return "refunded" if refund == 3 else "closed"
    if after_sale:
        return F.lookup(after_sale, AFTER_SALE_MAP, F.path(w, "after_sale_status"))
    return F.lookup(refund, REFUND_MAP, F.path(w, "refund_status"))


def _item(sku: dict, where: str, parent: tuple[str, str]) -> OrderItem:
    return OrderItem(
        sku_id=F.ident(sku, "sku_id", where, required=False),
        product_id=F.ident(sku, "product_id", where, required=False),
        title=F.text(sku, "product_name", where, required=True),
        quantity=F.integer(sku, "item_num", where, minimum=1),
        price_fen=F.fen(sku, "origin_amount", where),
        paid_fen=F.fen(sku, "pay_amount", where),
        sub_order_id=F.ident(sku, "order_id", where),
        status=_status(sku, where, parent)[0],
        refund_status=_refund(sku, where),
    )


def _logistics(detail: dict) -> tuple[str, str, float | None]:
    packages = F.array(detail, "logistics_info", required=False)
    companies, numbers, times = [], [], []
    for i in range(len(packages)):
        p, w = F.element(packages, i, "logistics_info"), F.path("logistics_info", i)
        companies.append(F.first(F.text(p, "company_name", w), F.text(p, "company", w)))
        numbers.append(F.text(p, "tracking_no", w))
        t = F.epoch(p, "ship_time", w)
        if t is not None:
            times.append(t)
    return F.distinct_join(companies), F.distinct_join(numbers), min(times, default=None)


def parse_order(payload: dict, *, shop_id: str = "") -> Order:
    """Map a ``/order/orderDetail`` shop_order_detail to an ``Order``; raises ``PayloadError``."""
    d = _unwrap(payload)
    order_id = F.ident(d, "order_id")
    status, platform_status = _status(d, "")
    skus = F.array(d, "sku_order_list", nonempty=True)
    items = tuple(_item(F.element(skus, i, "sku_order_list"), F.path("sku_order_list", i), (status, platform_status))
                  for i in range(len(skus)))
    addr = F.mapping(d, "post_addr", required=False)
    mask_addr = d.get("mask_post_addr")
    mask_detail = F.text(mask_addr, "detail", "mask_post_addr") if isinstance(mask_addr, dict) else ""
    company, tracking, first_ship = _logistics(d)
    ship_time = F.epoch(d, "ship_time")
    return Order(
        platform="douyin",
        order_id=order_id,
        shop_id=shop_id or F.ident(d, "shop_id", required=False),
        buyer_id=F.first(F.text(d, "doudian_open_id"), F.text(d, "open_id")),
        buyer_nick="",
        status=status,
        platform_status=platform_status,
        refund_status=aggregate_refund(item.refund_status for item in items),
        total_fen=F.fen(d, "order_amount"),
        paid_fen=F.fen(d, "pay_amount"),
        postage_fen=F.fen(d, "post_amount", required=False),
        discount_fen=F.fen(d, "promotion_amount", required=False),
        items=items,
        logistics_company=company,
        tracking_no=tracking,
        receiver_name=F.first(F.text(d, "encrypt_post_receiver"), F.text(d, "mask_post_receiver"),
                              F.text(d, "post_receiver")),
        receiver_phone=F.first(F.text(d, "encrypt_post_tel"), F.text(d, "mask_post_tel"), F.text(d, "post_tel")),
        receiver_address=F.first(F.text(addr, "encrypt_detail", "post_addr"), mask_detail,
                                 F.text(addr, "detail", "post_addr")),
        created_at=F.epoch(d, "create_time", required=True),
        paid_at=F.epoch(d, "pay_time"),
        shipped_at=ship_time if ship_time is not None else first_ship,
        completed_at=F.epoch(d, "finish_time"),
        modified_at=F.epoch(d, "update_time", required=True),
        raw=payload,
    )
