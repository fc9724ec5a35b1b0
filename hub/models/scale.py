"""Coordination between hub processes."""
from __future__ import annotations

from sqlalchemy import Float, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class TimerClaim(Base):
    """One row per timer firing (``key@when``): the process whose insert wins runs the timer's action,
    so a timer armed in several processes (each rebuilds timers from the database) fires once."""

    __tablename__ = "timer_claims"
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    worker: Mapped[str] = mapped_column(String(96))
    at: Mapped[float] = mapped_column(Float)
    __table_args__ = (Index("ix_timer_claims_at", "at"),)
