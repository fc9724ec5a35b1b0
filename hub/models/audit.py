"""The audit log: who changed what (before/after), and who read what (privacy access audit)."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import Float, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class AuditEntry(Base):
    """One audited event. ``kind`` is "change" (an admin edit) or "access" (a read of personal data).
    ``before``/``after``/``detail`` are JSON text with secrets already replaced by "***"."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_kind_at", "kind", "at"), Index("ix_audit_log_target", "target"))
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float, index=True)
    kind: Mapped[str] = mapped_column(String(16), default="change")
    actor_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)
    actor_name: Mapped[str] = mapped_column(String(64), default="")
    actor_role: Mapped[str] = mapped_column(String(16), default="")
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(128), default="")
    before: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    after: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(256), default="")
    detail: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
