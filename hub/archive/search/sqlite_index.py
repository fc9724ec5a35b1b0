"""SQLite: a contentless FTS5 table keyed by the message id (its rowid), two columns of
pre-computed terms (``uni``: characters, ``bi``: neighbouring pairs; see tokens.py).

Contentless: the text lives once, in ``messages``; the index holds only postings (with positions,
for the bigram phrases). ``unicode61`` with diacritics kept splits on spaces only, since every
character of a term is a token character."""
from __future__ import annotations

from typing import Any, Iterable

from sqlalchemy import text

from .tokens import IndexTerms, QueryTerm, fts5_expression, index_terms

TABLE = "message_fts"
DDL = (f"CREATE VIRTUAL TABLE IF NOT EXISTS {TABLE} USING fts5(uni, bi, content='', columnsize=0, "
       "tokenize='unicode61 remove_diacritics 0')")
INSERT = f"INSERT INTO {TABLE} (rowid, uni, bi) VALUES (:id, :uni, :bi)"
# contentless FTS5 forgets a row when given the very terms it was indexed with
DELETE = f"INSERT INTO {TABLE} ({TABLE}, rowid, uni, bi) VALUES ('delete', :id, :uni, :bi)"


def row_params(message_id: int, terms: IndexTerms) -> dict[str, Any]:
    return {"id": message_id, "uni": " ".join(terms.unigrams), "bi": " ".join(terms.bigrams)}


async def ensure(conn: Any) -> None:
    await conn.execute(text(DDL))


async def add(conn: Any, rows: Iterable[tuple[int, str | None]]) -> int:
    params = [row_params(mid, index_terms(body)) for mid, body in rows if body]
    if params:
        await conn.execute(text(INSERT), params)
    return len(params)


async def remove(conn: Any, rows: Iterable[tuple[int, str | None]]) -> None:
    """Drop messages from the index (erasure), given the text they were indexed with."""
    params = [row_params(mid, index_terms(body)) for mid, body in rows if body]
    if params:
        await conn.execute(text(DELETE), params)


def match_sql(terms: list[QueryTerm]) -> tuple[str, str, dict[str, Any]]:
    """(FROM clause with ``m`` = messages and ``c`` = conversations, the id column, match params).
    CROSS JOIN keeps the index as the outer loop, read newest first and stopped at the page."""
    from_clause = (f"{TABLE} f CROSS JOIN messages m ON m.id = f.rowid "
                   "CROSS JOIN conversations c ON c.id = m.conversation_id")
    return from_clause + f" WHERE {TABLE} MATCH :match", "f.rowid", {"match": fts5_expression(terms)}


async def clear(conn: Any) -> None:
    """Empty the index (a rebuild then starts from cursor 0)."""
    await conn.execute(text(f"INSERT INTO {TABLE} ({TABLE}) VALUES ('delete-all')"))


def scoped_match_sql(terms: list[QueryTerm]) -> tuple[str, str, dict[str, Any]]:
    """The plan for filters that leave few messages (one customer's conversations): read those
    messages newest first and ask the index about each (MATCH with a rowid is a seek), instead of
    walking a common term's whole posting list."""
    from_clause = "conversations c JOIN messages m ON m.conversation_id = c.id"
    exists = f"EXISTS (SELECT 1 FROM {TABLE} WHERE {TABLE}.rowid = m.id AND {TABLE} MATCH :match)"
    return from_clause + f" WHERE {exists}", "m.id", {"match": fts5_expression(terms)}
