"""Operator-configured data: settings (key -> JSON) and routing rules."""
from __future__ import annotations

from sqlalchemy import Boolean, Float, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class Setting(Base):
    """One configurable value (handover words, thresholds, business hours, queue text, ...).
    ``scope`` is "" for the brand, or an account id for per-account overrides."""

    __tablename__ = "settings"
    scope: Mapped[str] = mapped_column(String(64), primary_key=True, default="")
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON
    updated_at: Mapped[float] = mapped_column(Float)


class RoutingRule(Base):
    __tablename__ = "routing_rules"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    name: Mapped[str] = mapped_column(String(128), default="")
    data: Mapped[str] = mapped_column(Text)  # the rule as JSON (conditions, actions)
    updated_at: Mapped[float] = mapped_column(Float)
