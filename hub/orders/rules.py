"""Rule tags for many customers at once (after a bulk import).

The batched equivalent of ``CustomerService.apply_order_rules`` — same definitions, computed in SQL
per chunk of customers instead of one transaction per customer: spend = paid_fen (less the paid_fen of
refunded items, at least 0: ``store.spend_fen``) of orders created
in the last 365 days whose status is not pending_payment/closed/refunded; count = orders not
pending_payment/closed; VIP (vip_level 1) when spend ≥ ``vip_threshold_fen``; 复购 when count ≥ 2; one
tag per item category of counted orders. Tags are only added (source ``rule``, by ``rules``), never
removed, and ``paid_total_fen``/``order_count``/``vip_level`` are overwritten — as the single path does.

``RunStats`` spares the SQL for customers an import CREATED: their orders all came through the
import, so their rule inputs are summed in memory as the orders are written (compact arrays indexed
by customer id). Before use they are checked against the database with an index-only count of each
customer's orders; a customer another writer added an order to meanwhile, or whose order was
replaced or merged, goes the SQL way.
"""
from __future__ import annotations

from array import array
from collections import defaultdict
from typing import Any, Iterable

from sqlalchemy import case, func, select

from ..customers.tags import drop_stale, ensure_tag
from ..db import Database, retry_busy
from ..models import Customer, CustomerTag
from ..models.orders import OrderItemRow, OrderRow
from .bulk import executemany, in_list
from .store import dialect_of, order_spend_fen, refunded_sql, spend_sql

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
            known = dict(tag_ids)  # tags made in a transaction that rolls back must be forgotten
            async with db.write() as conn:
                await _chunk(conn, now, threshold, part, known)
            tag_ids.update(known)

        await retry_busy(once)


async def _chunk(conn: Any, now: float, threshold: int, ids: list[int], tag_ids: dict[str, int]) -> None:
    dialect = await dialect_of(conn)
    year = now - 365 * 86400
    spend = func.sum(case(((orders_t.c.created_at >= year) & orders_t.c.status.not_in(NOT_SPEND),
                           spend_sql(orders_t.c.paid_fen, refunded_sql())), else_=0))
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
    await _store(conn, dialect, now, threshold, [(r.customer_id, int(r.spend or 0), int(r.n or 0),
                                                  categories[r.customer_id]) for r in rows], tag_ids)


async def _store(conn: Any, dialect: Any, now: float, threshold: int, inputs: list[tuple[int, int, int, Iterable[str]]],
                 tag_ids: dict[str, int]) -> None:
    """(customer, spend, counted orders, categories) → customer stats and rule tags."""
    stats, links = [], []
    for cid, spent, n, cats in inputs:
        vip = 1 if threshold and spent >= threshold else 0
        stats.append((spent, n, vip, cid))
        names = (["VIP"] if vip else []) + (["复购"] if n >= 2 else []) + sorted(cats)
        for name in names:
            if name not in tag_ids:
                tag_ids[name] = await ensure_tag(conn, name)
            links.append((cid, tag_ids[name], "rule", "rules", now))
    await executemany(conn, dialect, "update", customers_t, ("id", "paid_total_fen", "order_count", "vip_level"),
                      stats)
    await executemany(conn, dialect, "insert_ignore", ctags, ("customer_id", "tag_id", "source", "by", "at"), links)
    kept: dict[int, set[str]] = {cid: set() for cid, *_ in inputs}
    names_of = {i: n for n, i in tag_ids.items()}
    for cid, tag_id, *_ in links:
        kept[cid].add(names_of[tag_id])
    await drop_stale(conn, kept, "rule", "rules")


class RunStats:
    """Rule inputs of the customers created during one import run (see module docstring)."""

    MAX_SPAN = 20_000_000  # ids further than this from the run's first customer go the SQL way

    def __init__(self, now: float):
        self.year = now - 365 * 86400
        self.base: int | None = None
        self.total, self.counted = array("l"), array("l")  # total -1 = not created by this run
        self.spend, self.cats = array("q"), array("Q")  # cats: bit per category (63 at most)
        self.bits: dict[str, int] = {}  # category (stripped) -> bit
        self.bit_of: dict[str, int] = {}  # category as written -> bit, -1 = not a tag
        self.tainted: set[int] = set()
        self.broken = False  # a batch was rolled back after being counted: use SQL for everyone

    def _at(self, cid: int) -> int:
        if self.base is None:
            self.base = cid
        i = cid - self.base
        return i if 0 <= i < self.MAX_SPAN else -1

    def created(self, cid: int) -> None:
        i = self._at(cid)
        if i < 0:
            self.tainted.add(cid)
            return
        if i >= len(self.total):
            grow = i + 1 - len(self.total)
            self.total.extend([-1] * grow)
            self.counted.extend([0] * grow)
            self.spend.extend([0] * grow)
            self.cats.extend([0] * grow)
        self.total[i] = 0

    def inserted(self, cid: int | None, order: Any) -> None:
        """A new order row of ``cid`` (only counted if this run created ``cid``)."""
        if cid is None or self.base is None:
            return
        i = cid - self.base
        if not 0 <= i < len(self.total) or self.total[i] < 0:
            return
        self.total[i] += 1
        if order.status in NOT_COUNTED:
            return
        self.counted[i] += 1
        if order.created_at >= self.year and order.status not in NOT_SPEND:
            self.spend[i] += order_spend_fen(order)
        for item in order.items:
            bit = self.bit_of.get(item.category, -2)
            if bit == -2:
                bit = self.bit_of[item.category] = self._bit(item.category)
            if bit >= 63:
                self.tainted.add(cid)
            elif bit >= 0:
                self.cats[i] |= 1 << bit

    def _bit(self, category: str) -> int:
        """The bit of a category (-1 = not a tag name); bits ≥ 63 do not fit: SQL for them."""
        if not usable_tag(category):
            return -1
        return self.bits.setdefault(category.strip(), len(self.bits))

    def taint(self, cid: int | None) -> None:
        if cid is not None:
            self.tainted.add(cid)

    def fresh(self) -> list[int]:
        if self.broken:
            return []
        base = self.base or 0
        return [base + i for i, n in enumerate(self.total) if n > 0 and base + i not in self.tainted]

    def inputs(self, cid: int) -> tuple[int, int, int, list[str]]:
        i = cid - (self.base or 0)
        mask = self.cats[i]
        return cid, self.spend[i], self.counted[i], [c for c, b in self.bits.items() if mask >> b & 1]


async def apply_rules_run(db: Database, now: float, threshold: int, customer_ids: Iterable[int], run: RunStats,
                          chunk: int = 5000) -> None:
    """Like ``apply_rules_bulk``, using ``run`` for the customers it covers (after checking them)."""
    touched = set(customer_ids)
    fresh = [cid for cid in run.fresh() if cid in touched]
    tag_ids: dict[str, int] = {}
    for start in range(0, len(fresh), chunk):
        part = fresh[start:start + chunk]

        async def once() -> set[int]:
            known = dict(tag_ids)
            async with db.write() as conn:
                dialect = await dialect_of(conn)
                counts = dict((await conn.execute(select(orders_t.c.customer_id, func.count()).where(
                    in_list(dialect, orders_t.c.customer_id, part)).group_by(orders_t.c.customer_id))).all())
                ok = [cid for cid in part if counts.get(cid) == run.total[cid - (run.base or 0)]]
                await _store(conn, dialect, now, threshold, [run.inputs(cid) for cid in ok], known)
            tag_ids.update(known)
            return set(ok)

        touched -= await retry_busy(once)
    await apply_rules_bulk(db, now, threshold, touched, chunk)
