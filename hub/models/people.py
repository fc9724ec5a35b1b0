"""Users (agents, supervisors, admins), skill groups and login sessions."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import Boolean, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))  # agent | supervisor | admin
    groups: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of skill group names
    cap: Mapped[int] = mapped_column(Integer, default=5)  # concurrent sessions
    status: Mapped[str] = mapped_column(String(16), default="offline")  # online | busy | away | offline
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)


class SkillGroup(Base):
    __tablename__ = "skill_groups"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")


class LoginSession(Base):
    """A login: the cookie / token holds a random secret, the table only its sha256."""

    __tablename__ = "login_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    remote: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
