"""Archive search: the terms through the index, the filters on the message and its conversation,
newest first, keyset-paged by message id, each candidate confirmed by a substring check.

No cut-off by age: the index covers the whole archive, and a page reads the index newest first
and stops once it has ``limit`` hits."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from ...db import Database
from .indexer import backend
from .tokens import QueryTerm, contains_all, parse_query

MAX_LIMIT = 200
SCOPED_MAX = 20_000  # messages left by conversation filters below which they drive the query (SQLite)
SCAN_MARGIN = 8  # candidates fetched beyond the hits still wanted (nearly every candidate is a hit)

COLUMNS = ("m.id, m.conversation_id, m.account_id, m.channel, m.direction, m.kind, m.sender, m.text, "
           "m.sent_at, m.created_at, m.recalled_at, c.customer_id, c.channel_code, c.peer_id")


@dataclass(frozen=True)
class SearchFilters:
    """Every filter is optional; all given ones must hold."""

    account: str | None = None
    channel: str | None = None  # the platform channel: wecom | oa | kf
    channel_code: str | None = None  # the QR-code channel a conversation came from
    agent: int | None = None  # a user id: conversations that agent served, or messages they sent
    customer: int | None = None
    tag: str | None = None  # customers carrying this tag (by name)
    since: float | None = None  # archived at or after (epoch seconds)
    until: float | None = None  # archived before
    direction: str | None = None  # in | out

    @property
    def conversation_scoped(self) -> bool:
        """A filter on the conversation side, which may leave few messages to look at."""
        return any(v is not None for v in (self.customer, self.agent, self.tag, self.channel_code))

    def where(self) -> tuple[list[str], dict[str, Any]]:
        clauses: list[str] = []
        params: dict[str, Any] = {}
        if self.account is not None:
            clauses.append("m.account_id = :account")
            params["account"] = self.account
        if self.channel is not None:
            clauses.append("m.channel = :channel")
            params["channel"] = self.channel
        if self.channel_code is not None:
            clauses.append("c.channel_code = :channel_code")
            params["channel_code"] = self.channel_code
        if self.direction is not None:
            clauses.append("m.direction = :direction")
            params["direction"] = self.direction
        if self.customer is not None:
            clauses.append("c.customer_id = :customer")
            params["customer"] = self.customer
        if self.agent is not None:
            clauses.append("(m.sender = :agent_sender OR m.conversation_id IN "
                           "(SELECT conversation_id FROM service_sessions WHERE agent_id = :agent))")
            params.update(agent=self.agent, agent_sender=f"agent:{self.agent}")
        if self.tag is not None:
            clauses.append("c.customer_id IN (SELECT ct.customer_id FROM customer_tags ct "
                           "JOIN tags t ON t.id = ct.tag_id WHERE t.name = :tag)")
            params["tag"] = self.tag
        if self.since is not None:
            clauses.append("m.created_at >= :since")
            params["since"] = self.since
        if self.until is not None:
            clauses.append("m.created_at < :until")
            params["until"] = self.until
        return clauses, params


@dataclass(frozen=True)
class SearchPage:
    terms: list[QueryTerm]
    rows: list[Any]  # message rows (COLUMNS), newest first
    next_before: int | None  # pass as ``before`` for the next page; None on the last one


async def search(db: Database, query: str, filters: SearchFilters = SearchFilters(), limit: int = 50,
                 before: int | None = None) -> SearchPage:
    """One page of messages whose text contains every term of ``query`` (with no words, every message the
    filters leave: "everything this customer said", "everything of that day"); raises tokens.QueryError."""
    limit = max(1, min(limit, MAX_LIMIT))
    clauses, filter_params = filters.where()
    if not (query or "").strip() and clauses:
        return await _filtered(db, clauses, filter_params, limit, before)
    terms = parse_query(query)
    index = backend(db)
    scoped = db.is_sqlite and filters.conversation_scoped and await _few_messages(db, clauses, filter_params)
    from_where, id_col, params = (index.scoped_match_sql if scoped else index.match_sql)(terms)
    params.update(filter_params)
    sql = from_where + "".join(f" AND {c}" for c in clauses) + f" AND {id_col} < :before"
    statement = text(f"SELECT {COLUMNS} FROM {sql} ORDER BY {id_col} DESC LIMIT :n")
    hits: list[Any] = []
    cursor = before if before is not None else 2 ** 62
    want = limit + 1  # one more tells whether there is a next page
    while len(hits) < want:
        n = (want - len(hits)) + SCAN_MARGIN
        rows = await _fetch(db, statement, {**params, "before": cursor, "n": n})
        for row in rows:
            if contains_all(row.text, terms):
                hits.append(row)
                if len(hits) == want:
                    break
        if len(rows) < n:
            break
        cursor = rows[-1].id
    page = hits[:limit]
    return SearchPage(terms, page, page[-1].id if len(hits) > limit else None)


async def _filtered(db: Database, clauses: list[str], params: dict[str, Any], limit: int,
                    before: int | None) -> SearchPage:
    """Messages (not events) the filters leave, newest first, keyset-paged by id like a search."""
    statement = text(f"SELECT {COLUMNS} FROM messages m JOIN conversations c ON c.id = m.conversation_id "
                     "WHERE m.kind NOT LIKE 'event.%' AND " + " AND ".join(clauses) +
                     " AND m.id < :before ORDER BY m.id DESC LIMIT :n")
    rows = await _fetch(db, statement, {**params, "before": before if before is not None else 2 ** 62, "n": limit + 1})
    page = rows[:limit]
    return SearchPage([], page, page[-1].id if len(rows) > limit else None)


async def _few_messages(db: Database, clauses: list[str], params: dict[str, Any]) -> bool:
    """Whether the filters leave at most ``SCOPED_MAX`` messages (then they drive the query)."""
    statement = text("SELECT count(*) FROM (SELECT 1 FROM conversations c JOIN messages m ON m.conversation_id = c.id"
                     " WHERE " + " AND ".join(clauses) + f" LIMIT {SCOPED_MAX + 1}) AS scoped")
    return (await _fetch(db, statement, params))[0][0] <= SCOPED_MAX


async def _fetch(db: Database, statement: Any, params: dict[str, Any]) -> list[Any]:
    """SQLite: in the loop's thread while the statement stays within ``IN_LOOP_BUDGET`` (a page from
    the index takes well under a millisecond; a thread hop costs more than that under load), else
    again off the loop (a common term under a very selective filter can read a long posting list)."""
    if db.sync_engine is not None:
        rows = _fetch_in_loop(db, statement, params, IN_LOOP_BUDGET)
        if rows is not None:
            return rows
    reader = db.read() if db.sync_engine is None else db.read_heavy()
    async with reader as conn:
        return (await conn.execute(statement, params)).all()


IN_LOOP_BUDGET = 0.005  # CPU seconds a search statement may hold the event loop


def _fetch_in_loop(db: Database, statement: Any, params: dict[str, Any], budget: float) -> list[Any] | None:
    """The rows, or None when SQLite was interrupted at the budget (nothing was changed: a read)."""
    deadline = time.thread_time() + budget  # CPU time: being preempted on a busy machine is not work
    with db.sync_engine.connect() as conn:
        raw = conn.connection.driver_connection
        raw.set_progress_handler(lambda: time.thread_time() > deadline, 2000)
        try:
            return conn.execution_options(hub_read_autocommit=True).execute(statement, params).all()
        except OperationalError as exc:
            if "interrupted" in str(exc).lower():
                return None
            raise
        finally:
            raw.set_progress_handler(None, 0)
