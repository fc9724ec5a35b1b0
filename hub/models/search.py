"""Archive search: the indexer's cursor, keyword watches and their hits.

(The full-text index itself is dialect-specific and made by hub/archive/search: an FTS5 table on
SQLite, a tsvector side table with a GIN index on PostgreSQL.)"""
from __future__ import annotations

from sqlalchemy import Boolean, Float, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class SearchCursor(Base):
    """How far the search indexer has read the ``messages`` table (by id)."""

    __tablename__ = "search_cursors"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigId, default=0)
    updated_at: Mapped[float] = mapped_column(Float)


class Watch(Base):
    """A keyword watch: supervisors are told when a customer message contains ``word``."""

    __tablename__ = "search_watches"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    word: Mapped[str] = mapped_column(String(64), unique=True)  # normalised (NFKC, lower case)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[float] = mapped_column(Float)


class WatchHit(Base):
    """A customer message that contained a watched word (one row per watch and message)."""

    __tablename__ = "search_watch_hits"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    watch_id: Mapped[int] = mapped_column(BigId)
    word: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[int] = mapped_column(BigId)
    conversation_id: Mapped[int] = mapped_column(BigId)
    account_id: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[float] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("watch_id", "message_id", name="uq_watch_hit"),
                      Index("ix_watch_hits_at", "at"))


def _register_index_tables() -> None:
    """The PostgreSQL index side table (and its GIN index) is made by hub/archive/search, not by the
    models: schema comparisons must leave it alone (SQLite's FTS5 table is recognised as virtual)."""
    from ..schema import register_external
    register_external("message_search")
    register_external("ix_message_search_terms")


_register_index_tables()
