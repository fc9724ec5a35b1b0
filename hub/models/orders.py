"""E-commerce orders (Customer 360): orders from Taobao/Tmall, JD, Youzan, Douyin 抖店 and custom
sources, their lines, push-message dedup and the pollers' watermarks.

Money is integer fen; platform ids are strings; times are epoch seconds (floats). Receiver fields are
kept exactly as the platform sent them (masked or ciphertext): nothing here decrypts. ``raw`` is the
source payload as JSON text (for CSV imports: the file line it came from). This module is imported by
``hub.orders.wiring`` so the tables exist before the hub creates the schema.
"""
from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class OrderRow(Base):
    """One order, normalised (see ``hub.orders.model.Order``); ``modified_at`` is the platform's
    last-modified time and, with ``status``, decides whether an incoming copy may replace this one."""

    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))  # taobao | jd | youzan | douyin | custom
    order_id: Mapped[str] = mapped_column(String(64))
    shop_id: Mapped[str] = mapped_column(String(128), default="")
    customer_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True)  # identity resolution; follows merges
    buyer_id: Mapped[str] = mapped_column(String(191), default="")
    buyer_nick: Mapped[str] = mapped_column(String(191), default="")
    status: Mapped[str] = mapped_column(String(16))  # ORDER_STATUSES
    platform_status: Mapped[str] = mapped_column(String(64), default="")
    refund_status: Mapped[str] = mapped_column(String(16), default="none")  # REFUND_STATUSES
    total_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    postage_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    discount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    logistics_company: Mapped[str] = mapped_column(String(191), default="")
    tracking_no: Mapped[str] = mapped_column(String(255), default="")
    receiver_name: Mapped[str] = mapped_column(Text, default="")  # masked / ciphertext, as sent
    receiver_phone: Mapped[str] = mapped_column(Text, default="")
    receiver_address: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float)
    paid_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    shipped_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    completed_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    modified_at: Mapped[float] = mapped_column(Float)
    raw: Mapped[str] = mapped_column(Text, default="{}")
    synced_at: Mapped[float] = mapped_column(Float)  # when the hub last wrote this row
    __table_args__ = (
        UniqueConstraint("platform", "order_id", name="uq_order_platform_id"),
        Index("ix_orders_customer", "customer_id", "created_at"),  # the profile's recent orders
    )


class OrderItemRow(Base):
    """One order line; replaced as a whole when a newer copy of its order arrives."""

    __tablename__ = "order_items"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    order_row_id: Mapped[int] = mapped_column(BigId, ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    sub_order_id: Mapped[str] = mapped_column(String(64), default="")
    sku_id: Mapped[str] = mapped_column(String(64), default="")
    product_id: Mapped[str] = mapped_column(String(64), default="")
    title: Mapped[str] = mapped_column(Text, default="")
    quantity: Mapped[int] = mapped_column(Integer, default=1)
    price_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    paid_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[str] = mapped_column(String(16))
    refund_status: Mapped[str] = mapped_column(String(16), default="none")
    category: Mapped[str] = mapped_column(String(64), default="")


class OrderPushMessage(Base):
    """A platform push already handled (dedup on the platform's message id; written in the same
    transaction as the order it changed, so a failed handling is redelivered, not lost)."""

    __tablename__ = "order_push_messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(16))  # youzan | douyin | hub
    message_id: Mapped[str] = mapped_column(String(128))
    order_id: Mapped[str] = mapped_column(String(64), default="")
    received_at: Mapped[float] = mapped_column(Float)
    __table_args__ = (UniqueConstraint("platform", "message_id", name="uq_order_push_message"),)


class OrderWatermark(Base):
    """A poller's progress for one source (``taobao:<app_key>:<shop>``): everything modified before
    ``modified_at`` is committed; ``cursor`` (JSON) is the window being paged and the last page done."""

    __tablename__ = "order_watermarks"
    source: Mapped[str] = mapped_column(String(191), primary_key=True)
    modified_at: Mapped[float] = mapped_column(Float)
    cursor: Mapped[str] = mapped_column(Text, default="{}")
    updated_at: Mapped[float] = mapped_column(Float)
