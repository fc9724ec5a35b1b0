"""The declarative base and shared column types."""
from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Integer, literal_column
from sqlalchemy.orm import DeclarativeBase

# BIGINT on PostgreSQL, INTEGER (the rowid alias, so autoincrement works) on SQLite
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass


def fixed(*values: str) -> Any:
    """Constant strings written into the SQL (``'closed'``) instead of bound parameters, for the
    state columns of tables with a partial index (service_sessions, alerts): SQLite prepares a
    statement again on every execution when a bound value could decide whether a partial index
    applies; the open-session lookup cost 52 us that way against 12 us. Code constants only."""
    for v in values:
        if not v.replace("_", "").isalnum():
            raise ValueError(f"not a plain constant: {v!r}")
    cols = [literal_column(f"'{v}'") for v in values]
    return cols[0] if len(cols) == 1 else cols


def by_conversation(created_at: Any) -> Any:
    """``messages.created_at`` in a condition or min() that must not use its own index: a conversation's
    messages are read through (conversation_id, id). On PostgreSQL ``min(created_at)`` of one
    conversation walked ix_messages_created from the archive's oldest message until it met one of
    this conversation: a whole index scan (200,000 rows, 50-60 ms) for a new customer, at every
    customer message of an assigned session (the unanswered clock), at every handover and in the
    supervisors' timeline."""
    return created_at + 0
