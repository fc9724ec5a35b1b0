"""Coordination between hub processes."""
from __future__ import annotations

from sqlalchemy import Boolean, Float, Index, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class TimerClaim(Base):
    """One row per timer firing (``key@when``): the process whose insert wins runs the timer's action,
    so a timer armed in several processes (each rebuilds timers from the database) fires once. The
    claim is a lease until ``done``: another process takes over a firing whose runner died."""

    __tablename__ = "timer_claims"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    worker: Mapped[str] = mapped_column(String(96))
    at: Mapped[float] = mapped_column(Float)
    until: Mapped[float] = mapped_column(Float, server_default="0")  # the runner's lease
    done: Mapped[bool] = mapped_column(Boolean, server_default=true())  # its action has run
    __table_args__ = (Index("ix_timer_claims_at", "at"),)


class PlatformToken(Base):
    """An access token shared by the hub processes (hub/outbound/shared_tokens.py), sealed like the
    account secrets. ``key``: the account and a fingerprint of the credentials it was fetched with."""

    __tablename__ = "platform_tokens"
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    value: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[float] = mapped_column(Float)
    fetched_at: Mapped[float] = mapped_column(Float)
