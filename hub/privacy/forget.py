"""How erasure and the retention purge remove messages from the search index, in the same write
transaction that deletes the messages (so the index never outlives the archive).

``search_forget(conn, rows)`` with ``rows`` = (message id, text) pairs read just before deletion:

* the archive search's own index (hub/archive/search): SQLite's contentless FTS5 table forgets a
  row only when given the terms it was indexed with, and only rows the indexer has reached (its
  cursor) were indexed; PostgreSQL's side table is deleted by id;
* any further index registers ``register(fn)``: ``async fn(conn, rows)``.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from sqlalchemy import select, text

SearchForget = Callable[[Any, list[tuple[int, "str | None"]]], Awaitable[None]]
_FORGETTERS: list[SearchForget] = []


def register(fn: SearchForget) -> SearchForget:
    if fn not in _FORGETTERS:
        _FORGETTERS.append(fn)
    return fn


async def _archive_index(conn: Any, rows: list[tuple[int, str | None]]) -> None:
    try:
        from ..archive.search import postgres_index, sqlite_index
        from ..archive.search.indexer import CURSOR
    except ImportError:  # the hub without archive search
        return
    from ..models import SearchCursor
    dialect = await conn.run_sync(lambda sync_conn: sync_conn.dialect.name)
    if dialect == "sqlite":
        exists = (await conn.execute(text("SELECT 1 FROM sqlite_master WHERE name = :n"),
                                     {"n": sqlite_index.TABLE})).first()
        if not exists:
            return
        cur = SearchCursor.__table__
        last = (await conn.execute(select(cur.c.last_id).where(cur.c.name == CURSOR))).scalar() or 0
        await sqlite_index.remove(conn, [(mid, body) for mid, body in rows if mid <= last])
    else:
        exists = (await conn.execute(text("SELECT to_regclass(:n)"), {"n": postgres_index.TABLE})).scalar()
        if exists:
            await postgres_index.remove(conn, rows)


async def search_forget(conn: Any, rows: list[tuple[int, str | None]]) -> None:
    """Remove these messages from every search index (no-op for an index that does not exist)."""
    if not rows:
        return
    await _archive_index(conn, rows)
    for fn in list(_FORGETTERS):
        await fn(conn, rows)
