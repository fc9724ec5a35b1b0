"""PostgreSQL: a side table of tsvectors built from the same terms as SQLite's FTS5 table
(tokens.py: characters and neighbouring pairs at their positions), with a GIN index; a query is a
tsquery of the same plan (bigrams joined by ``<->``, the phrase operator). No text search
configuration touches the terms (the tsvector is given as a literal), so segmentation, stemming
and stop words cannot lose a match."""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import text

from .tokens import QueryTerm, index_terms, tsquery, tsvector

TABLE = "message_search"
DDL = (f"CREATE TABLE IF NOT EXISTS {TABLE} (message_id BIGINT PRIMARY KEY, terms TSVECTOR NOT NULL)",
       f"CREATE INDEX IF NOT EXISTS ix_{TABLE}_terms ON {TABLE} USING GIN (terms)")
# a batch in one statement from two arrays (as rows of an executemany, each was a statement of
# its own for PostgreSQL: 27,000 of them after a 10 s flood in bench/scale.py)
INSERT = (f"INSERT INTO {TABLE} (message_id, terms) SELECT id, CAST(terms AS tsvector) "
          "FROM unnest(CAST(:ids AS bigint[]), CAST(:terms AS text[])) AS u(id, terms) "
          "ON CONFLICT (message_id) DO NOTHING")


DDL_LOCK = 74112  # pg advisory lock: workers starting together on a new schema create the table once


async def ensure(conn: Any) -> None:
    # CREATE ... IF NOT EXISTS is not safe against a concurrent CREATE (a unique violation in the
    # catalog): processes starting at once take turns, the later ones find the table there
    await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": DDL_LOCK})
    for statement in DDL:
        await conn.execute(text(statement))


async def add(conn: Any, rows: Iterable[tuple[int, str | None]]) -> int:
    rows = [(mid, tsvector(index_terms(body))) for mid, body in rows if body]
    if rows:
        await conn.execute(text(INSERT), {"ids": [r[0] for r in rows], "terms": [r[1] for r in rows]})
    return len(rows)


async def remove(conn: Any, rows: Iterable[tuple[int, str | None]]) -> None:
    ids = [mid for mid, _ in rows]
    if ids:
        await conn.execute(text(f"DELETE FROM {TABLE} WHERE message_id = ANY(:ids)"), {"ids": ids})


def match_sql(terms: list[QueryTerm]) -> tuple[str, str, dict[str, Any]]:
    from_clause = (f"{TABLE} s JOIN messages m ON m.id = s.message_id "
                   "JOIN conversations c ON c.id = m.conversation_id")
    return from_clause + " WHERE s.terms @@ CAST(:match AS tsquery)", "s.message_id", {"match": tsquery(terms)}


async def clear(conn: Any) -> None:
    """Empty the index (a rebuild then starts from cursor 0)."""
    await conn.execute(text(f"DELETE FROM {TABLE}"))
