"""Pure retention policy: how long each account's messages, media and orders are kept, and what a
purge at ``now`` must remove. No I/O, no clock reads.

A policy row per account (``"*"``: the hub-wide default, which also governs orders: an order is not
tied to one account). In an account's row ``None`` = as the default, ``FOREVER`` (-1; "forever" in
the API) = kept forever even when the default has a limit; in the default row both mean forever.
Media messages (image, voice, video, file) follow ``media_days``; every other message ``messages_days``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from ..errors import bad_request

DEFAULT_ACCOUNT = "*"
DAY = 86400.0
MAX_DAYS = 36500  # 100 years: "forever" is FOREVER, not a large number
FOREVER = -1
MEDIA_KINDS = ("image", "voice", "video", "file")


@dataclass(frozen=True)
class Policy:
    account_id: str = DEFAULT_ACCOUNT
    messages_days: Optional[int] = None
    media_days: Optional[int] = None
    orders_days: Optional[int] = None

    def public(self) -> dict:
        def show(days: Optional[int]) -> object:
            return "forever" if days == FOREVER else days
        return {"account_id": self.account_id, "messages_days": show(self.messages_days),
                "media_days": show(self.media_days), "orders_days": show(self.orders_days)}


@dataclass(frozen=True)
class PurgeTarget:
    """Remove ``what`` ("messages" | "media" | "orders") of ``account_id`` created before ``before``."""

    what: str
    account_id: str
    before: float


def parse_days(value: object, field: str) -> Optional[int]:
    """Days from an API body: a positive integer, "forever", or null (as the default policy)."""
    if value is None or value == "":
        return None
    if value == "forever":
        return FOREVER
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise bad_request("invalid_" + field, f"{field}: a number of days (1-{MAX_DAYS}) or null", field)
    try:
        days = int(value)
    except ValueError:
        raise bad_request("invalid_" + field, f"{field}: a number of days (1-{MAX_DAYS}) or null", field) from None
    if not 1 <= days <= MAX_DAYS:
        raise bad_request("invalid_" + field, f"{field}: a number of days (1-{MAX_DAYS}) or null", field)
    return days


def effective(policies: dict[str, Policy], account_id: str) -> Policy:
    """The account's policy, each unset duration falling back to the default row."""
    default = policies.get(DEFAULT_ACCOUNT, Policy())
    own = policies.get(account_id) or Policy(account_id)

    def pick(mine: Optional[int], base: Optional[int]) -> Optional[int]:
        days = base if mine is None else mine
        return None if days == FOREVER else days

    return Policy(account_id, pick(own.messages_days, default.messages_days),
                  pick(own.media_days, default.media_days), pick(None, default.orders_days))


def cutoff(days: Optional[int], now: float) -> Optional[float]:
    return None if days is None or days == FOREVER else now - days * DAY


def purge_plan(policies: Iterable[Policy], account_ids: Iterable[str], now: float) -> list[PurgeTarget]:
    """What a purge at ``now`` removes: per account, messages and media older than their limits;
    orders older than the default policy's limit."""
    by_id = {p.account_id: p for p in policies}
    plan: list[PurgeTarget] = []
    for account_id in sorted(set(account_ids)):
        p = effective(by_id, account_id)
        for what, days in (("messages", p.messages_days), ("media", p.media_days)):
            before = cutoff(days, now)
            if before is not None:
                plan.append(PurgeTarget(what, account_id, before))
    orders_before = cutoff(by_id.get(DEFAULT_ACCOUNT, Policy()).orders_days, now)
    if orders_before is not None:
        plan.append(PurgeTarget("orders", DEFAULT_ACCOUNT, orders_before))
    return plan
