"""JD POP adapter: the ``orderInfo`` of ``jingdong.pop.order.get`` → ``Order``.

Facts §2 (sources J1, J3, J4, J5, J7). Every scalar is a string in the SDK: money in yuan
(``orderTotalPrice`` goods total, ``orderPayment`` buyer pays, ``freightPrice``, ``sellerDiscount``);
``itemTotal`` is the QUANTITY; times ``yyyy-MM-dd HH:mm:ss`` read as GMT+8 (Asia/Shanghai), with
``0001-01-01 00:00:00`` / ``1970-01-01 00:00:00`` meaning "not set". Ask for ``modified``, ``waybill``,
``logisticsId``, ``paymentConfirmTime`` and ``open_id_buyer`` in ``optional_fields`` or they are absent.

Mapping notes:
  * buyer_id = ``open_id_buyer`` → ``open_id`` → ``pin``; buyer_nick = ``pin``.
  * receiver from ``consigneeInfo``: ``fullname``; phone = ``mobile`` → ``desen_mobile`` →
    ``telephone`` → ``desen_telephone`` (first non-empty, untouched); address = ``fullAddress``.
  * logistics_company = ``logisticsId`` (JD's carrier id, not a name); tracking_no = ``waybill``
    exactly as sent (``|`` separates carriers, ``,`` several waybills of one carrier).
  * JD orders carry no refund state and no per-line paid amount or sub-order id: refund_status is
    ``unknown``, item ``paid_fen`` = ``jdPrice`` × quantity (list price, before discounts),
    ``sub_order_id`` = ``""``, item status = order status. No ship time on the order: shipped_at None.
  * discount_fen = ``sellerDiscount`` (platform coupons in ``couponDetailList`` are not summed).

Accepted shapes: ``{"jingdong_pop_order_get_responce": {"orderDetailInfo": {"orderInfo": …}}}``,
``{"orderDetailInfo": {"orderInfo": …}}`` or the bare ``orderInfo``. Field paths are relative to it.
"""
from __future__ import annotations

from . import _fields as F
from .model import Order, OrderItem

ENVELOPE = "jingdong_pop_order_get_responce"  # sic: JD spells "responce"
UNSET_TIMES = ("0001-01-01 00:00:00", "1970-01-01 00:00:00")

#: ``orderState`` → normalised (J3, J7). No "awaiting payment" state is documented.
STATUS_MAP = {
    "WAIT_SELLER_STOCK_OUT": "paid",
    "WAIT_SELLER_DELIVERY": "paid",  # 海外购
    "WAIT_SEND_CODE": "paid",  # virtual goods
    "POP_ORDER_PAUSE": "paid",  # paused before shipment
    "PAUSE": "paid",  # [P]
    "SEND_TO_DISTRIBUTION_CENER": "shipped",  # sic; LBP/SOPL
    "DISTRIBUTION_CENTER_RECEIVED": "shipped",
    "WAIT_GOODS_RECEIVE_CONFIRM": "shipped",
    "RECEIPTS_CONFIRM": "completed",
    "FINISHED_L": "completed",
    "LOCKED": "refunding",  # locked, e.g. refund in progress
    "DELIVERY_RETURN": "refunding",  # [P]
    "TRADE_CANCELED": "closed",
}


def _unwrap(payload: dict) -> dict:
    payload = F.root(payload)
    if ENVELOPE in payload:
        detail = F.mapping(F.mapping(payload, ENVELOPE), "orderDetailInfo", ENVELOPE)
        return F.mapping(detail, "orderInfo", f"{ENVELOPE}.orderDetailInfo")
    if "orderDetailInfo" in payload:
        return F.mapping(F.mapping(payload, "orderDetailInfo"), "orderInfo", "orderDetailInfo")
    return payload


def _item(line: dict, where: str, status: str) -> OrderItem:
    quantity = F.integer(line, "itemTotal", where, minimum=1, digits=True)
    price = F.yuan(line, "jdPrice", where)
    return OrderItem(
        sku_id=F.ident(line, "skuId", where),
        product_id=F.ident(line, "wareId", where, required=False),
        title=F.text(line, "skuName", where, required=True),
        quantity=quantity,
        price_fen=price,
        paid_fen=price * quantity,
        sub_order_id="",
        status=status,
        refund_status="unknown",
    )


def parse_order(payload: dict, *, shop_id: str = "") -> Order:
    """Map a ``jingdong.pop.order.get`` orderInfo to an ``Order``; raises ``PayloadError``."""
    info = _unwrap(payload)
    order_id = F.ident(info, "orderId")
    platform_status = F.text(info, "orderState", required=True)
    status = F.lookup(platform_status, STATUS_MAP, "orderState")
    lines = F.array(info, "itemInfoList", nonempty=True)
    items = tuple(_item(F.element(lines, i, "itemInfoList"), F.path("itemInfoList", i), status)
                  for i in range(len(lines)))
    consignee = F.mapping(info, "consigneeInfo", required=False)
    c = "consigneeInfo"
    pin = F.text(info, "pin")
    return Order(
        platform="jd",
        order_id=order_id,
        shop_id=shop_id or F.ident(info, "venderId", required=False),
        buyer_id=F.first(F.text(info, "open_id_buyer"), F.text(info, "open_id"), pin),
        buyer_nick=pin,
        status=status,
        platform_status=platform_status,
        refund_status="unknown",
        total_fen=F.yuan(info, "orderTotalPrice"),
        paid_fen=F.yuan(info, "orderPayment"),
        postage_fen=F.yuan(info, "freightPrice", required=False),
        discount_fen=F.yuan(info, "sellerDiscount", required=False),
        items=items,
        logistics_company=F.ident(info, "logisticsId", required=False),
        tracking_no=F.text(info, "waybill"),
        receiver_name=F.text(consignee, "fullname", c),
        receiver_phone=F.first(F.text(consignee, "mobile", c), F.text(consignee, "desen_mobile", c),
                               F.text(consignee, "telephone", c), F.text(consignee, "desen_telephone", c)),
        receiver_address=F.text(consignee, "fullAddress", c),
        created_at=F.gmt8(info, "orderStartTime", required=True, unset=UNSET_TIMES),
        paid_at=F.gmt8(info, "paymentConfirmTime", unset=UNSET_TIMES),
        shipped_at=None,
        completed_at=F.gmt8(info, "orderEndTime", unset=UNSET_TIMES),
        modified_at=F.gmt8(info, "modified", required=True, unset=UNSET_TIMES),
        raw=payload,
    )
