"""Operator settings: typed defaults, stored overrides (per brand or per account), cached briefly.

A change made by the admin console or the CLI is seen by every hub process within ``ttl``
seconds, without a restart.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Callable

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from .clock import Clock
from .db import Database
from .models import Setting

settings_table = Setting.__table__
log = logging.getLogger(__name__)

DEFAULTS: dict[str, Any] = {
    # sessions and routing
    "default_group": "default",
    "reopen_window": 1800,  # a customer message within this many seconds of a close reopens the session
    "accept_timeout": 120,  # an assigned session not accepted in time goes back to the queue (if anyone else could take it)
    "unanswered_minutes": 5,  # the agent left the customer unanswered this long ...
    "unanswered_action": "reassign",  # ... reassign | escalate (notify supervisors)
    "queue_text": "您前面还有 {n} 位，请稍候，客服马上为您服务。",
    "queue_notify": True,
    "offline_grace": 60,  # seconds a disconnected agent keeps their sessions
    # seconds a session for a customer's own advisor (a staff QR code, a routing rule's agent) waits
    # for them before any agent of its group may take it (0: it waits for the advisor only)
    "advisor_wait": 300,
    "quick_replies": ["您好，很高兴为您服务，请问有什么可以帮您？", "请稍等，我帮您查询一下~", "请提供一下您的订单号哦",
                      "感谢您的耐心等待！", "还有其他可以帮您的吗？祝您生活愉快~"],
    # bots
    # contained in the message (spaces and punctuation aside); one of two characters or fewer only as the
    # whole message (bots/pipeline.py contains_handover)
    "handover_words": ["人工", "转人工", "找人工", "要人工", "人工客服", "人工服务", "找客服", "真人", "真人客服"],
    "offhours_text": "您好，现在是非工作时间，客服上班后会第一时间回复您。",
    "business_hours": None,  # None = always open; else hub.business_hours JSON
    "welcome_text": "",
    # customers
    "keyword_tags": {"敏感肌": "敏感肌", "皮肤敏感": "敏感肌", "过敏": "过敏", "母婴": "母婴", "宝宝": "母婴",
                     "孕妇": "母婴", "婴儿": "母婴"},
    "vip_threshold_fen": 200000,  # paid in the last 365 days for the VIP tag (¥2,000)
    # supervisor dashboard (docs/dashboard.md)
    "dashboard_first_reply_sla": 120,  # seconds a session may wait for its first reply before it turns red
    "timezone": None,  # the brand's day for today's figures; None: the business hours' timezone, else Asia/Shanghai
}


class Settings:
    def __init__(self, db: Database, clock: Clock, ttl: float = 3.0):
        self.db = db
        self.clock = clock
        self.ttl = ttl
        self._values: dict[tuple[str, str], Any] = {}
        self._loaded_at = float("-inf")
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        self._refreshing: asyncio.Future | None = None
        # called (no I/O, no await) with the keys whose value changed, by a write here or a reload
        self.on_change: list[Callable[[set[str]], None]] = []

    async def _refresh(self) -> None:
        try:
            await self.reload()
        except Exception:  # noqa: BLE001 - keep serving the cached values
            log.exception("settings refresh failed")
            self._loaded_at = self.clock.now()
        finally:
            self._refreshing = None

    async def reload(self) -> None:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(settings_table))).all()
        before, self._values = self._values, {(r.scope, r.key): json.loads(r.value) for r in rows}
        self._loaded_at = self.clock.now()
        changed = {sk[1] for sk in set(before) | set(self._values) if before.get(sk) != self._values.get(sk)}
        if changed and before:  # (the first load changes nothing anyone has seen)
            self._changed(changed)

    async def get(self, key: str, scope: str = "") -> Any:
        """The current value. Never waits for the database once loaded (it may be called inside a
        write transaction): a stale cache is refreshed in the background."""
        if self._loaded_at == float("-inf"):
            await self.reload()
        elif self.clock.now() - self._loaded_at > self.ttl and self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._refresh())
        if scope and (scope, key) in self._values:
            return self._values[(scope, key)]
        if ("", key) in self._values:
            return self._values[("", key)]
        return DEFAULTS.get(key)

    def cached(self, key: str, scope: str = "") -> Any:
        """The value as last loaded (no I/O), for hot paths that must not await."""
        return self._values.get((scope, key), self._values.get(("", key), DEFAULTS.get(key)))

    async def preset(self, pairs: tuple[tuple[str, Any], ...]) -> None:
        """Config-file presets: written only where nothing is stored yet (the console's changes win)."""
        await self.reload()
        for key, value in pairs:
            if ("", key) not in self._values:
                await self.set(key, value)

    async def set(self, key: str, value: Any, scope: str = "") -> None:
        text = json.dumps(value, ensure_ascii=False)
        async with self.db.write() as conn:
            stmt = self._insert(settings_table).values(scope=scope, key=key, value=text, updated_at=self.clock.now())
            await conn.execute(stmt.on_conflict_do_update(index_elements=["scope", "key"],
                                                          set_={"value": text, "updated_at": self.clock.now()}))
        changed = self._values.get((scope, key)) != value
        self._values[(scope, key)] = value
        if changed:
            self._changed({key})

    def _changed(self, keys: set[str]) -> None:
        for listener in list(self.on_change):
            try:
                listener(keys)
            except Exception:  # noqa: BLE001 - one listener failing never fails a write
                log.exception("settings listener failed")

    async def all(self, scope: str = "") -> dict[str, Any]:
        await self.reload()
        out = dict(DEFAULTS)
        out.update({k: v for (s, k), v in self._values.items() if s == ""})
        if scope:
            out.update({k: v for (s, k), v in self._values.items() if s == scope})
        return out
