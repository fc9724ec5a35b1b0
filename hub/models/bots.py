"""Bot content and outcomes: FAQ entries, the brand dictionary, keyword rules, what the bot did."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import Boolean, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class FaqRow(Base):
    __tablename__ = "faq_entries"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    question: Mapped[str] = mapped_column(String(500))
    similar: Mapped[str] = mapped_column(Text, default="[]")  # JSON list
    answer: Mapped[str] = mapped_column(Text)
    category: Mapped[str] = mapped_column(String(64), default="")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class BrandWord(Base):
    """A word jieba must keep whole (product names, "敏感肌", "以旧换新")."""

    __tablename__ = "brand_words"
    word: Mapped[str] = mapped_column(String(64), primary_key=True)
    created_at: Mapped[float] = mapped_column(Float)


class KeywordRule(Base):
    __tablename__ = "keyword_rules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    match_type: Mapped[str] = mapped_column(String(16))  # exact | contains | regex
    pattern: Mapped[str] = mapped_column(String(500))
    account_id: Mapped[str] = mapped_column(String(64), default="")  # "" = every account
    channel: Mapped[str] = mapped_column(String(64), default="")  # "" = every channel (QR code channel)
    priority: Mapped[int] = mapped_column(Integer, default=0)  # higher first
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    reply: Mapped[str] = mapped_column(Text)  # JSON: {"type": "text"|"image"|"link", ...}
    hits: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class BotOutcome(Base):
    """What the bot did with one inbound message (analytics, and the 'could not answer' list)."""

    __tablename__ = "bot_outcomes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(BigId, unique=True)
    conversation_id: Mapped[int] = mapped_column(BigId)
    account_id: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # keyword | faq | suggest | handover | unanswered | offhours | welcome
    rule_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)
    faq_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)
    score: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    text: Mapped[str] = mapped_column(Text, default="")
    normalized: Mapped[str] = mapped_column(String(200), default="")  # for grouping unanswered questions
    at: Mapped[float] = mapped_column(Float)
    __table_args__ = (Index("ix_bot_outcomes_at", "at"), Index("ix_bot_outcomes_outcome", "outcome", "normalized"))
