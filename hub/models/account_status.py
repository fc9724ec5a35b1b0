"""Whether each platform account reaches the hub: the last callback and the last URL verification,
stamped in memory on the callback path and flushed here every few seconds (shared by every process)."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import Boolean, Float, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class AccountStatus(Base):
    __tablename__ = "account_status"
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_callback_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    last_verify_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    last_verify_ok: Mapped[Optional[bool]] = mapped_column(Boolean, nullable=True)
    last_failure_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    last_failure: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[float] = mapped_column(Float)
