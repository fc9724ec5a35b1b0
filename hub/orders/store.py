"""Storing orders: the idempotent, no-regress upsert, the profile's recent orders, and what follows
a change (rule tags, live ``order.updated`` pushes).

    change = await upsert(db, order, effects=effects)   # None = nothing changed (late / repeat)
    orders = await recent_orders(db, customer_id, 5)     # the profile beside every session

``write_order`` is the unit every way in shares (pushes, pollers, the generic webhook): inside the
caller's write transaction it compares the incoming order with the stored row using ``is_newer``
(never back to an earlier status, never over newer data), links the customer through identity
resolution, and writes the row and — only when the incoming copy wins — replaces its items. The
order, its items, its identities (and a push's dedup record, or a poller's watermark) commit together.
Effects (``Effects.after``) run after the commit: rule tags through
``CustomerService.apply_order_rules`` and ``order.updated`` to agents holding an open session
(assigned/active) of that customer. The bulk CSV path (``bulk.py``) keeps the same rules.
"""
from __future__ import annotations

import inspect
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..db import Database, retry_busy
from ..models import Conversation, ServiceSession, User
from ..models.base import fixed
from ..models.orders import OrderItemRow, OrderRow
from .linking import link_customer
from ..privacy.masking import mask_order
from .model import Order, OrderItem, is_newer, shown_order_id

log = logging.getLogger(__name__)
orders_t = OrderRow.__table__
items_t = OrderItemRow.__table__
conv_t = Conversation.__table__
sessions_t = ServiceSession.__table__
users_t = User.__table__
OPEN_STATES = ("assigned", "active")


@dataclass(frozen=True)
class Change:
    """An order row that was inserted or replaced."""

    row_id: int
    platform: str
    order_id: str
    customer_id: int | None
    previous_customer_id: int | None = None
    inserted: bool = True


async def dialect_of(conn: Any) -> Any:
    """The SQLAlchemy dialect of a hub connection (``AsyncConnection``, or the SQLite loop connection)."""
    return await conn.run_sync(lambda c: c.dialect)


def dialect_insert(dialect: Any) -> Any:
    return postgresql.insert if dialect.name == "postgresql" else sqlite.insert


def write_tx(db: Database, durable: bool = False) -> Any:
    """``db.write()``, durable (fsynced commit on SQLite) when asked and the database supports it:
    for writes the sender is told are saved (pushes, webhooks, the end of an import)."""
    if durable and _DURABLE:
        return db.write(durable=True)
    return db.write()


_DURABLE = "durable" in inspect.signature(Database.write).parameters


def raw_text(order: Order) -> str:
    """The payload as JSON text; a lone surrogate (half an emoji) in a field no column takes stays
    escaped (``\\ud83d``), which the database can store."""
    try:
        text = json.dumps(order.raw, ensure_ascii=False, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return "{}"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(order.raw, separators=(",", ":"), default=str)
    return text


def order_values(order: Order, customer_id: int | None, now: float, raw: str | None = None) -> dict[str, Any]:
    return {
        "platform": order.platform, "order_id": order.order_id, "shop_id": order.shop_id, "customer_id": customer_id,
        "buyer_id": order.buyer_id, "buyer_nick": order.buyer_nick, "status": order.status,
        "platform_status": order.platform_status, "refund_status": order.refund_status,
        "total_fen": order.total_fen, "paid_fen": order.paid_fen, "postage_fen": order.postage_fen,
        "discount_fen": order.discount_fen, "logistics_company": order.logistics_company,
        "tracking_no": order.tracking_no, "receiver_name": order.receiver_name,
        "receiver_phone": order.receiver_phone, "receiver_address": order.receiver_address,
        "created_at": order.created_at, "paid_at": order.paid_at, "shipped_at": order.shipped_at,
        "completed_at": order.completed_at, "modified_at": order.modified_at,
        "raw": raw_text(order) if raw is None else raw, "synced_at": now,
    }


def item_values(row_id: int, item: OrderItem) -> dict[str, Any]:
    return {"order_row_id": row_id, "sub_order_id": item.sub_order_id, "sku_id": item.sku_id,
            "product_id": item.product_id, "title": item.title, "quantity": item.quantity,
            "price_fen": item.price_fen, "paid_fen": item.paid_fen, "status": item.status,
            "refund_status": item.refund_status, "category": item.category}


async def write_order(conn: Any, now: float, order: Order, *, trust_phone: bool = True,
                      _again: bool = False) -> Change | None:
    """Insert or replace ``order`` inside the caller's write transaction; None if the stored copy is
    as new or newer (``is_newer``), in which case nothing is written."""
    q = select(orders_t.c.id, orders_t.c.status, orders_t.c.modified_at, orders_t.c.customer_id).where(
        (orders_t.c.platform == order.platform) & (orders_t.c.order_id == order.order_id))
    dialect = await dialect_of(conn)
    if dialect.name == "postgresql":
        q = q.with_for_update()
    row = (await conn.execute(q)).first()
    if row is not None and not is_newer({"status": row.status, "modified_at": row.modified_at}, order):
        return None
    customer_id = await link_customer(conn, now, order, trust_phone)
    if customer_id is None and row is not None:
        customer_id = row.customer_id
    values = order_values(order, customer_id, now)
    if row is None:
        stmt = dialect_insert(dialect)(orders_t).values(**values).on_conflict_do_nothing(
            index_elements=["platform", "order_id"]).returning(orders_t.c.id)
        row_id = (await conn.execute(stmt)).scalar()
        if row_id is None:  # inserted meanwhile by another writer (PostgreSQL): compare with that copy
            if _again:
                raise RuntimeError(f"order {order.platform}/{order.order_id} vanished during upsert")
            return await write_order(conn, now, order, trust_phone=trust_phone, _again=True)
    else:
        row_id = row.id
        await conn.execute(update(orders_t).where(orders_t.c.id == row_id).values(**values))
        await conn.execute(delete(items_t).where(items_t.c.order_row_id == row_id))
    if order.items:
        await conn.execute(items_t.insert(), [item_values(row_id, item) for item in order.items])
    return Change(row_id, order.platform, order.order_id, customer_id,
                  None if row is None else row.customer_id, row is None)


async def upsert(conn_or_db: Any, order: Order, *, now: float | None = None, effects: "Effects | None" = None,
                 trust_phone: bool = True, durable: bool = True) -> Change | None:
    """Idempotent upsert of one order. Given a connection, it writes inside that (caller's)
    transaction and runs no effects; given a ``Database``, it opens one write transaction (retried
    while the database is busy) and runs ``effects`` after the commit."""
    now = time.time() if now is None else now
    if not isinstance(conn_or_db, Database):
        return await write_order(conn_or_db, now, order, trust_phone=trust_phone)

    async def once() -> Change | None:
        async with write_tx(conn_or_db, durable) as conn:
            return await write_order(conn, now, order, trust_phone=trust_phone)

    change = await retry_busy(once)
    if change is not None and effects is not None:
        await effects.after([change])
    return change


# ---------------------------------------------------------------- reading

def order_json(row: Any, items: list[Any]) -> dict[str, Any]:
    """An order as the console sees it (money in fen, times epoch seconds, receiver as stored); order_id
    as its sender knows it, order_key as stored (``model.order_key``: a custom order's has its shop)."""
    return {
        "platform": row.platform, "order_id": shown_order_id(row.platform, row.order_id, row.shop_id),
        "order_key": row.order_id, "shop_id": row.shop_id, "status": row.status,
        "platform_status": row.platform_status, "refund_status": row.refund_status, "paid_fen": row.paid_fen,
        "total_fen": row.total_fen, "postage_fen": row.postage_fen, "discount_fen": row.discount_fen,
        "items": [{"title": i.title, "quantity": i.quantity, "paid_fen": i.paid_fen, "sku_id": i.sku_id,
                   "status": i.status, "refund_status": i.refund_status} for i in items],
        "logistics_company": row.logistics_company, "tracking_no": row.tracking_no,
        "created_at": row.created_at, "paid_at": row.paid_at, "shipped_at": row.shipped_at,
        "completed_at": row.completed_at, "modified_at": row.modified_at, "receiver_name": row.receiver_name,
        "receiver_phone": row.receiver_phone, "receiver_address": row.receiver_address,
    }


_LIST_COLUMNS = [c for c in orders_t.c if c.name not in ("raw",)]


async def _with_items(conn: Any, rows: list[Any]) -> list[dict[str, Any]]:
    if not rows:
        return []
    items = (await conn.execute(select(items_t).where(items_t.c.order_row_id.in_([r.id for r in rows]))
                                .order_by(items_t.c.id))).all()
    by_order: dict[int, list[Any]] = {}
    for i in items:
        by_order.setdefault(i.order_row_id, []).append(i)
    return [order_json(r, by_order.get(r.id, [])) for r in rows]


async def recent_orders(db: Database, customer_id: int, limit: int = 5) -> list[dict[str, Any]]:
    """The customer's latest orders across platforms, newest first (``CustomerService.orders`` hook)."""
    async with db.read() as conn:
        rows = (await conn.execute(select(*_LIST_COLUMNS).where(orders_t.c.customer_id == customer_id)
                                   .order_by(orders_t.c.created_at.desc(), orders_t.c.id.desc())
                                   .limit(max(1, min(int(limit), 200))))).all()
        return await _with_items(conn, rows)


async def get_order(conn_or_db: Any, platform: str | None = None, order_id: str | None = None, *,
                    row_id: int | None = None) -> dict[str, Any] | None:
    if isinstance(conn_or_db, Database):
        async with conn_or_db.read() as conn:
            return await get_order(conn, platform, order_id, row_id=row_id)
    q = select(*_LIST_COLUMNS)
    q = q.where(orders_t.c.id == row_id) if row_id is not None else \
        q.where((orders_t.c.platform == platform) & (orders_t.c.order_id == order_id))
    rows = (await conn_or_db.execute(q)).all()
    out = await _with_items(conn_or_db, rows)
    return out[0] if out else None


#: An item's refund state whose money went back: its paid_fen no longer counts toward spend.
REFUNDED_ITEM = "refunded"


def spend_fen(paid_fen: int, refunded_fen: int = 0) -> int:
    """What one order counts toward the customer's spend (VIP): what was paid less what its refunded
    items had paid (a partial refund), never below 0. The single, bulk (``spend_sql``) and import-run
    (``RunStats``) paths all count it so."""
    return max(0, int(paid_fen or 0) - int(refunded_fen or 0))


def spend_sql(paid_fen: Any, refunded_fen: Any) -> Any:
    """``spend_fen`` as a SQL expression (``refunded_fen`` may be NULL: no refunded item)."""
    net = paid_fen - func.coalesce(refunded_fen, 0)
    return case((net > 0, net), else_=0)


def refunded_sql() -> Any:
    """The paid_fen of an order's refunded items (NULL: none), a scalar subquery correlated to the
    outer query's order: it reads that order's items by their index (a grouped subquery to join
    read every item of every order for each customer's figures)."""
    return (select(func.sum(items_t.c.paid_fen)).where(
        (items_t.c.order_row_id == orders_t.c.id) & (items_t.c.refund_status == REFUNDED_ITEM))
        .correlate(orders_t).scalar_subquery())


def order_spend_fen(order: Order) -> int:
    return spend_fen(order.paid_fen, sum(i.paid_fen for i in order.items if i.refund_status == REFUNDED_ITEM))


async def rule_inputs(conn: Any, customer_id: int) -> list[dict[str, Any]]:
    """The customer's orders as ``apply_order_rules`` wants them: {paid_fen, spend_fen, status,
    created_at, categories}; spend_fen is ``spend_fen`` (partial refunds taken off)."""
    rows = (await conn.execute(select(orders_t.c.id, orders_t.c.paid_fen, orders_t.c.status, orders_t.c.created_at,
                                      refunded_sql().label("refunded_fen"))
                               .where(orders_t.c.customer_id == customer_id))).all()
    cats = (await conn.execute(select(items_t.c.order_row_id, items_t.c.category).join(
        orders_t, orders_t.c.id == items_t.c.order_row_id).where(
        (orders_t.c.customer_id == customer_id) & (items_t.c.category != "")))).all()
    by_order: dict[int, set[str]] = {}
    for c in cats:
        if c.category and c.category.strip() and len(c.category.strip()) <= 64:  # 1-64 chars: a tag name
            by_order.setdefault(c.order_row_id, set()).add(c.category.strip())
    return [{"paid_fen": r.paid_fen, "spend_fen": spend_fen(r.paid_fen, r.refunded_fen), "status": r.status,
             "created_at": r.created_at, "categories": sorted(by_order.get(r.id, ()))} for r in rows]


async def open_sessions(conn: Any, customer_ids: list[int]) -> list[Any]:
    """(session id, agent id, customer id) of the assigned/active sessions of these customers."""
    if not customer_ids:
        return []
    return (await conn.execute(select(sessions_t.c.id, sessions_t.c.agent_id, conv_t.c.customer_id).join(
        conv_t, conv_t.c.id == sessions_t.c.conversation_id).where(
        conv_t.c.customer_id.in_(customer_ids) & sessions_t.c.state.in_(fixed(*OPEN_STATES))))).all()


class Effects:
    """What follows committed changes: rule tags for each touched customer, then ``order.updated``
    to every agent holding an open session of that customer. Failures are logged, never raised: the
    orders are committed, and tags are recomputed on the customer's next change."""

    def __init__(self, db: Database, customers: Any = None, push: Any = None):
        self.db = db
        self.customers = customers
        self.push = push

    async def after(self, changes: list[Change]) -> None:
        touched = {c.customer_id for c in changes if c.customer_id} | \
            {c.previous_customer_id for c in changes if c.previous_customer_id}
        for customer_id in sorted(touched):
            try:
                await self.rules(customer_id)
            except Exception:  # noqa: BLE001
                log.exception("order rule tags for customer %s failed", customer_id)
        try:
            await self.notify([c for c in changes if c.customer_id])
        except Exception:  # noqa: BLE001
            log.exception("order.updated push failed")

    async def rules(self, customer_id: int) -> None:
        if self.customers is None:
            return
        async with self.db.read() as conn:
            inputs = await rule_inputs(conn, customer_id)
        await self.customers.apply_order_rules(customer_id, inputs)

    async def notify(self, changes: list[Change]) -> None:
        if self.push is None or not changes:
            return
        async with self.db.read() as conn:
            sessions = await open_sessions(conn, sorted({c.customer_id for c in changes}))
            if not sessions:
                return
            orders = {c.row_id: await get_order(conn, row_id=c.row_id) for c in changes}
            agent_ids = sorted({s.agent_id for s in sessions if s.agent_id})
            roles = dict((await conn.execute(select(users_t.c.id, users_t.c.role).where(
                users_t.c.id.in_(agent_ids)))).all()) if agent_ids else {}
        for change in changes:
            for s in sessions:
                if s.customer_id == change.customer_id and s.agent_id and orders.get(change.row_id):
                    # as the receiving agent may see it (session.new's mask_bundle): an unknown user is masked
                    order = mask_order(_Viewer(roles.get(s.agent_id)), orders[change.row_id])
                    await self.push.to_user(s.agent_id, "order.updated", {
                        "session_id": s.id, "customer_id": change.customer_id, "order": order})


@dataclass(frozen=True)
class _Viewer:
    """A user as ``mask_order`` looks at them: only the role counts."""

    role: str | None
