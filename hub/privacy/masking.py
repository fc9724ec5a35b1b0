"""Masking of personal data (PIPL "minimum necessary"): phone numbers, landlines, ID-card numbers,
bank cards, e-mail addresses and street addresses are shown masked to roles without the right to see them.

Who sees what (documented in docs/privacy.md):

* ``admin`` (and the API-token service account, which acts as admin) sees personal data unmasked;
* ``supervisor`` and ``agent`` see it masked; revealing one value is an explicit, audited action
  (``POST /api/reveal``).

Everything here is pure (no I/O, no clock): ``mask_text`` on free text (messages, search snippets,
exports), ``mask_order`` on an order as ``hub.orders.store.order_json`` returns it.

Formats: mobile ``138****5678``; landline ``010-****5678``; ID card ``1101**********123X`` (checksum
and birth date checked, so an 18-digit order number is left alone); bank card ``6222 **** **** 0123``
style ``6222***********0123`` (Luhn-checked UnionPay/Visa/Mastercard prefixes); e-mail
``z***@example.com``; street address: the administrative part is kept (``浙江省杭州市西湖区****``),
in free text the house/room numbers after a road name (``文三路**号``, ``**栋**单元**室``).
"""
from __future__ import annotations

import re
from datetime import date
from typing import Any, Optional, Protocol

PII_ROLES = frozenset({"admin"})
STARS = "****"

_MOBILE = re.compile(r"(?<![\d*])(\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?![\d*])")
_LANDLINE = re.compile(r"(?<![\d*])(0\d{2,3})([- ])?(\d{3,4})(\d{4})(?![\d*])")
_ID_CARD = re.compile(r"(?<![\dA-Za-z*])(\d{17}[\dXx])(?![\dA-Za-z*])")
_CARD = re.compile(r"(?<![\d*])((?:\d[ -]?){15,18}\d)(?![\d*])")
_EMAIL = re.compile(r"(?<![A-Za-z0-9._%+-])([A-Za-z0-9])[A-Za-z0-9._%+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})")
_HOUSE_NO = re.compile(r"(?<=[路街道巷弄村])\d+(?=号)")
_BUILDING = re.compile(r"\d+(?=(?:号楼|栋|幢|单元|室))")
_ADMIN_MARK = re.compile(r"(?:省|自治区|特别行政区|市|州|盟|地区|区|县|旗)")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


class HasRole(Protocol):
    role: str


def can_see_pii(user: Optional[HasRole]) -> bool:
    """Whether ``user`` may see personal data unmasked (admins only; see the module docstring)."""
    return user is not None and getattr(user, "role", None) in PII_ROLES


def is_id_card(digits: str) -> bool:
    """A mainland resident ID number (GB 11643): valid birth date and check character."""
    if len(digits) != 18 or not digits[:17].isdigit():
        return False
    try:
        born = date(int(digits[6:10]), int(digits[10:12]), int(digits[12:14]))
    except ValueError:
        return False
    if not 1900 <= born.year <= 2100:
        return False
    total = sum(int(d) * w for d, w in zip(digits[:17], _ID_WEIGHTS))
    return _ID_CHECK[total % 11] == digits[17].upper()


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def is_bank_card(digits: str) -> bool:
    """16-19 digits, a UnionPay / Visa / Mastercard prefix and a valid Luhn check digit."""
    return (16 <= len(digits) <= 19 and (digits.startswith(("62", "4")) or digits[:2] in
            {"51", "52", "53", "54", "55"}) and luhn_ok(digits))


def _id_sub(m: re.Match[str]) -> str:
    value = m.group(1)
    return value[:4] + "*" * 10 + value[-4:] if is_id_card(value) else value


def _card_sub(m: re.Match[str]) -> str:
    raw = m.group(1)
    digits = re.sub(r"[ -]", "", raw)
    if not is_bank_card(digits):
        return raw
    return digits[:4] + "*" * (len(digits) - 8) + digits[-4:]


def _mobile_sub(m: re.Match[str]) -> str:
    return f"{m.group(1) or ''}{m.group(2)}{STARS}{m.group(4)}"


def _landline_sub(m: re.Match[str]) -> str:
    return f"{m.group(1)}-{STARS}{m.group(4)}"


def mask_text(text: str) -> str:
    """``text`` with every phone number, ID card, bank card, e-mail and house number masked."""
    if not text:
        return text
    out = _ID_CARD.sub(_id_sub, text)
    out = _CARD.sub(_card_sub, out)
    out = _MOBILE.sub(_mobile_sub, out)
    out = _LANDLINE.sub(_landline_sub, out)
    out = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", out)
    out = _HOUSE_NO.sub("**", out)
    return _BUILDING.sub("**", out)


def has_pii(text: str) -> bool:
    return bool(text) and mask_text(text) != text


def mask_address(address: str) -> str:
    """A postal address: the administrative part (province/city/district) kept, the rest masked."""
    if not address:
        return address
    head = address[:12]
    end = 0
    for m in _ADMIN_MARK.finditer(head):
        end = m.end()
    if end == 0:
        end = min(3, len(address) - 1)
    return address[:end] + STARS if end < len(address) else mask_text(address)


def mask_name(name: str) -> str:
    """A person's name: the first character kept (``张*``, ``欧阳**``→``欧**``)."""
    if not name or "*" in name:
        return name
    return name[0] + "*" * max(1, min(len(name) - 1, 3))


def mask_phone_field(value: str) -> str:
    """A field meant to hold a phone number: masked even when it is not a well-formed one."""
    if not value:
        return value
    masked = mask_text(value)
    if masked != value or "*" in value:
        return masked
    digits = [i for i, ch in enumerate(value) if ch.isdigit()]
    if len(digits) < 7:
        return value if not digits else STARS
    keep = set(digits[:3] + digits[-4:])
    return "".join(ch if (not ch.isdigit() or i in keep) else "*" for i, ch in enumerate(value))


def mask_for(user: Optional[HasRole], text: Optional[str]) -> Optional[str]:
    """``text`` as ``user`` may see it."""
    if text is None or can_see_pii(user):
        return text
    return mask_text(text)


ORDER_FIELDS = {"receiver_name": mask_name, "receiver_phone": mask_phone_field,
                "receiver_address": mask_address, "buyer_nick": mask_text}


def mask_order_dict(order: dict[str, Any]) -> dict[str, Any]:
    out = dict(order)
    for name, fn in ORDER_FIELDS.items():
        if isinstance(out.get(name), str):
            out[name] = fn(out[name])
    if "masked" not in out:
        out["masked"] = any(out.get(k) != order.get(k) for k in ORDER_FIELDS)
    return out


def mask_order(user: Optional[HasRole], order: Optional[dict[str, Any]]) -> Optional[dict[str, Any]]:
    """An order (``order_json`` shape) as ``user`` may see it: receiver fields masked for non-admins."""
    if order is None or can_see_pii(user):
        return order
    return mask_order_dict(order)
