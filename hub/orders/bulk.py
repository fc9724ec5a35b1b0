"""The bulk write path (CSV import): thousands of orders per transaction, same rules as ``store``.

Per batch, inside ONE write transaction:
  1. the stored copies of the batch's orders are read in a few ``IN`` queries and every incoming
     order is checked with ``is_newer`` against its stored copy: late or repeated copies are skipped
     (no-regress, exactly as ``store.write_order``);
  2. customers are resolved with ``IdentityMap``: an in-memory (kind, account, value) → customer map
     kept for the whole import run, filled from the database for keys it has not seen (batched
     ``IN`` queries, merges followed) — same outcome as ``identity.resolve``: the buyer key decides,
     else a strong key (unionid, verified phone), else a new customer; unknown keys are attached; a
     unionid owned by another customer merges the two (``identity.merge``, recorded and reversible);
  3. new rows get ids reserved up front (SQLite: ``max(id)+1…`` under the write lock; PostgreSQL:
     ``nextval`` of the table's sequence), in (customer, created) order so the one random-access
     index of a bulk load (orders by customer) is filled page by page, while row ids stay ascending;
     orders and their items go in with precompiled Core inserts (SQLite: multi-row ``VALUES`` of up
     to 8,000 parameters; PostgreSQL: ``executemany``); replaced orders are updated and their items
     rewritten. Each order's outcome is the one ``store.write_order`` would give it.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Iterable, Sequence

from sqlalchemy import String, Table, any_, bindparam, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY

from ..customers import identity as ident
from ..models import Customer, Identity
from ..models.orders import OrderItemRow, OrderRow
from .linking import key_tuples, strong
from .model import Order, is_newer
from .store import dialect_of

orders_t, items_t = OrderRow.__table__, OrderItemRow.__table__
customers_t, identities_t = Customer.__table__, Identity.__table__
CHUNK = 20000  # values per IN query (one bound parameter, see in_list)
MAX_SQLITE_PARAMS = 8000

ORDER_COLS = ("id", "platform", "order_id", "shop_id", "customer_id", "buyer_id", "buyer_nick", "status",
              "platform_status", "refund_status", "total_fen", "paid_fen", "postage_fen", "discount_fen",
              "logistics_company", "tracking_no", "receiver_name", "receiver_phone", "receiver_address",
              "created_at", "paid_at", "shipped_at", "completed_at", "modified_at", "raw", "synced_at")
ITEM_COLS = ("order_row_id", "sub_order_id", "sku_id", "product_id", "title", "quantity", "price_fen", "paid_fen",
             "status", "refund_status", "category")
CUSTOMER_COLS = ("id", "name", "vip_level", "paid_total_fen", "order_count", "created_at", "legal_hold")
IDENTITY_COLS = ("customer_id", "kind", "account_id", "value", "verified", "created_at")
_SQL: dict[tuple[str, str, str], str] = {}


def _chunks(seq: Sequence[Any], n: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i:i + n]


def in_list(dialect: Any, column: Any, values: Sequence[Any]) -> Any:
    """``column IN (values)`` with ONE bound parameter whatever the count: ``= ANY(:array)`` on
    PostgreSQL, ``IN (SELECT value FROM json_each(:json))`` on SQLite (no per-value binds to render)."""
    values = list(values)
    if dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    table = func.json_each(bindparam(None, json.dumps(values, ensure_ascii=False), type_=String)).table_valued("value")
    return column.in_(select(table.c.value))


def _sql(dialect: Any, kind: str, table: Table, cols: tuple[str, ...]) -> str:
    """A Core statement compiled once per dialect, positional in ``cols`` order: ``insert``,
    ``insert_ignore`` (ON CONFLICT DO NOTHING) or ``update`` (by ``id``; ``id`` goes last)."""
    key = (dialect.name, kind, table.name)
    if key not in _SQL:
        if kind == "update":
            stmt = table.update().where(table.c.id == bindparam("_id")).ordered_values(
                *[(table.c[c], bindparam(c)) for c in cols if c != "id"])
            compiled = stmt.compile(dialect=dialect)
        else:
            stmt = table.insert()
            if kind == "insert_ignore":
                stmt = (postgresql.insert if dialect.name == "postgresql" else sqlite.insert)(table)
                stmt = stmt.on_conflict_do_nothing()
            compiled = stmt.compile(dialect=dialect, column_keys=list(cols))
        names = list(compiled.positiontup or [])
        expected = [c for c in cols if c != "id"] + ["_id"] if kind == "update" else list(cols)
        if names != expected:
            raise RuntimeError(f"unexpected parameter order for {kind} {table.name}: {names}")
        _SQL[key] = str(compiled)
    return _SQL[key]


async def executemany(conn: Any, dialect: Any, kind: str, table: Table, cols: tuple[str, ...],
                      rows: list[tuple]) -> None:
    """Run ``kind`` (see ``_sql``) for every row. SQLite inserts go as multi-row ``VALUES``
    statements of up to ~32k parameters — one call into SQLite per thousand-odd rows, not one per
    row — cut in power-of-two sizes, so few distinct statements are ever prepared."""
    if not rows:
        return
    if kind == "update" or dialect.name != "sqlite":
        await conn.exec_driver_sql(_sql(dialect, kind, table, cols), rows)
        return
    per = 1 << (max(1, MAX_SQLITE_PARAMS // len(cols))).bit_length() - 1
    i = 0
    while i < len(rows):
        n = min(per, 1 << (len(rows) - i).bit_length() - 1)
        part = rows[i:i + n]
        await conn.exec_driver_sql(_values_sql(dialect, kind, table, cols, n), tuple(chain.from_iterable(part)))
        i += n


def _values_sql(dialect: Any, kind: str, table: Table, cols: tuple[str, ...], n: int) -> str:
    key = ("sqlite-values", kind, table.name + str(n))
    if key not in _SQL:
        q = dialect.identifier_preparer.quote
        one = "(" + ",".join("?" * len(cols)) + ")"
        tail = " ON CONFLICT DO NOTHING" if kind == "insert_ignore" else ""
        names = ", ".join(q(c) for c in cols)
        _SQL[key] = f"INSERT INTO {q(table.name)} ({names}) VALUES " + ",".join([one] * n) + tail
    return _SQL[key]


class IdAllocator:
    """Ids for new rows of ``table`` in this transaction (see module docstring): ``await
    reserve(n)`` once, then ``take()`` up to n times."""

    def __init__(self, conn: Any, dialect: Any, table: Table):
        self.conn, self.dialect, self.table = conn, dialect, table
        self.pool: list[int] = []
        self.next_id = 0

    async def reserve(self, n: int) -> None:
        if n <= 0:
            return
        if self.dialect.name == "postgresql":
            res = await self.conn.exec_driver_sql(
                f"SELECT nextval(pg_get_serial_sequence('{self.table.name}', 'id')) FROM generate_series(1, {int(n)})")
            self.pool = [r[0] for r in res][::-1] + self.pool
        else:  # the write lock is held: nobody else inserts until we commit
            top = (await self.conn.exec_driver_sql(f"SELECT max(id) FROM {self.table.name}")).scalar()
            self.next_id = (top or 0) + 1

    def take(self) -> int:
        if self.pool or self.dialect.name == "postgresql":
            return self.pool.pop()
        self.next_id += 1
        return self.next_id - 1


KeyT = tuple[str, str, str]  # (kind, account_id, value), normalised


@dataclass
class IdentityMap:
    """(kind, account_id, value) → customer id for one import run; ``merged`` maps customers merged
    away during the run to where they went. Cleared when it grows past ``limit`` keys."""

    limit: int = 2_000_000
    ids: dict[KeyT, int] = field(default_factory=dict)
    merged: dict[int, int] = field(default_factory=dict)
    named: set[int] = field(default_factory=set)  # customers given a name (or checked) this run
    _undo: list[tuple[str, Any]] = field(default_factory=list)

    def add(self, key: KeyT, cid: int) -> None:
        self.ids[key] = cid
        self._undo.append(("key", key))

    def merge(self, source: int, target: int) -> None:
        self.merged[source] = target
        self._undo.append(("merge", source))

    def checkpoint(self) -> None:
        """The batch committed: what it added stays."""
        self._undo.clear()

    def rollback(self) -> None:
        """The batch's transaction rolled back: forget the customers and keys it made up."""
        for what, item in reversed(self._undo):
            (self.ids if what == "key" else self.merged).pop(item, None)
        self._undo.clear()

    def get(self, key: KeyT) -> int | None:
        return self.live(self.ids.get(key))

    def live(self, cid: int | None) -> int | None:
        while cid is not None and cid in self.merged:
            cid = self.merged[cid]
        return cid

    async def prefetch(self, conn: Any, dialect: Any, keys: Iterable[KeyT]) -> None:
        if len(self.ids) > self.limit and not self._undo:
            self.ids.clear()
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for key in set(keys):
            if key not in self.ids:
                groups[(key[0], key[1])].append(key[2])
        found: dict[KeyT, int] = {}
        for (kind, account), values in groups.items():
            for chunk in _chunks(values):
                rows = await conn.execute(select(identities_t.c.value, identities_t.c.customer_id).where(
                    (identities_t.c.kind == kind) & (identities_t.c.account_id == account)
                    & in_list(dialect, identities_t.c.value, chunk)))
                found.update({(kind, account, r.value): r.customer_id for r in rows})
        owners = sorted(set(found.values()))
        moved: dict[int, int] = {}
        for chunk in _chunks(owners):
            rows = await conn.execute(select(customers_t.c.id).where(
                in_list(dialect, customers_t.c.id, chunk) & customers_t.c.merged_into.is_not(None)))
            for r in rows:
                moved[r.id] = await ident.live_customer(conn, r.id)
        self.ids.update({k: moved.get(v, v) for k, v in found.items()})


@dataclass
class BatchResult:
    written: list[tuple[int, str, str, int | None]] = field(default_factory=list)  # row id, platform, id, customer
    unchanged: int = 0
    customers: set[int] = field(default_factory=set)


def _order_row(row_id: int, o: Order, customer_id: int | None, raw: str, now: float) -> tuple:
    return (row_id, o.platform, o.order_id, o.shop_id, customer_id, o.buyer_id, o.buyer_nick, o.status,
            o.platform_status, o.refund_status, o.total_fen, o.paid_fen, o.postage_fen, o.discount_fen,
            o.logistics_company, o.tracking_no, o.receiver_name, o.receiver_phone, o.receiver_address,
            o.created_at, o.paid_at, o.shipped_at, o.completed_at, o.modified_at, raw, now)


def _lines(items: list[tuple], row_id: int, o: Order) -> None:
    for i in o.items:
        items.append((row_id, i.sub_order_id, i.sku_id, i.product_id, i.title, i.quantity, i.price_fen, i.paid_fen,
                       i.status, i.refund_status, i.category))


async def _stored(conn: Any, dialect: Any, orders: list[Order]) -> dict[tuple[str, str], Any]:
    by_platform: dict[str, list[str]] = defaultdict(list)
    for o in orders:
        by_platform[o.platform].append(o.order_id)
    out: dict[tuple[str, str], Any] = {}
    for platform, ids in by_platform.items():
        for chunk in _chunks(ids):
            rows = await conn.execute(select(orders_t.c.id, orders_t.c.order_id, orders_t.c.status,
                                             orders_t.c.modified_at, orders_t.c.customer_id).where(
                (orders_t.c.platform == platform) & in_list(dialect, orders_t.c.order_id, chunk)))
            out.update({(platform, r.order_id): r for r in rows})
    return out


async def write_batch(conn: Any, now: float, orders: list[Order], ids: IdentityMap, *,
                      raws: list[str] | None = None, trust_phone: bool = True, run: Any = None) -> BatchResult:
    """Write ``orders`` (distinct (platform, order_id)) inside the caller's write transaction.
    ``run`` (optional, ``rules.RunStats``) is told of customers created and orders inserted."""
    result = BatchResult()
    dialect = await dialect_of(conn)
    stored = await _stored(conn, dialect, orders)
    todo: list[tuple[Order, str, Any]] = []
    for n, o in enumerate(orders):
        old = stored.get((o.platform, o.order_id))
        if old is not None and not is_newer({"status": old.status, "modified_at": old.modified_at}, o):
            result.unchanged += 1
        else:
            todo.append((o, raws[n] if raws is not None else "{}", old))
    keyed = [(key_tuples(o, trust_phone), o, raw, old) for o, raw, old in todo]
    wanted: list[KeyT] = []
    for (keys, _), _o, _r, _old in keyed:
        wanted.extend(k[:3] for k in keys)
    await ids.prefetch(conn, dialect, wanted)
    known = ids.ids
    customer_ids, order_ids = IdAllocator(conn, dialect, customers_t), IdAllocator(conn, dialect, orders_t)
    await customer_ids.reserve(sum(  # at most one new customer per order whose deciding keys are unknown
        1 for (keys, _), *_ in keyed if keys and keys[0][:3] not in known
        and not any(strong(k) and k[:3] in known for k in keys[1:])))
    await order_ids.reserve(sum(1 for *_, old in keyed if old is None))
    new_customers, new_identities, merges, names = [], [], [], {}
    fresh, inserts, updates, items, replaced = [], [], [], [], []
    live = ids.live if ids.merged else None
    for (keys, name), o, raw, old in keyed:
        cid = None
        if keys:
            k3s = [k[:3] for k in keys]
            owners = [known.get(k3) for k3 in k3s]
            if live is not None:
                owners = [live(c) for c in owners]
            cid = owners[0]
            if cid is None:
                cid = next((c for k, c in zip(keys[1:], owners[1:]) if c is not None and strong(k)), None)
            if cid is None:
                cid = customer_ids.take()
                new_customers.append((cid, name, 0, 0, 0, now, False))
                if run is not None:
                    run.created(cid)
                if name:
                    ids.named.add(cid)
            elif name and cid not in ids.named:
                names[cid] = name  # as identity.resolve: names a customer that has none yet
            for k, k3, owner in zip(keys, k3s, owners):
                if owner is None:
                    ids.add(k3, cid)
                    new_identities.append((cid, k[0], k[1], k[2], k[3], now))
                elif owner != cid and k[0] == "unionid":
                    merges.append((cid, owner, k[2]))
                    ids.merge(cid, owner)
                    live = ids.live
                    if run is not None:
                        run.taint(cid)
                        run.taint(owner)
                    cid = owner
        elif old is not None:
            cid = old.customer_id
        if old is None:
            fresh.append((cid or 0, o.created_at, o.order_id, o, raw))
            continue
        row_id = old.id
        replaced.append(row_id)
        updates.append(_order_row(row_id, o, cid, raw, now)[1:] + (row_id,))
        if old.customer_id:
            result.customers.add(old.customer_id)
        if run is not None:
            run.taint(cid)
            run.taint(old.customer_id)
        _lines(items, row_id, o)
        result.written.append((row_id, o.platform, o.order_id, cid))
    # new rows in (customer, created) order: the customer index — the one random-access index of a
    # bulk load — then takes its inserts page by page; row ids stay ascending (appends)
    fresh.sort(key=lambda f: (f[0], f[1], f[2]))
    for cid, _created, _id, o, raw in fresh:
        row_id = order_ids.take()
        inserts.append(_order_row(row_id, o, cid or None, raw, now))
        if run is not None:
            run.inserted(cid or None, o)
        _lines(items, row_id, o)
        result.written.append((row_id, o.platform, o.order_id, cid or None))
    await executemany(conn, dialect, "insert", customers_t, CUSTOMER_COLS, new_customers)
    await executemany(conn, dialect, "insert", identities_t, IDENTITY_COLS, new_identities)
    await executemany(conn, dialect, "insert", orders_t, ORDER_COLS, inserts)
    await executemany(conn, dialect, "update", orders_t, ORDER_COLS, updates)
    for chunk in _chunks(replaced):
        await conn.execute(items_t.delete().where(in_list(dialect, items_t.c.order_row_id, chunk)))
    await executemany(conn, dialect, "insert", items_t, ITEM_COLS, items)
    if names:
        await conn.execute(customers_t.update().where((customers_t.c.id == bindparam("_id"))
                                                      & (customers_t.c.name == "")).values(name=bindparam("_name")),
                           [{"_id": cid, "_name": name} for cid, name in names.items()])
        ids.named.update(names)
    for source, target, unionid in merges:
        await ident.merge(conn, now, source=source, target=target, by="system", why=f"same unionid {unionid}")
    if merges:  # rows written above with a merged-away customer now follow the merge
        result.written = [(r, p, i, ids.live(c)) for r, p, i, c in result.written]
    result.customers |= {c for *_, c in result.written if c}
    return result
