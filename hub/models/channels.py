"""Channel QR codes (渠道活码): the codes, their daily statistics, and the exactly-once ledgers behind them.

A code is registered on its platform when created: a WeCom contact way (``state`` comes back in
add_external_contact), an Official Account permanent QR code (``scene`` comes back in subscribe/SCAN)
or a 微信客服 link (``scene_param`` comes back in enter_session). JSON lists are stored as text.
``channel_hits`` and ``channel_attributions`` make the counters exactly-once when a pipeline job runs
again (the hit is keyed by the message; the attribution by code and conversation).
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class ChannelCode(Base):
    __tablename__ = "channel_codes"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    platform: Mapped[str] = mapped_column(String(8))  # wecom | oa | kf
    account_id: Mapped[str] = mapped_column(String(64), ForeignKey("accounts.id"))
    state: Mapped[Optional[str]] = mapped_column(String(30), nullable=True)  # WeCom contact-way state
    scene: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)  # OA scene_str; kf link scene
    scene_param: Mapped[Optional[str]] = mapped_column(String(128), nullable=True)  # kf
    open_kfid: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)  # kf
    tags: Mapped[str] = mapped_column(Text, default="[]")
    welcome_text: Mapped[str] = mapped_column(Text, default="")
    route_group: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)
    route_agent_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)
    staff: Mapped[str] = mapped_column(Text, default="[]")  # WeCom userids who take adds
    schedule: Mapped[Optional[str]] = mapped_column(Text, nullable=True)  # [{"weekdays","start","end","users"}]
    platform_users: Mapped[str] = mapped_column(Text, default="[]")  # WeCom: the users the contact way has now
    config_id: Mapped[Optional[str]] = mapped_column(String(128), nullable=True)  # WeCom
    qr_url: Mapped[Optional[str]] = mapped_column(Text, nullable=True)  # WeCom qr_code / OA url
    ticket: Mapped[Optional[str]] = mapped_column(String(256), nullable=True)  # OA
    link_url: Mapped[Optional[str]] = mapped_column(Text, nullable=True)  # kf: url + &scene_param=
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        UniqueConstraint("account_id", "state", name="uq_channel_state"),
        UniqueConstraint("account_id", "scene", name="uq_channel_scene"),
        UniqueConstraint("account_id", "scene_param", name="uq_channel_scene_param"),
    )


class ChannelStat(Base):
    """Counters per code and day (``YYYY-MM-DD`` in Asia/Shanghai)."""

    __tablename__ = "channel_stats"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code_id: Mapped[int] = mapped_column(BigId, ForeignKey("channel_codes.id"))
    day: Mapped[str] = mapped_column(String(10))
    scans: Mapped[int] = mapped_column(Integer, default=0)
    adds: Mapped[int] = mapped_column(Integer, default=0)
    conversations: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (UniqueConstraint("code_id", "day", name="uq_channel_stat_day"),)


class ChannelHit(Base):
    """What one event through a code counted, keyed by the archived event message: counted once however
    often its job runs. ``kind``: "scan" (OA SCAN, a 微信客服 entry after the first), "add" (WeCom
    add_external_contact) or "scan+add" (OA subscribe, a conversation's first 微信客服 entry)."""

    __tablename__ = "channel_hits"
    message_id: Mapped[int] = mapped_column(BigId, primary_key=True)
    code_id: Mapped[int] = mapped_column(BigId, index=True)
    kind: Mapped[str] = mapped_column(String(8))  # scan | add | scan+add
    day: Mapped[str] = mapped_column(String(10))
    at: Mapped[float] = mapped_column(Float)


class ChannelAttribution(Base):
    """A conversation's first contact through a code (its day counts it; orders after ``at`` convert)."""

    __tablename__ = "channel_attributions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    code_id: Mapped[int] = mapped_column(BigId)
    conversation_id: Mapped[int] = mapped_column(BigId)
    day: Mapped[str] = mapped_column(String(10))
    at: Mapped[float] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("code_id", "conversation_id", name="uq_channel_attribution"),
                      Index("ix_channel_attributions_day", "code_id", "day"))
