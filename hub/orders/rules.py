"""Rule tags for many customers at once (after a bulk import).

The batched equivalent of ``CustomerService.apply_order_rules`` — same definitions, computed in SQL
per chunk of customers instead of one transaction per customer: spend = paid_fen of orders created
in the last 365 days whose status is not pending_payment/closed/refunded; count = orders not
pending_payment/closed; VIP (vip_level 1) when spend ≥ ``vip_threshold_fen``; 复购 when count ≥ 2; one
tag per item category of counted orders. Tags are only added (source ``rule``, by ``rules``), never
removed, and ``paid_total_fen``/``order_count``/``vip_level`` are overwritten — as the single path does.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from sqlalchemy import case, func, select

from ..customers.tags import ensure_tag
from ..db import Database, retry_busy
from ..models import Customer, CustomerTag
from ..models.orders import OrderItemRow, OrderRow
from .bulk import executemany, in_list
from .store import dialect_of

orders_t, items_t = OrderRow.__table__, OrderItemRow.__table__
customers_t, ctags = Customer.__table__, CustomerTag.__table__
NOT_SPEND = ("pending_payment", "closed", "refunded")
NOT_COUNTED = ("pending_payment", "closed")


def usable_tag(name: str) -> bool:
    """A category that can name a tag (1–64 characters); others are not tags."""
    return bool(name and name.strip()) and len(name.strip()) <= 64


async def apply_rules_bulk(db: Database, now: float, threshold: int, customer_ids: Iterable[int],
                           chunk: int = 5000) -> None:
    """Recompute rule stats and tags for ``customer_ids``, a chunk of customers per transaction."""
    ids = sorted(set(customer_ids))
    tag_ids: dict[str, int] = {}
    for start in range(0, len(ids), chunk):
        part = ids[start:start + chunk]

        async def once() -> None:
            async with db.write() as conn:
                await _chunk(conn, now, threshold, part, tag_ids)

        await retry_busy(once)


async def _chunk(conn: Any, now: float, threshold: int, ids: list[int], tag_ids: dict[str, int]) -> None:
    dialect = await dialect_of(conn)
    year = now - 365 * 86400
    spend = func.sum(case(((orders_t.c.created_at >= year) & orders_t.c.status.not_in(NOT_SPEND),
                           orders_t.c.paid_fen), else_=0))
    count = func.sum(case((orders_t.c.status.not_in(NOT_COUNTED), 1), else_=0))
    rows = (await conn.execute(select(orders_t.c.customer_id, spend.label("spend"), count.label("n"))
                               .where(in_list(dialect, orders_t.c.customer_id, ids))
                               .group_by(orders_t.c.customer_id))).all()
    cats = (await conn.execute(select(orders_t.c.customer_id, items_t.c.category).distinct().join(
        orders_t, orders_t.c.id == items_t.c.order_row_id).where(
        in_list(dialect, orders_t.c.customer_id, ids) & orders_t.c.status.not_in(NOT_COUNTED)
        & (items_t.c.category != "")))).all()
    categories: dict[int, set[str]] = defaultdict(set)
    for r in cats:
        if usable_tag(r.category):
            categories[r.customer_id].add(r.category.strip())
    stats, links = [], []
    for r in rows:
        spent, n = int(r.spend or 0), int(r.n or 0)
        vip = 1 if threshold and spent >= threshold else 0
        stats.append((spent, n, vip, r.customer_id))
        names = (["VIP"] if vip else []) + (["复购"] if n >= 2 else []) + sorted(categories[r.customer_id])
        for name in names:
            if name not in tag_ids:
                tag_ids[name] = await ensure_tag(conn, name)
            links.append((r.customer_id, tag_ids[name], "rule", "rules", now))
    await executemany(conn, dialect, "update", customers_t, ("id", "paid_total_fen", "order_count", "vip_level"),
                      stats)
    await executemany(conn, dialect, "insert_ignore", ctags, ("customer_id", "tag_id", "source", "by", "at"), links)
