"""Supervision: SLA rules, the alerts they raise (with a timeline), quality rules and their hits."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import Boolean, Float, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class SlaRuleRow(Base):
    __tablename__ = "sla_rules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    data: Mapped[str] = mapped_column(Text)  # the rule as JSON (hub/supervisor/sla_rules.py)
    updated_at: Mapped[float] = mapped_column(Float)


class Alert(Base):
    """A breach (SLA or quality): open until met, the session closes, or a supervisor clears it.
    ``key`` names what it is about (rule + session, or rule + agent): at most one open alert per key."""

    __tablename__ = "alerts"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(96))
    kind: Mapped[str] = mapped_column(String(16))  # first_reply | unanswered | avg_reply | quality
    rule_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)
    rule_name: Mapped[str] = mapped_column(String(128), default="")
    session_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True, index=True)
    conversation_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)
    agent_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)
    group: Mapped[str] = mapped_column(String(64), default="")
    account_id: Mapped[str] = mapped_column(String(64), default="")
    state: Mapped[str] = mapped_column(String(8))  # open | cleared
    raised_at: Mapped[float] = mapped_column(Float)
    deadline: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    cleared_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    clear_reason: Mapped[Optional[str]] = mapped_column(String(32), nullable=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")
    __table_args__ = (
        Index("uq_open_alert", "key", unique=True,
              sqlite_where=text("state = 'open'"), postgresql_where=text("state = 'open'")),
        Index("ix_alerts_state", "state", "raised_at"),
    )


class AlertEvent(Base):
    """An alert's timeline: raised, escalated (reassigned / notified), cleared."""

    __tablename__ = "alert_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    alert_id: Mapped[int] = mapped_column(BigId, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[float] = mapped_column(Float)
    data: Mapped[str] = mapped_column(Text, default="{}")


class QualityRuleRow(Base):
    __tablename__ = "quality_rules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(24))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    params: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[float] = mapped_column(Float)


class QualityHit(Base):
    """A quality rule found something in a session, with the messages that triggered it.
    ``key`` makes a re-run (real time, then batch) idempotent."""

    __tablename__ = "quality_hits"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    rule_id: Mapped[int] = mapped_column(BigId)
    rule_name: Mapped[str] = mapped_column(String(128), default="")
    kind: Mapped[str] = mapped_column(String(24))
    session_id: Mapped[int] = mapped_column(BigId)
    conversation_id: Mapped[int] = mapped_column(BigId, index=True)
    agent_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True, index=True)
    key: Mapped[str] = mapped_column(String(64))
    message_ids: Mapped[str] = mapped_column(Text, default="[]")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    at: Mapped[float] = mapped_column(Float)  # when the triggering message was written
    created_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("rule_id", "session_id", "key", name="uq_quality_hit"),
                      Index("ix_quality_hits_at", "at"))
