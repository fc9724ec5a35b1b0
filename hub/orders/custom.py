"""The hub's own order formats: a generic JSON order (generic HMAC webhook) and CSV import rows.

JSON order (``parse_order``) — money in integer fen, statuses from the normalised sets::

    {"platform": "custom",            # optional; any of PLATFORMS (default "custom")
     "order_id": "A-1001",            # required; string or integer
     "shop_id": "", "buyer_id": "", "buyer_nick": "",
     "status": "paid",                # required; one of ORDER_STATUSES
     "platform_status": "",           # optional; default = status
     "refund_status": "none",         # optional; one of REFUND_STATUSES (default: aggregated from items)
     "paid_fen": 9900,                # required integer
     "total_fen": 10900, "postage_fen": 0, "discount_fen": 1000,
                                      # optional; total default = Σ item price×quantity, else paid_fen
     "created_at": "2024-05-20T10:00:40+08:00",   # required
     "modified_at": 1716170443,                   # required
     "paid_at": null, "shipped_at": null, "completed_at": null,
     "receiver": {"name": "", "phone": "", "address": ""},     # kept as sent
     "logistics": {"company": "", "tracking_no": ""},
     "items": [{"title": "T恤", "quantity": 1, "price_fen": 10900,   # required per item
                "paid_fen": 9900,                  # default price_fen × quantity
                "sku_id": "", "product_id": "", "sub_order_id": "", "category": "",
                "status": "paid",                  # default = order status
                "refund_status": "none"}]}         # default "none"

A ``custom`` order's id is unique only within its shop: with a ``shop_id`` it is stored as
``shop_id:order_id`` (``model.order_key``; the console and API show ``order_id`` as sent, and
``order_key`` as stored), so two shops' order 1001 are two orders; ids of the platforms are theirs.

Times everywhere: integer/float epoch seconds, ISO 8601 WITH an offset (``…+08:00``, ``…Z``), or
``yyyy-MM-dd HH:mm:ss`` read as GMT+8 (the platforms' convention). Naive ISO times are rejected, and so
are times from 2100 on (epoch milliseconds above all: the message says so).

CSV (``parse_csv_row``): a header row, then ONE LINE PER ITEM; the order columns repeat on every line
of a multi-item order and ``merge_csv_orders`` folds the lines into one order. Columns (``CSV_COLUMNS``,
extra columns ignored, ``*`` = required)::

    platform, order_id*, shop_id, buyer_id, buyer_nick, status*, refund_status, total_yuan, paid_yuan*,
    postage_yuan, discount_yuan, created_at*, paid_at, shipped_at, completed_at, modified_at,
    receiver_name, receiver_phone, receiver_address, logistics_company, tracking_no,
    item_title*, sku_id, product_id, sub_order_id, quantity*, price_yuan*, item_paid_yuan, category

Money columns are yuan strings (``"200.07"``); ``total_yuan`` defaults to price×quantity summed over
the order's lines, ``item_paid_yuan`` to price×quantity; ``modified_at`` defaults to the latest of the
other times; ``refund_status`` is the line's (item) state and the order's is aggregated; ``status``
is the order's and applies to the line. A CSV PayloadError has ``.field`` = column and ``.line``.
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable
from datetime import datetime

from . import _fields as F
from .errors import PayloadError
from .model import (ORDER_ID_MAX, ORDER_STATUSES, PLATFORMS, REFUND_STATUSES, Order, OrderItem, aggregate_refund,
                    gmt8_to_epoch, order_key, yuan_to_fen)

CSV_COLUMNS = (
    "platform", "order_id", "shop_id", "buyer_id", "buyer_nick", "status", "refund_status", "total_yuan",
    "paid_yuan", "postage_yuan", "discount_yuan", "created_at", "paid_at", "shipped_at", "completed_at",
    "modified_at", "receiver_name", "receiver_phone", "receiver_address", "logistics_company", "tracking_no",
    "item_title", "sku_id", "product_id", "sub_order_id", "quantity", "price_yuan", "item_paid_yuan", "category",
)
_GMT8_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
_DIGITS = re.compile(r"[0-9]{1,13}")  # 13: milliseconds, refused with their own message


# epoch seconds from 2100 on are a sender's mistake, milliseconds above all (1716170443000): taken
# as seconds, an order dated in the year 56,000 would refuse every later update as older than it
EPOCH_LIMIT = 4_102_444_800.0  # 2100-01-01T00:00:00Z


def _epoch_seconds(seconds: float, given: object) -> float:
    if seconds >= 1e11:
        raise ValueError(f"epoch time {given!r} looks like milliseconds: send seconds")
    return _before_2100(seconds, given)


def _before_2100(seconds: float, given: object) -> float:
    if seconds >= EPOCH_LIMIT:
        raise ValueError(f"time {given!r} is after 2100")
    return seconds


def parse_time(value: object) -> float:
    """Epoch seconds (number or digit string), ISO 8601 with offset, or GMT+8 ``yyyy-MM-dd HH:mm:ss``."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"not a valid epoch time: {value!r}")
        return _epoch_seconds(float(value), value)
    if not isinstance(value, str):
        raise ValueError(f"expected a time, got {type(value).__name__}")
    s = value.strip()
    if _DIGITS.fullmatch(s):
        return _epoch_seconds(float(s), value)
    if _GMT8_SHAPE.fullmatch(s):
        return _before_2100(gmt8_to_epoch(s), value)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"not a time (epoch seconds, ISO 8601 with offset, or 'yyyy-MM-dd HH:mm:ss'): {value!r}") from None
    if dt.tzinfo is None:
        raise ValueError(f"ISO time without a UTC offset is ambiguous: {value!r}")
    return _before_2100(dt.timestamp(), value)


def _time(obj: dict, key: str, prefix: str = "", *, required: bool = False) -> float | None:
    value = obj.get(key)
    if value is None or value == "":
        if required:
            raise PayloadError(F.path(prefix, key), "missing required time")
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise PayloadError(F.path(prefix, key), str(exc)) from None


def _choice(obj: dict, key: str, allowed: tuple[str, ...], prefix: str = "", default: str = "") -> str:
    value = F.text(obj, key, prefix, required=not default) or default
    if value not in allowed:
        raise PayloadError(F.path(prefix, key), f"must be one of {', '.join(allowed)}; got {value!r}")
    return value


def _json_item(o: dict, where: str, order_status: str) -> OrderItem:
    quantity = F.integer(o, "quantity", where, minimum=1)
    price = F.integer(o, "price_fen", where)
    return OrderItem(
        sku_id=F.ident(o, "sku_id", where, required=False),
        product_id=F.ident(o, "product_id", where, required=False),
        title=F.text(o, "title", where, required=True),
        quantity=quantity,
        price_fen=price,
        paid_fen=F.integer(o, "paid_fen", where, required=False, default=price * quantity),
        sub_order_id=F.ident(o, "sub_order_id", where, required=False),
        status=_choice(o, "status", ORDER_STATUSES, where, order_status),
        refund_status=_choice(o, "refund_status", REFUND_STATUSES, where, "none"),
        category=F.text(o, "category", where),
    )


def _key(platform: str, order_id: str, shop_id: str, line: int | None = None) -> str:
    """``order_key`` (a custom order scoped by its shop), refused when it does not fit the table."""
    if platform == "custom" and ":" in shop_id:
        raise PayloadError("shop_id", "a shop_id must not contain ':' (it joins shop_id and order_id)", line)
    if platform == "custom" and not shop_id and ":" in order_id:
        # shop A's order 1 is stored as "A:1": a shop-less order "A:1" overwrote it (and the other way round)
        raise PayloadError("order_id", "an order_id with ':' needs its shop_id", line)
    key = order_key(platform, order_id, shop_id)
    if len(key) > ORDER_ID_MAX:
        what = "shop_id + ':' + order_id" if key != order_id else "order_id"
        raise PayloadError("order_id", f"{what} is longer than {ORDER_ID_MAX} characters", line)
    return key


def parse_order(payload: dict, *, shop_id: str = "") -> Order:
    """Map the hub's generic JSON order (see module docstring) to an ``Order``."""
    p = F.root(payload)
    status = _choice(p, "status", ORDER_STATUSES)
    lines = F.array(p, "items", required=False)
    items = tuple(_json_item(F.element(lines, i, "items"), F.path("items", i), status) for i in range(len(lines)))
    paid = F.integer(p, "paid_fen")
    receiver, logistics = F.mapping(p, "receiver", required=False), F.mapping(p, "logistics", required=False)
    default_total = sum(i.price_fen * i.quantity for i in items) if items else paid
    refund_default = aggregate_refund(i.refund_status for i in items)
    platform = _choice(p, "platform", PLATFORMS, default="custom")
    shop_id = shop_id or F.ident(p, "shop_id", required=False)
    return Order(
        platform=platform,
        order_id=_key(platform, F.ident(p, "order_id"), shop_id),
        shop_id=shop_id,
        buyer_id=F.ident(p, "buyer_id", required=False),
        buyer_nick=F.text(p, "buyer_nick"),
        status=status,
        platform_status=F.text(p, "platform_status") or status,
        refund_status=_choice(p, "refund_status", REFUND_STATUSES, default=refund_default),
        total_fen=F.integer(p, "total_fen", required=False, default=default_total),
        paid_fen=paid,
        postage_fen=F.integer(p, "postage_fen", required=False),
        discount_fen=F.integer(p, "discount_fen", required=False),
        items=items,
        logistics_company=F.text(logistics, "company", "logistics"),
        tracking_no=F.text(logistics, "tracking_no", "logistics"),
        receiver_name=F.text(receiver, "name", "receiver"),
        receiver_phone=F.text(receiver, "phone", "receiver"),
        receiver_address=F.text(receiver, "address", "receiver"),
        created_at=_time(p, "created_at", required=True),
        paid_at=_time(p, "paid_at"),
        shipped_at=_time(p, "shipped_at"),
        completed_at=_time(p, "completed_at"),
        modified_at=_time(p, "modified_at", required=True),
        raw=payload,
    )


# ---------------------------------------------------------------- CSV

def parse_csv_row(row: dict[str, str], line: int) -> Order:
    """One CSV line (a ``csv.DictReader`` row) → an ``Order`` holding that line's single item.
    Errors are ``PayloadError(field=<column>, line=line)``."""
    cells = {k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}

    def cell(col: str, required: bool = False) -> str:
        value = cells.get(col, "")
        if required and not value:
            raise PayloadError(col, "missing required value", line)
        return value

    def choice(col: str, allowed: tuple[str, ...], default: str = "") -> str:
        value = cell(col, required=not default) or default
        if value not in allowed:
            raise PayloadError(col, f"must be one of {', '.join(allowed)}; got {value!r}", line)
        return value

    def money(col: str, required: bool = False, default: int = 0) -> int:
        value = cell(col, required)
        if not value:
            return default
        try:
            return yuan_to_fen(value)
        except ValueError as exc:
            raise PayloadError(col, str(exc), line) from None

    def when(col: str, required: bool = False) -> float | None:
        value = cell(col, required)
        if not value:
            return None
        try:
            return parse_time(value)
        except ValueError as exc:
            raise PayloadError(col, str(exc), line) from None

    quantity_text = cell("quantity", required=True)
    if not _DIGITS.fullmatch(quantity_text) or int(quantity_text) < 1:
        raise PayloadError("quantity", f"must be a whole number ≥ 1, got {quantity_text!r}", line)
    quantity = int(quantity_text)
    price = money("price_yuan", required=True)
    status = choice("status", ORDER_STATUSES)
    item = OrderItem(
        sku_id=cell("sku_id"), product_id=cell("product_id"), title=cell("item_title", required=True),
        quantity=quantity, price_fen=price, paid_fen=money("item_paid_yuan", default=price * quantity),
        sub_order_id=cell("sub_order_id"), status=status,
        refund_status=choice("refund_status", REFUND_STATUSES, "none"), category=cell("category"),
    )
    times = {col: when(col, required=(col == "created_at"))
             for col in ("created_at", "paid_at", "shipped_at", "completed_at", "modified_at")}
    modified = times["modified_at"]
    if modified is None:
        modified = max(t for t in times.values() if t is not None)
    platform = choice("platform", PLATFORMS, "custom")
    try:
        return Order(
            platform=platform, order_id=_key(platform, cell("order_id", required=True), cell("shop_id"), line),
            shop_id=cell("shop_id"), buyer_id=cell("buyer_id"), buyer_nick=cell("buyer_nick"),
            status=status, platform_status=status, refund_status=item.refund_status,
            total_fen=money("total_yuan", default=price * quantity), paid_fen=money("paid_yuan", required=True),
            postage_fen=money("postage_yuan"), discount_fen=money("discount_yuan"), items=(item,),
            logistics_company=cell("logistics_company"), tracking_no=cell("tracking_no"),
            receiver_name=cell("receiver_name"), receiver_phone=cell("receiver_phone"),
            receiver_address=cell("receiver_address"),
            created_at=times["created_at"], paid_at=times["paid_at"], shipped_at=times["shipped_at"],
            completed_at=times["completed_at"], modified_at=modified,
            raw={"line": line, "row": dict(cells), "total_given": bool(cell("total_yuan"))},
        )
    except PayloadError as exc:  # a value the tables cannot hold: named by its column, on its line
        field = exc.field.replace("items[0].", "item.")
        raise PayloadError(_CSV_FIELD.get(field, field.replace("item.", "")), exc.message, line) from None


#: Order/OrderItem fields → the CSV column they come from, where the names differ.
_CSV_FIELD = {"item.title": "item_title", "item.price_fen": "price_yuan", "item.paid_fen": "item_paid_yuan",
              "paid_fen": "paid_yuan", "total_fen": "total_yuan", "postage_fen": "postage_yuan",
              "discount_fen": "discount_yuan", "platform_status": "status"}


_MERGE_IGNORED = {"items", "refund_status", "total_fen", "raw"}


def merge_csv_orders(orders: Iterable[Order]) -> list[Order]:
    """Fold one-item orders from ``parse_csv_row`` into one order per ``(platform, order_id)``, in
    first-seen order. Order columns must agree across an order's lines (else ``PayloadError`` naming
    the column and the later line); items are concatenated, refund_status aggregated, and total_fen
    summed from the lines unless ``total_yuan`` was given."""
    merged: dict[tuple[str, str], Order] = {}
    for order in orders:
        key = (order.platform, order.order_id)
        prev = merged.get(key)
        if prev is None:
            merged[key] = order
            continue
        for f in dataclasses.fields(Order):
            if f.name not in _MERGE_IGNORED and getattr(prev, f.name) != getattr(order, f.name):
                column = {"paid_fen": "paid_yuan", "postage_fen": "postage_yuan",
                          "discount_fen": "discount_yuan", "platform_status": "status"}.get(f.name, f.name)
                raise PayloadError(column, f"differs from earlier lines of order {order.order_id}",
                                   order.raw.get("line"))
        items = prev.items + order.items
        prev_given, new_given = prev.raw.get("total_given"), order.raw.get("total_given")
        if prev_given and new_given and prev.total_fen != order.total_fen:
            raise PayloadError("total_yuan", f"differs from earlier lines of order {order.order_id}",
                               order.raw.get("line"))
        given = prev_given or new_given
        total = (prev.total_fen if prev_given else order.total_fen) if given else \
            sum(i.price_fen * i.quantity for i in items)
        raw = {"lines": prev.raw.get("lines", [prev.raw.get("line")]) + [order.raw.get("line")],
               "rows": prev.raw.get("rows", [prev.raw.get("row")]) + [order.raw.get("row")],
               "total_given": given}
        merged[key] = dataclasses.replace(prev, items=items, refund_status=aggregate_refund(i.refund_status for i in items),
                                          total_fen=total, raw=raw)
    return list(merged.values())
