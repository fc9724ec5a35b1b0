"""Service sessions (a conversation that needs a human), their timeline, and the agents' event streams."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class ServiceSession(Base):
    """queued -> assigned -> active -> closed; at most one open session per conversation."""

    __tablename__ = "service_sessions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(BigId, ForeignKey("conversations.id"))
    account_id: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # queued | assigned | active | closed
    group: Mapped[str] = mapped_column(String(64), default="")
    priority: Mapped[int] = mapped_column(Integer, default=0)
    agent_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)
    advisor_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)  # 专属顾问: only this agent
    vip_level: Mapped[int] = mapped_column(Integer, default=0)
    first_message: Mapped[str] = mapped_column(Text, default="")
    suggestions: Mapped[str] = mapped_column(Text, default="[]")  # FAQ suggestions for the agent (JSON)
    created_at: Mapped[float] = mapped_column(Float)  # the customer's first message of this session
    # the customer's first message to the bot before this handover (a reopen's: since the close)
    bot_started_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    handover_at: Mapped[float] = mapped_column(Float)  # handed to humans (queue clock starts)
    assigned_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    accepted_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    first_reply_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    last_customer_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    last_agent_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    closed_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    close_reason: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    __table_args__ = (
        Index("uq_open_session", "conversation_id", unique=True,
              sqlite_where=text("state != 'closed'"), postgresql_where=text("state != 'closed'")),
        Index("ix_sessions_state", "state", "agent_id"),
        Index("ix_sessions_conversation", "conversation_id"),  # a conversation's sessions (bot analytics, history)
        Index("ix_sessions_handover_at", "handover_at"),  # today's figures on the dashboard
        Index("ix_sessions_closed_at", "closed_at"),
    )


class SessionEvent(Base):
    """The timeline of a session: created, assigned, accepted, transferred, requeued, closed, reopened."""

    __tablename__ = "session_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    session_id: Mapped[int] = mapped_column(BigId, index=True)
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64), default="system")
    data: Mapped[str] = mapped_column(Text, default="{}")
    at: Mapped[float] = mapped_column(Float)


class AgentStream(Base):
    """Per-user event sequence counter: the row lock orders concurrent writers, so sequence numbers
    commit in order and a reconnecting client can resume from the last one it saw."""

    __tablename__ = "agent_streams"
    user_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, default=0)


class AgentEvent(Base):
    __tablename__ = "agent_events"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigId)
    seq: Mapped[int] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(48))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("user_id", "seq", name="uq_agent_event_seq"),)
