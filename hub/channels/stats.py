"""Per-channel statistics by day (Asia/Shanghai): scans, adds, conversations first attributed, and
conversions: customers attributed that day who paid for an order placed after that first contact.

A conversion is a paid order: one whose status is past payment and not undone (paid, shipped,
completed, or refunding: an after-sale still in progress may yet be refused). Unpaid orders
(pending_payment), orders closed without payment (closed) and fully refunded orders (refunded: the money
went back) are not: the same orders the customer profile leaves out of spend (``hub.orders.rules.NOT_SPEND``),
so a completed full refund takes its conversion back. A partial refund leaves the order's status as it is.

Orders live in the ``orders`` table of the order-sync feature (``customer_id``, ``created_at`` epoch
seconds, ``status``); it is read with raw SQL and may not exist yet, in which case ``conversions`` is 0.
"""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, inspect, select, text

from ..db import Database
from ..errors import bad_request
from ..models.channels import ChannelStat
from ..orders.rules import NOT_SPEND
from .rules import TZ

log = logging.getLogger(__name__)
stats_t = ChannelStat.__table__
MAX_DAYS = 366

CONVERTED_SQL = text("""
SELECT a.day AS day, COUNT(DISTINCT c.customer_id) AS n
FROM channel_attributions a JOIN conversations c ON c.id = a.conversation_id
WHERE a.code_id = :code_id AND a.day >= :since AND c.customer_id IS NOT NULL
  AND EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id AND o.created_at > a.at
              AND o.status NOT IN :unpaid)
GROUP BY a.day
""").bindparams(bindparam("unpaid", value=list(NOT_SPEND), expanding=True))


def day_range(now: float, days: int) -> list[str]:
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise bad_request("invalid_days", f"days: 1 to {MAX_DAYS}", "days")
    today: date = datetime.fromtimestamp(now, TZ).date()
    return [(today - timedelta(days=i)).isoformat() for i in range(days - 1, -1, -1)]


async def conversions(db: Database, code_id: int, since: str) -> dict[str, int]:
    """day -> customers first attributed that day with a paid order after it; {} while there is no
    orders table."""
    try:
        async with db.read() as conn:  # its own transaction: a failed statement aborts one on PostgreSQL
            if not await conn.run_sync(lambda sync: inspect(sync).has_table("orders")):
                return {}
            rows = (await conn.execute(CONVERTED_SQL, {"code_id": code_id, "since": since})).all()
    except Exception as exc:  # noqa: BLE001 - the orders schema is another feature's; never fail the stats
        log.warning("channel conversions unavailable: %s", exc)
        return {}
    return {r.day: int(r.n) for r in rows}


async def channel_stats(db: Database, now: float, code_id: int, days: int) -> list[dict[str, Any]]:
    span = day_range(now, days)
    async with db.read() as conn:
        rows = (await conn.execute(select(stats_t).where(
            (stats_t.c.code_id == code_id) & (stats_t.c.day >= span[0])))).all()
    by_day = {r.day: r for r in rows}
    converted = await conversions(db, code_id, span[0])
    out = []
    for day in span:
        r = by_day.get(day)
        out.append({"day": day, "scans": r.scans if r else 0, "adds": r.adds if r else 0,
                    "conversations": r.conversations if r else 0, "conversions": converted.get(day, 0)})
    return out
