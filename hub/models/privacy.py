"""Privacy (PIPL): retention policies, legal holds, purge runs, erasure records, sealed account secrets."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class RetentionPolicy(Base):
    """How long an account's messages, media messages and orders are kept (days; NULL = forever).
    ``account_id`` "*" is the hub-wide default; orders (not tied to an account) follow it."""

    __tablename__ = "retention_policies"
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    messages_days: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    media_days: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    orders_days: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(64), default="")


class LegalHold(Base):
    """A customer or conversation exempt from purge (and erasure) until the hold is lifted."""

    __tablename__ = "legal_holds"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    target_kind: Mapped[str] = mapped_column(String(16))  # customer | conversation
    target_id: Mapped[int] = mapped_column(BigId)
    reason: Mapped[str] = mapped_column(Text, default="")
    placed_by: Mapped[str] = mapped_column(String(64), default="")
    placed_at: Mapped[float] = mapped_column(Float)
    lifted_by: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    lifted_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    __table_args__ = (Index("ix_legal_holds_target", "target_kind", "target_id"),)


class PurgeRun(Base):
    """One retention purge: counts and id/time ranges of what went, never contents."""

    __tablename__ = "purge_runs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    started_at: Mapped[float] = mapped_column(Float, index=True)
    finished_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running | done | failed
    started_by: Mapped[str] = mapped_column(String(64), default="schedule")
    counts: Mapped[str] = mapped_column(Text, default="{}")  # JSON {"messages": n, "media": n, "orders": n, ...}
    ranges: Mapped[str] = mapped_column(Text, default="{}")  # JSON per account/kind: first/last id, oldest/newest time
    error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)


class ErasureRecord(Base):
    """Proof that a customer was erased: who asked, who did it, when, salted hashes of the identities."""

    __tablename__ = "erasure_records"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    erased_customer: Mapped[int] = mapped_column(BigId)  # the customer number that no longer exists
    requester: Mapped[str] = mapped_column(Text)  # who asked (the customer, their lawyer, a regulator...)
    reason: Mapped[str] = mapped_column(Text, default="")
    done_by: Mapped[str] = mapped_column(String(64))
    started_at: Mapped[float] = mapped_column(Float)
    finished_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    identity_hashes: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of sha256(salt, kind:account:value)
    counts: Mapped[str] = mapped_column(Text, default="{}")  # JSON rows removed per table


class PrivacyState(Base):
    """Small named values of the privacy module (the per-hub salt of identity hashes)."""

    __tablename__ = "privacy_state"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class AccountSecret(Base):
    """An account's Token, EncodingAESKey and API secret, encrypted with ``HUB_SECRET_KEY``
    (``key_id`` names the key); the ``accounts`` row keeps none of them in clear."""

    __tablename__ = "account_secrets"
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(Text)
    encoding_aes_key: Mapped[str] = mapped_column(Text)
    secret: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[float] = mapped_column(Float)
