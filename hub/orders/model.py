"""The normalised order model shared by every platform adapter, plus the pure helpers they need:
exact yuan→fen conversion, GMT+8 time strings → UTC epoch seconds, and the "is this newer?" rule.

Facts: /work/shared/ecommerce-orders.md. Money is always integer fen (分); platform ids are always
strings; times are float epoch seconds (UTC). Receiver PII is stored exactly as the platform sent it
(masked or ciphertext) — nothing here decrypts or unmasks.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from operator import attrgetter
from typing import Any

from .errors import PayloadError

PLATFORMS = ("taobao", "jd", "youzan", "douyin", "custom")

#: Normalised order statuses, in lifecycle order (see ``status_rank``).
#: ``refunding`` = the whole order is under a refund/after-sale (JD ``LOCKED``, Youzan
#: ``refund_state`` 11); ``refunded`` = closed after payment because the money went back
#: (Taobao ``TRADE_CLOSED``, Youzan ``refund_state`` 12, Douyin ``main_status`` 21/22/39);
#: ``closed`` = cancelled/closed, normally before payment. Partial refunds do NOT change the
#: order status: they show in ``refund_status`` and on the items.
ORDER_STATUSES = ("pending_payment", "paid", "shipped", "completed", "refunding", "refunded", "closed")
TERMINAL_STATUSES = frozenset({"refunded", "closed"})

#: Normalised refund states (per item, and per order = the most pressing item state, see
#: ``aggregate_refund``): ``none`` no refund · ``requested`` buyer applied, seller has not agreed ·
#: ``refunding`` agreed / goods on the way back / money in flight / other after-sale in progress ·
#: ``rejected`` seller refused (buyer may still appeal) · ``refunded`` money returned ·
#: ``closed`` refund cancelled or closed without money back · ``unknown`` the payload does not say
#: (JD orders carry no refund state; Youzan per item for partial refunds).
REFUND_STATUSES = ("none", "requested", "refunding", "rejected", "refunded", "closed", "unknown")
_REFUND_PRIORITY = ("refunding", "requested", "rejected", "refunded", "closed", "unknown", "none")

_RANK = {"pending_payment": 0, "paid": 1, "shipped": 2, "completed": 3, "refunding": 4, "refunded": 5, "closed": 5}

GMT8 = timezone(timedelta(hours=8))  # China has no DST: a fixed offset is exact
_TIME_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})")
_YUAN_RE = re.compile(r"(-?)([0-9]{1,15})(?:\.([0-9]+))?")


@dataclass(frozen=True)
class OrderItem:
    """One order line. ``price_fen`` is the unit price, ``paid_fen`` what the buyer paid for the line;
    ``status``/``refund_status`` use the normalised sets (items can differ from the order)."""

    sku_id: str
    product_id: str
    title: str
    quantity: int
    price_fen: int
    paid_fen: int
    sub_order_id: str
    status: str
    refund_status: str
    category: str = ""

    def __post_init__(self) -> None:
        if self.status not in ORDER_STATUSES:
            raise ValueError(f"unknown item status {self.status!r}")
        if self.refund_status not in REFUND_STATUSES:
            raise ValueError(f"unknown item refund_status {self.refund_status!r}")


@dataclass(frozen=True)
class Order:
    """One order, normalised. ``total_fen`` = goods total before discounts, without postage;
    ``paid_fen`` = what the buyer pays (postage included); ``platform_status`` = the platform's own
    status value, untouched; ``completed_at`` = when the trade ended (succeeded, or closed);
    ``modified_at`` = the platform's last-modified time, the key of ``is_newer``; ``raw`` = the payload
    as given (excluded from equality and hashing)."""

    platform: str
    order_id: str
    shop_id: str
    buyer_id: str
    buyer_nick: str
    status: str
    platform_status: str
    refund_status: str
    total_fen: int
    paid_fen: int
    postage_fen: int
    discount_fen: int
    items: tuple[OrderItem, ...]
    logistics_company: str
    tracking_no: str
    receiver_name: str
    receiver_phone: str
    receiver_address: str
    created_at: float
    paid_at: float | None
    shipped_at: float | None
    completed_at: float | None
    modified_at: float
    raw: dict = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self) -> None:
        if self.platform not in PLATFORMS:
            raise ValueError(f"unknown platform {self.platform!r}")
        if self.status not in ORDER_STATUSES:
            raise ValueError(f"unknown order status {self.status!r}")
        if self.refund_status not in REFUND_STATUSES:
            raise ValueError(f"unknown refund_status {self.refund_status!r}")
        if not isinstance(self.items, tuple):
            object.__setattr__(self, "items", tuple(self.items))
        _check_fits(self)


# ---------------------------------------------------------------- money and time

def yuan_to_fen(value: str) -> int:
    """``"200.07"`` → ``20007`` exactly (string arithmetic, never float).

    Accepts ``[-]digits[.digits]`` (surrounding whitespace ignored; at most 15 integer digits).
    Extra decimals are allowed only if they are zeros (``"1.230"`` → 123); anything else — ``""``,
    ``"1.234"``, ``"1e3"``, ``"1,000"``, ``".5"``, ``"+1"``, a float or int — raises ``ValueError``.
    """
    if not isinstance(value, str):
        raise ValueError(f"a yuan amount must be a string like '99.00', got {type(value).__name__}")
    m = _YUAN_RE.fullmatch(value.strip())
    if m is None:
        raise ValueError(f"not a yuan amount: {value!r}")
    sign, whole, frac = m.group(1), m.group(2), m.group(3) or ""
    if frac[2:].strip("0"):
        raise ValueError(f"{value!r} has a fraction of a fen")
    fen = int(whole) * 100 + int((frac + "00")[:2])
    return -fen if sign else fen


def fen_to_yuan(fen: int) -> str:
    """``20007`` → ``"200.07"`` (for display and CSV export)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole}.{cents:02d}"


def gmt8_to_epoch(text: str) -> float:
    """``"yyyy-MM-dd HH:mm:ss"`` in GMT+8 (Taobao T11, JD, Youzan) → UTC epoch seconds.
    Raises ``ValueError`` for any other shape or an impossible date."""
    if not isinstance(text, str):
        raise ValueError(f"a time must be a 'yyyy-MM-dd HH:mm:ss' string, got {type(text).__name__}")
    m = _TIME_RE.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"not a 'yyyy-MM-dd HH:mm:ss' time: {text!r}")
    try:
        return datetime(*map(int, m.groups()), tzinfo=GMT8).timestamp()
    except ValueError as exc:
        raise ValueError(f"impossible time {text!r}: {exc}") from None


# ---------------------------------------------------------------- ordering rule

def status_rank(status: str) -> int:
    """Lifecycle rank: pending_payment 0 < paid 1 < shipped 2 < completed 3 < refunding 4 <
    refunded = closed 5. Raises ``ValueError`` for a status outside ``ORDER_STATUSES``."""
    try:
        return _RANK[status]
    except KeyError:
        raise ValueError(f"unknown order status {status!r}") from None


def may_move(old: str, new: str) -> bool:
    """Whether an order may go from ``old`` to ``new`` status at all.

    Forward (same or higher rank) is always allowed. Backward is refused, with one exception the
    platforms really produce (facts §5.5): leaving ``refunding`` for paid/shipped/completed when the
    refund is refused or withdrawn. Terminal states (refunded, closed) are never left except for
    each other, and nothing goes back to ``pending_payment`` once paid.
    """
    if old == new:
        return True
    if old in TERMINAL_STATUSES:
        return new in TERMINAL_STATUSES
    if old == "refunding":
        return status_rank(new) > status_rank("pending_payment")
    return status_rank(new) >= status_rank(old)


def _state(order: Any) -> tuple[str, float]:
    if isinstance(order, Mapping):
        return str(order["status"]), float(order["modified_at"])
    return order.status, float(order.modified_at)


def is_newer(existing: Any, incoming: Any) -> bool:
    """Whether ``incoming`` may replace ``existing`` (an ``Order``, or any snapshot with ``status``
    and ``modified_at`` as attributes or mapping keys; ``None`` = nothing stored yet).

    A late or repeated message must never move an order back or overwrite newer data:
      1. older ``modified_at`` → refused;
      2. same ``modified_at`` → accepted only if the status rank goes strictly up (an exact repeat,
         or a same-second copy with a lower or equal status, keeps the stored one);
      3. newer ``modified_at`` → accepted unless ``may_move`` forbids the status change
         (e.g. shipped → paid, closed → paid).
    """
    if existing is None:
        return True
    old_status, old_modified = _state(existing)
    new_status, new_modified = _state(incoming)
    if new_modified < old_modified:
        return False
    if new_modified == old_modified:
        return status_rank(new_status) > status_rank(old_status) and may_move(old_status, new_status)
    return may_move(old_status, new_status)


def aggregate_refund(states: Iterable[str]) -> str:
    """The order-level refund state: the most pressing item state, in the order
    refunding > requested > rejected > refunded > closed > unknown > none (no items → none)."""
    seen = set(states)
    for state in _REFUND_PRIORITY:
        if state in seen:
            return state
    return "none"


#: The longest order id the orders table holds (``orders.order_id`` is String(64)).
ORDER_ID_MAX = 64


def order_key(platform: str, order_id: str, shop_id: str) -> str:
    """The ``order_id`` an order is stored under. A platform's order ids are unique on that platform,
    but the hub's own (``custom``) ones only within the sender's shop: with a shop id, a custom
    order is stored as ``shop_id:order_id`` (two shops' order 1001 are two orders). ``shown_order_id``
    gives the sender's id back."""
    return f"{shop_id}:{order_id}" if platform == "custom" and shop_id else order_id


def shown_order_id(platform: str, order_id: str, shop_id: str) -> str:
    """The order id as its sender knows it (``order_key`` undone)."""
    prefix = f"{shop_id}:"
    if platform == "custom" and shop_id and order_id.startswith(prefix):
        return order_id[len(prefix):]
    return order_id


# ---------------------------------------------------------------- what the tables hold

#: Longest text per field, as the orders tables declare it (hub/models/orders.py, String(n)).
ORDER_TEXT_MAX = {"order_id": ORDER_ID_MAX, "shop_id": 128, "buyer_id": 191, "buyer_nick": 191,
                  "platform_status": 64, "logistics_company": 191, "tracking_no": 255}
ITEM_TEXT_MAX = {"sub_order_id": 64, "sku_id": 64, "product_id": 64, "category": 64}
#: Money magnitudes (fen): ¥10 trillion; far inside BigInteger, and sums of many orders stay inside it.
MAX_FEN = 10 ** 15
MAX_QUANTITY = 2 ** 31 - 1  # order_items.quantity is an Integer
ORDER_MONEY = ("total_fen", "paid_fen", "postage_fen", "discount_fen")
ITEM_MONEY = ("price_fen", "paid_fen")


#: Text the tables hold without a length limit (Text columns): checked for storable characters only.
ORDER_TEXT_FREE = ("receiver_name", "receiver_phone", "receiver_address")
ITEM_TEXT_FREE = ("title",)
_ORDER_TEXT = (*ORDER_TEXT_MAX, *ORDER_TEXT_FREE)
_ITEM_TEXT = (*ITEM_TEXT_MAX, *ITEM_TEXT_FREE)
_order_text, _item_text = attrgetter(*_ORDER_TEXT), attrgetter(*_ITEM_TEXT)


def _unstorable(value: str) -> str:
    """Why the tables cannot hold ``value`` ("" if they can): a NUL (PostgreSQL refuses it in text),
    or a lone surrogate (``"\\ud83d"`` in JSON, half an emoji: no UTF-8, neither database takes it)."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "is not valid Unicode (half of an emoji?)"
    return ""


def _check_chars(order: "Order") -> None:
    """All the text fields at once (one scan); the field at fault is looked for only when one is."""
    values = [*_order_text(order)]
    for item in order.items:
        values += _item_text(item)
    if not _unstorable("".join(values)):
        return
    named = [(name, getattr(order, name)) for name in _ORDER_TEXT] + [
        (f"items[{i}].{name}", getattr(item, name)) for i, item in enumerate(order.items) for name in _ITEM_TEXT]
    for name, value in named:
        if why := _unstorable(value):
            raise PayloadError(name, why)


def _check_fits(order: "Order") -> None:
    """A ``PayloadError`` naming the field that the tables cannot hold (too long, out of range, a NUL
    or half an emoji): a bad CSV line or webhook payload is refused, rather than the database failing
    the whole write."""
    def text(name: str, value: str, limit: int) -> None:
        if len(value) > limit:
            raise PayloadError(name, f"longer than {limit} characters ({len(value)})")

    def money(name: str, value: int) -> None:
        if not -MAX_FEN <= value <= MAX_FEN:
            raise PayloadError(name, f"out of range: at most {MAX_FEN} fen in absolute value, got {value}")

    for name, limit in ORDER_TEXT_MAX.items():
        text(name, getattr(order, name), limit)
    for name in ORDER_MONEY:
        money(name, getattr(order, name))
    for i, item in enumerate(order.items):
        for name, limit in ITEM_TEXT_MAX.items():
            text(f"items[{i}].{name}", getattr(item, name), limit)
        for name in ITEM_MONEY:
            money(f"items[{i}].{name}", getattr(item, name))
        if not 0 <= item.quantity <= MAX_QUANTITY:
            raise PayloadError(f"items[{i}].quantity", f"out of range: at most {MAX_QUANTITY}, got {item.quantity}")
    _check_chars(order)
