"""Work orders (工单): tickets turned from conversations, their history, types and routing rules."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class Ticket(Base):
    """open -> in_progress -> resolved -> closed (resolved -> in_progress reopens)."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    priority: Mapped[str] = mapped_column(String(8), default="normal")  # low | normal | high | urgent
    group: Mapped[str] = mapped_column(String(64), default="")
    assignee_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)
    conversation_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True, index=True)
    session_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)
    customer_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True, index=True)
    rule_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)  # the ticket rule that chose the group
    created_by: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    due_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    overdue_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)  # when the overdue alert went out
    resolved_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    closed_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    __table_args__ = (
        Index("ix_tickets_group_status", "group", "status"),
        Index("ix_tickets_assignee_status", "assignee_id", "status"),
        Index("ix_tickets_status_due", "status", "due_at"),
    )


class TicketEvent(Base):
    """A ticket's history: created, status, assigned, priority, due, group, comment, overdue, edited."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(BigId, index=True)
    kind: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(64))  # user:<id> | system
    data: Mapped[str] = mapped_column(Text, default="{}")  # {"from": ..., "to": ...} / {"text": ...}
    at: Mapped[float] = mapped_column(Float)


class TicketType(Base):
    """A kind of ticket (退货退款, 投诉, 物流, or a custom one) with its defaults."""

    __tablename__ = "ticket_types"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(64))
    due_hours: Mapped[float] = mapped_column(Float, default=24.0)
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    group: Mapped[str] = mapped_column(String(64), default="")  # "" = the rules / the session's group decide
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class TicketRule(Base):
    """Routes a new ticket to a group by type, priority and keywords (hub/tickets/rules.py); first match wins."""

    __tablename__ = "ticket_rules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    data: Mapped[str] = mapped_column(Text)  # {"types": [...], "min_priority": ..., "keywords": [...], "group": ...}
    updated_at: Mapped[float] = mapped_column(Float)
