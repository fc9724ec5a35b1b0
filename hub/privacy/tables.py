"""Which tables hold rows about a customer, a conversation, a message, a session or an order.

Discovered from the live database at the time of use (so tables added later by other modules, or
made outside the ORM such as a search side table, are covered) by column-name convention:

* an integer column ``customer_id`` -> customers, ``conversation_id`` -> conversations, ``message_id`` -> messages,
  ``session_id`` -> service sessions, ``order_row_id`` -> orders;
* plus the few references that do not follow it (``customer_merges.source_id/target_id``,
  ``customers.merged_into``).

Rows are deleted children first: every referencing table, then the subjects themselves in
``ROOT_ORDER``. The search index is told through ``forget.search_forget`` in the same transaction.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from sqlalchemy import column, delete, inspect, select, table

from ..models import Message

from . import forget

SUBJECTS = ("customers", "conversations", "messages", "sessions", "orders")
BY_COLUMN = {"customer_id": "customers", "conversation_id": "conversations", "message_id": "messages",
             "session_id": "sessions", "order_row_id": "orders"}
EXTRA = {("customer_merges", "source_id"): "customers", ("customer_merges", "target_id"): "customers",
         ("customers", "merged_into"): "customers"}
ROOTS = {"messages": "messages", "service_sessions": "sessions", "orders": "orders",
         "conversations": "conversations", "customers": "customers"}
ROOT_ORDER = ("messages", "service_sessions", "orders", "conversations", "customers")
# the privacy module's own records must survive an erasure (they hold no personal data)
KEEP = frozenset({"erasure_records", "legal_holds", "purge_runs", "privacy_state", "audit_log"})
BATCH = 500
messages_t = Message.__table__


@dataclass
class References:
    """(table, column) pairs per subject; ``children`` excludes the subject's own table."""

    children: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # rows of a child table referenced in turn by ``<singular>_id`` (a ticket's events, an alert's)
    dependents: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    text_columns: dict[str, list[str]] = field(default_factory=dict)  # every string column, per table
    index_tables: set[str] = field(default_factory=set)  # SQLite virtual tables (FTS) and their shadows

    def is_index(self, name: str) -> bool:
        return name in self.index_tables or any(name.startswith(v + "_") for v in self.index_tables)

    def of(self, subject: str) -> list[tuple[str, str]]:
        return self.children.get(subject, [])


def _virtual(sync_conn: Any) -> set[str]:
    if sync_conn.dialect.name != "sqlite":
        return set()
    return {r[0] for r in sync_conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'")}


def _reflect(sync_conn: Any) -> dict[str, list[tuple[str, str]]]:
    insp = inspect(sync_conn)
    out: dict[str, list[tuple[str, str]]] = {}
    for name in insp.get_table_names():
        try:
            cols = insp.get_columns(name)
        except Exception:  # noqa: BLE001 - a virtual table's shadow the dialect cannot describe
            continue
        out[name] = [(c["name"], str(c["type"]).upper()) for c in cols]
    return out


async def discover(conn: Any) -> References:
    tables = await conn.run_sync(_reflect)
    refs = References(children={s: [] for s in SUBJECTS}, index_tables=await conn.run_sync(_virtual))
    for name, cols in tables.items():
        if refs.is_index(name):
            continue  # the search index is handled through forget.search_forget
        for col, kind in cols:
            if any(t in kind for t in ("CHAR", "TEXT", "CLOB", "STRING")):
                refs.text_columns.setdefault(name, []).append(col)
            if name in KEEP:
                continue
            subject = EXTRA.get((name, col)) or BY_COLUMN.get(col)
            if "INT" not in kind:  # e.g. order_push_messages.message_id is a platform's push id, not ours
                subject = None
            if subject is not None and (ROOTS.get(name) != subject or (name, col) in EXTRA):
                refs.children[subject].append((name, col))
    for name, cols in tables.items():  # e.g. tickets <- ticket_events.ticket_id
        if name in ROOTS or name in KEEP or refs.is_index(name) or not name.endswith("s") \
                or not any(col == "id" for col, _ in cols):
            continue
        ref = name[:-1] + "_id"
        refs.dependents[name] = [(other, col) for other, other_cols in tables.items() for col, kind in other_cols
                                 if col == ref and "INT" in kind and other not in KEEP and not refs.is_index(other)]
    return refs


def _in_batches(ids: Iterable[int], size: int = BATCH) -> Iterable[list[int]]:
    ids = list(ids)
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


async def delete_where(conn: Any, name: str, col: str, ids: Iterable[int]) -> int:
    total = 0
    for chunk in _in_batches(ids):
        res = await conn.execute(delete(table(name, column(col))).where(column(col).in_(chunk)))
        total += max(res.rowcount or 0, 0)
    return total


async def delete_children(conn: Any, refs: References, name: str, col: str, ids: list[int],
                          counts: dict[str, int], depth: int = 0) -> None:
    """Rows of ``name`` whose ``col`` is in ``ids``, after the rows that reference those in turn."""
    dependents = refs.dependents.get(name) if depth < 3 else None
    if dependents:
        own: list[int] = []
        for chunk in _in_batches(ids):
            own += (await conn.execute(select(column("id")).select_from(table(name, column("id"), column(col)))
                                       .where(column(col).in_(chunk)))).scalars().all()
        for other, other_col in dependents:
            await delete_children(conn, refs, other, other_col, own, counts, depth + 1)
    n = await delete_where(conn, name, col, ids)
    if n:
        counts[name] = counts.get(name, 0) + n


async def delete_messages(conn: Any, refs: References, ids: list[int], counts: dict[str, int]) -> None:
    """Messages ``ids`` and every row that references them, the search index included."""
    if not ids:
        return
    rows: list[tuple[int, str | None]] = []
    for chunk in _in_batches(sorted(ids)):
        # locked first, in id order (PostgreSQL): a search indexing pass holding some of them commits
        # its index rows before they are read and removed below; one coming later no longer finds them
        rows += [(r[0], r[1]) for r in (await conn.execute(
            select(messages_t.c.id, messages_t.c.text).where(messages_t.c.id.in_(chunk))
            .order_by(messages_t.c.id).with_for_update())).all()]
    await forget.search_forget(conn, rows)  # the index needs the text it was built from
    for name, col in refs.of("messages"):
        await delete_children(conn, refs, name, col, ids, counts)
    counts["messages"] = counts.get("messages", 0) + await delete_where(conn, "messages", "id", ids)


async def delete_subject(conn: Any, refs: References, subject: str, root: str, ids: list[int],
                         counts: dict[str, int]) -> None:
    """Rows referencing ``subject`` ids, then the subject rows themselves."""
    if not ids:
        return
    for name, col in refs.of(subject):
        await delete_children(conn, refs, name, col, ids, counts)
    n = await delete_where(conn, root, "id", ids)
    if n:
        counts[root] = counts.get(root, 0) + n
