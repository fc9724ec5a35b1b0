"""Accounts, conversations, the message archive, pipeline jobs, kf cursors and the outbox."""
from __future__ import annotations

from typing import Optional

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, BigId


class Account(Base):
    """A WeCom corp (platform ``wecom``; its WeChat Customer Service rides on it) or an Official Account (``oa``)."""

    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128), default="")
    token: Mapped[str] = mapped_column(String(128))
    encoding_aes_key: Mapped[str] = mapped_column(String(64))
    receive_id: Mapped[str] = mapped_column(String(64))  # CorpID or AppID
    secret: Mapped[str] = mapped_column(String(256), default="")
    # an Official Account's 消息加解密方式: plain | compat | safe (safe refuses unencrypted posts)
    message_mode: Mapped[str] = mapped_column(String(8), default="compat", server_default="compat")
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class Conversation(Base):
    """One customer identity talking to one account (and, for 微信客服, one kf account)."""

    __tablename__ = "conversations"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(64), ForeignKey("accounts.id"))
    channel: Mapped[str] = mapped_column(String(16))  # wecom | oa | kf
    thread: Mapped[str] = mapped_column(String(64), default="")  # open_kfid for kf, else ""
    peer_id: Mapped[str] = mapped_column(String(128))  # openid / external_userid
    created_at: Mapped[float] = mapped_column(Float)
    last_message_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    last_inbound_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    customer_id: Mapped[Optional[int]] = mapped_column(BigId, nullable=True, index=True)  # set by identity resolution
    channel_code: Mapped[Optional[str]] = mapped_column(String(64), nullable=True)  # the QR-code channel it came from
    __table_args__ = (UniqueConstraint("account_id", "thread", "peer_id", name="uq_conversation_peer"),)


class Message(Base):
    """Every inbound and outbound message and event; never deleted by recall."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(String(64))
    conversation_id: Mapped[int] = mapped_column(BigId, ForeignKey("conversations.id"))
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(4))  # in | out
    kind: Mapped[str] = mapped_column(String(48))  # text, image, ..., event.subscribe, ...
    peer_id: Mapped[str] = mapped_column(String(128))
    sender: Mapped[str] = mapped_column(String(64))  # customer | bot | agent:<id> | staff:<userid> | system
    dedup_key: Mapped[Optional[str]] = mapped_column(String(160), nullable=True)
    text: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    data: Mapped[str] = mapped_column(Text, default="{}")  # typed fields as JSON
    raw: Mapped[str] = mapped_column(Text, default="")  # the payload as received
    sent_at: Mapped[int] = mapped_column(BigInteger)  # platform time, epoch seconds
    created_at: Mapped[float] = mapped_column(Float)  # archived at
    status: Mapped[Optional[str]] = mapped_column(String(16), nullable=True)  # outbound: queued|sent|failed
    recalled_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    __table_args__ = (
        UniqueConstraint("account_id", "dedup_key", name="uq_message_dedup"),
        Index("ix_messages_conversation", "conversation_id", "id"),
        Index("ix_messages_created", "created_at"),
    )


class Job(Base):
    """Work that follows an archived message (bots, routing, push, kf pulls), written with it."""

    __tablename__ = "jobs"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    message_id: Mapped[int] = mapped_column(BigId)
    conversation_id: Mapped[int] = mapped_column(BigId)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    run_after: Mapped[float] = mapped_column(Float, default=0.0)
    last_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    # AUTOINCREMENT: a job id is never reused on SQLite (the pipeline remembers finished ids)
    __table_args__ = (Index("ix_jobs_state", "state", "id"), {"sqlite_autoincrement": True})


class EarlyRecall(Base):
    """A recall that came before the message it recalls (the original's delivery was retried after
    it): the archive writers mark the original recalled as it arrives."""

    __tablename__ = "early_recalls"
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    msg_key: Mapped[str] = mapped_column(String(160), primary_key=True)  # the original's dedup_key
    recalled_at: Mapped[float] = mapped_column(Float)


class KfCursor(Base):
    """The stored ``next_cursor`` of ``kf/sync_msg`` per WeChat Customer Service account."""

    __tablename__ = "kf_cursors"
    account_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    open_kfid: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(256), default="")
    updated_at: Mapped[float] = mapped_column(Float)


class Outbox(Base):
    """A message waiting to be sent through a platform API, retried with backoff until sent or failed."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id"))
    account_id: Mapped[str] = mapped_column(String(64))
    api: Mapped[str] = mapped_column(String(32))  # oa_custom | kf_send | kf_send_on_event | wecom_welcome
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued | sent | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    last_errcode: Mapped[Optional[int]] = mapped_column(Integer, nullable=True)
    last_error: Mapped[Optional[str]] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    sent_at: Mapped[Optional[float]] = mapped_column(Float, nullable=True)
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)
