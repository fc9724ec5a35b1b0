"""A fast, exact CSV line parser for bulk imports, built on ``custom.parse_csv_row``.

``RowParser(header)(fields, line)`` returns an ``Order`` equal to ``custom.parse_csv_row(row, line)``
(``row`` = the header zipped with the fields) for every line. The common shape — ASCII amounts
with at most two decimals, times as epoch digits or ``yyyy-MM-dd HH:mm:ss`` (GMT+8), known status
values — is handled with precomputed column positions and a per-day time cache; any line the fast
path is not certain about goes through ``parse_csv_row`` itself, so errors (``PayloadError`` with the
column and line) are exactly the adapter's. One difference, outside ``Order`` equality: ``raw["row"]``
holds only the columns that are not ``CSV_COLUMNS`` (``unionid``, ``buyer_phone``, …), which is all the
import needs from it.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from .custom import CSV_COLUMNS, EPOCH_LIMIT, parse_csv_row
from .errors import PayloadError
from .model import GMT8, ORDER_ID_MAX, ORDER_STATUSES, PLATFORMS, REFUND_STATUSES, Order, OrderItem, order_key

_GMT8 = re.compile(r"([0-9]{4}-[0-9]{2}-[0-9]{2}) ([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])")
_STATUSES, _REFUNDS, _PLATFORMS = frozenset(ORDER_STATUSES), frozenset(REFUND_STATUSES), frozenset(PLATFORMS)

_UNPACKED = (  # the order _fast unpacks a line in; checked against the adapter's columns at import
    "platform", "order_id", "shop_id", "buyer_id", "buyer_nick", "status", "refund_status", "total_yuan",
    "paid_yuan", "postage_yuan", "discount_yuan", "created_at", "paid_at", "shipped_at", "completed_at",
    "modified_at", "receiver_name", "receiver_phone", "receiver_address", "logistics_company", "tracking_no",
    "item_title", "sku_id", "product_id", "sub_order_id", "quantity", "price_yuan", "item_paid_yuan", "category",
)
if CSV_COLUMNS != _UNPACKED:
    raise ImportError("hub.orders.custom.CSV_COLUMNS changed: update hub.orders.csv_rows._fast")


class _Slow(Exception):
    """The fast path is not sure: use ``parse_csv_row``."""


class RowParser:
    def __init__(self, header: list[str]):
        self.header = [h.strip() if isinstance(h, str) else h for h in header]
        last: dict[str, int] = {}
        for i, h in enumerate(self.header):
            if isinstance(h, str):
                last[h] = i  # a repeated column: the last one wins, as in a dict
        self.width = len(self.header)
        self.idx = tuple(last.get(c, -1) for c in CSV_COLUMNS)  # CSV_COLUMNS order, -1 = absent
        self.extra = [(h, i) for h, i in last.items() if h not in CSV_COLUMNS]
        self.days: dict[str, float] = {}  # "yyyy-MM-dd" -> epoch of its GMT+8 midnight
        self.clock: dict[str, int] = {}  # "HH:mm:ss" -> seconds into the day (86,400 at most)
        self.amounts: dict[str, int] = {}  # "99.00" -> 9900 (prices repeat)

    def __call__(self, fields: list[str], line: int) -> Order:
        try:
            return self._fast(fields, line)
        except (_Slow, PayloadError):  # the adapter names the column and line of a value that does not fit
            return parse_csv_row(dict(zip(self.header, fields)), line)

    def _money(self, s: str) -> int:
        fen = self.amounts.get(s)
        if fen is not None:
            return fen
        whole, dot, frac = s.partition(".")
        if not (whole.isascii() and whole.isdigit() and len(whole) <= 15) or \
                (dot and not (frac.isascii() and frac.isdigit() and len(frac) <= 2)):
            raise _Slow
        fen = int(whole) * 100 + (int((frac + "00")[:2]) if dot else 0)
        if len(self.amounts) > 100_000:
            self.amounts.clear()
        self.amounts[s] = fen
        return fen

    def _time(self, s: str) -> float | None:
        if not s:
            return None
        if len(s) == 19 and s[10] == " ":  # cached halves were validated when they were cached
            base, tod = self.days.get(s[:10]), self.clock.get(s[11:])
            if base is not None and tod is not None:
                return base + tod
        m = _GMT8.fullmatch(s)
        if m is None:
            if s.isascii() and s.isdigit() and len(s) <= 10 and float(s) < EPOCH_LIMIT:
                return float(s)
            raise _Slow
        day, hh, mm, ss = m.groups()
        base = self.days.get(day)
        if base is None:
            if day >= "2100":  # refused by the adapter, with its message
                raise _Slow
            try:
                base = datetime(int(day[:4]), int(day[5:7]), int(day[8:]), tzinfo=GMT8).timestamp()
            except ValueError:
                raise _Slow from None
            if len(self.days) > 100_000:
                self.days.clear()
            self.days[day] = base
        tod = self.clock[s[11:]] = int(hh) * 3600 + int(mm) * 60 + int(ss)
        return base + tod

    def _fast(self, f: list[str], line: int) -> Order:
        s = list(map(str.strip, f))
        if len(s) < self.width:
            s.extend([""] * (self.width - len(s)))
        s.append("")  # position -1: a column the header does not have
        (platform, order_id, shop_id, buyer_id, buyer_nick, status, refund, total_text, paid_text, postage,
         discount, created, paid_at, shipped, completed, modified, receiver_name, receiver_phone, receiver_address,
         company, tracking, title, sku_id, product_id, sub_order_id, qty, price_text, item_paid, category) = \
            [s[i] for i in self.idx]
        refund, platform = refund or "none", platform or "custom"
        if not order_id or (platform == "custom" and (":" in shop_id or (":" in order_id and not shop_id))):
            raise _Slow  # (before the key: a shop's prefix alone is no order; a ':' the adapter refuses)
        order_id = order_key(platform, order_id, shop_id)
        if not (qty.isascii() and qty.isdigit() and len(qty) <= 12 and int(qty) >= 1) or not title \
                or status not in _STATUSES or refund not in _REFUNDS or platform not in _PLATFORMS \
                or not price_text or not paid_text or not created or len(order_id) > ORDER_ID_MAX:
            raise _Slow
        quantity, money, when = int(qty), self._money, self._time
        price = money(price_text)
        times = (when(created), when(paid_at), when(shipped), when(completed), when(modified))
        last = times[4] if times[4] is not None else max(t for t in times if t is not None)
        line_paid = money(item_paid) if item_paid else price * quantity
        item = OrderItem(sku_id, product_id, title, quantity, price, line_paid, sub_order_id, status, refund, category)
        row: dict[str, Any] = {}
        for h, i in self.extra:
            if s[i]:
                row[h] = s[i]
        return Order(
            platform, order_id, shop_id, buyer_id, buyer_nick, status, status, refund,
            money(total_text) if total_text else price * quantity, money(paid_text),
            money(postage) if postage else 0, money(discount) if discount else 0, (item,), company, tracking,
            receiver_name, receiver_phone, receiver_address, times[0], times[1], times[2], times[3], last,
            {"line": line, "row": row, "total_given": bool(total_text)},
        )
