"""Customer 360: one customer, many identities; tags; merges (recorded, reversible)."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class Customer(Base):
    __tablename__ = "customers"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    vip_level: Mapped[int] = mapped_column(Integer, default=0)
    paid_total_fen: Mapped[int] = mapped_column(BigInteger, default=0)  # last 365 days, kept by the tag rules
    order_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    last_contact_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    merged_into: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)  # set on the customer merged away
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)


class Identity(Base):
    """openid / external_userid (per account), unionid, phone, platform buyer ids (taobao, jd, youzan, douyin)."""

    __tablename__ = "identities"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    account_id: Mapped[str] = mapped_column(String(64), default="")  # "" for brand-wide keys (unionid, phone)
    value: Mapped[str] = mapped_column(String(191))
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("kind", "account_id", "value", name="uq_identity"),)


class TagGroup(Base):
    __tablename__ = "tag_groups"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)


class Tag(Base):
    __tablename__ = "tags"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    group_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    color: Mapped[str] = mapped_column(String(16), default="")


class CustomerTag(Base):
    __tablename__ = "customer_tags"
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(BigId, ForeignKey("tags.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), default="manual")  # manual | rule | keyword | channel
    by: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[float] = mapped_column(Float)
    __table_args__ = (Index("ix_customer_tags_tag", "tag_id"),)


class TagRemoval(Base):
    """An agent took this tag off this customer: the keyword rules do not put it back (a manual add
    does). In the database, so every process and every restart honours it."""

    __tablename__ = "customer_tag_removals"
    customer_id: Mapped[int] = mapped_column(BigId, ForeignKey("customers.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    by: Mapped[str] = mapped_column(String(64), default="")
    at: Mapped[float] = mapped_column(Float)


class Merge(Base):
    """``source`` was merged into ``target``: who, when, why, and what moved (so it can be undone)."""

    __tablename__ = "customer_merges"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(BigId)
    target_id: Mapped[int] = mapped_column(BigId)
    by: Mapped[str] = mapped_column(String(64))
    why: Mapped[str] = mapped_column(Text, default="")
    moved: Mapped[str] = mapped_column(Text)  # JSON: {"identities": [...], "tags": [...], "conversations": [...], "orders": [...]}
    at: Mapped[float] = mapped_column(Float)
    undone_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    undone_by: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
