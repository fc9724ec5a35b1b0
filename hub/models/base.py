"""The declarative base and shared column types."""
from __future__ import annotations

from sqlalchemy import BigInteger, Integer
from sqlalchemy.orm import DeclarativeBase

# BIGINT on PostgreSQL, INTEGER (the rowid alias, so autoincrement works) on SQLite
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    pass
