"""``OrderSync``: the running order-sync feature — configuration, the ways in, the pollers.

Configuration is the hub setting ``order_sources`` (JSON; changed at runtime with
``hub.settings.set("order_sources", {...})``, seen within the settings cache's few seconds)::

    {"webhook_secrets": ["s3cret", "old-s3cret"],     # generic HMAC webhook (several = rotation)
     "youzan": {"client_id": "…", "client_secret": "…",              # push signature
                "api_base": "https://open.youzanyun.com", "access_token": "…"},   # re-fetch (optional)
     "douyin": {"app_key": "…", "app_secret": "…", "api_base": "…", "access_token": "…"},
     "taobao": {"app_key": "…", "app_secret": "…", "session": "…", "api_base": "…", "shop_id": "…",
                "page_size": 100, "since": 1716170000, "overlap": 300, "lag": 60},
     "jd": {"app_key": "…", "app_secret": "…", "access_token": "…", "api_base": "…", "shop_id": "…"},
     "poll_interval": 300,            # seconds between background passes; 0 = no background polling
     "trust_order_phone": true}       # a plain phone on an order counts as a verified key

Each platform entry may also be a LIST of such objects (several shops / apps). Pushes find their
app by signature (Youzan ``client_id``, Douyin ``app-id``); without ``api_base`` a Youzan push that
carries the full order is used as it is, and a Douyin push (ids only) cannot be acted on.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Awaitable, Callable

import aiohttp
from sqlalchemy import select

from ..clock import Clock
from ..db import Database, retry_conflicts
from ..archive.store import fit
from ..models.orders import OrderPushMessage, OrderWatermark
from ..privacy import order_secrets
from ..privacy.redact import redact_error
from . import csv_import, store
from .clients import CLIENTS
from .model import ORDER_ID_MAX, Order
from .pollers import Poller
from ..tasks import cancel_and_wait
from .store import Change, Effects, dialect_insert, dialect_of, write_order, write_tx

log = logging.getLogger(__name__)
push_t = OrderPushMessage.__table__
watermarks = OrderWatermark.__table__
POLLED = ("taobao", "jd")
# order_push_messages.message_id: a platform's longer message id is made to fit (``fit``: a digest of the
# whole is kept, so ids that differ past the cut stay two, and a redelivery finds its first copy)
MESSAGE_ID_MAX = 128
DEFAULT_INTERVAL = 300


def entries(cfg: dict[str, Any], platform: str) -> list[dict[str, Any]]:
    value = cfg.get(platform)
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


class OrderSync:
    def __init__(self, db: Database, clock: Clock, settings: Any = None, customers: Any = None, push: Any = None,
                 http: aiohttp.ClientSession | None = None):
        self.db, self.clock, self.settings = db, clock, settings
        self.customers, self.push, self.http = customers, push, http
        self.effects = Effects(db, customers, push)
        self._locks: dict[str, asyncio.Lock] = {}
        self._task: asyncio.Task | None = None

    @classmethod
    def from_hub(cls, hub: Any, http: aiohttp.ClientSession | None = None) -> "OrderSync":
        return cls(hub.db, hub.clock, hub.settings, hub.customers, hub.push, http)

    # -- configuration --------------------------------------------------------------------------
    async def config(self) -> dict[str, Any]:
        """``order_sources`` with its secrets opened (they are stored sealed: hub/privacy/order_secrets.py)."""
        value = await self.settings.get("order_sources") if self.settings is not None else None
        return order_secrets.opened(self.db, self.clock, value) if isinstance(value, dict) else {}

    async def trust_phone(self) -> bool:
        return bool((await self.config()).get("trust_order_phone", True))

    def lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def client(self, platform: str, cfg: dict[str, Any]) -> Any:
        if self.http is None:
            raise RuntimeError("order sync has no HTTP session")
        return CLIENTS[platform](self.http, cfg, self.clock.now)

    # -- writing --------------------------------------------------------------------------------
    async def upsert(self, order: Order) -> Change | None:
        """One order, one (durable) transaction, then rule tags and ``order.updated`` pushes."""
        return await store.upsert(self.db, order, now=self.clock.now(), effects=self.effects,
                                  trust_phone=await self.trust_phone())

    async def write(self, orders: list[Order],
                    message: tuple[str, str, str] | None = None) -> tuple[bool, list[Change]]:
        """Write ``orders`` in ONE transaction, with the push ``message`` (platform, message id,
        order id) recorded in the same one for dedup. Returns (duplicate, changes)."""
        trust = await self.trust_phone()

        async def once() -> tuple[bool, list[Change]]:
            now = self.clock.now()
            async with write_tx(self.db, durable=True) as conn:
                if message is not None:
                    stmt = dialect_insert(await dialect_of(conn))(push_t).values(
                        platform=message[0], message_id=fit(message[1], MESSAGE_ID_MAX),
                        order_id=fit(message[2], ORDER_ID_MAX), received_at=now)
                    res = await conn.execute(stmt.on_conflict_do_nothing(index_elements=["platform", "message_id"]))
                    if not res.rowcount:
                        return True, []
                changes = [c for o in orders if (c := await write_order(conn, now, o, trust_phone=trust))]
            return False, changes

        duplicate, changes = await retry_conflicts(once)  # (the buyer's identity written by a parallel push)
        if changes:
            await self.effects.after(changes)
        return duplicate, changes

    async def seen(self, platform: str, message_id: str) -> bool:
        async with self.db.read() as conn:
            return (await conn.execute(select(push_t.c.id).where(
                (push_t.c.platform == platform) & (push_t.c.message_id == fit(message_id, MESSAGE_ID_MAX))))).first() \
                is not None

    async def handle_push(self, platform: str, message_id: str, order_id: str,
                          fetch: Callable[[], Awaitable[Order | None]]) -> str:
        """A push is a signal: skip it if its message id was handled, else get the order (re-fetched
        from the platform, or the pushed copy) and upsert it with the message id, in one transaction.
        Returns "duplicate", "ignored" (nothing to act on), "changed" or "unchanged"."""
        if await self.seen(platform, message_id):
            return "duplicate"
        order = await fetch()
        if order is None:
            log.warning("%s push %s for order %s: no way to get the order (configure api_base)", platform,
                        message_id, order_id)
            return "ignored"
        duplicate, changes = await self.write([order], (platform, message_id, order_id))
        return "duplicate" if duplicate else "changed" if changes else "unchanged"

    async def commit_page(self, source: str, orders: list[Order], modified_at: float,
                          cursor: dict[str, Any]) -> list[Change]:
        """A poller's page: its orders and the source's watermark/cursor in ONE transaction."""
        trust = await self.trust_phone()

        async def once() -> list[Change]:
            now = self.clock.now()
            async with write_tx(self.db) as conn:
                changes = [c for o in orders if (c := await write_order(conn, now, o, trust_phone=trust))]
                values = {"modified_at": modified_at, "cursor": json.dumps(cursor), "updated_at": now}
                stmt = dialect_insert(await dialect_of(conn))(watermarks).values(source=source, **values)
                await conn.execute(stmt.on_conflict_do_update(index_elements=["source"], set_=values))
            return changes

        changes = await retry_conflicts(once)
        if changes:
            await self.effects.after(changes)
        return changes

    async def import_csv(self, file_obj: Any) -> dict[str, Any]:
        return await csv_import.import_csv(self, file_obj)

    recent_orders = staticmethod(store.recent_orders)

    # -- pollers --------------------------------------------------------------------------------
    async def poll_once(self) -> list[dict[str, Any]]:
        """One pass over every configured pull source (Taobao, JD); a failing source is reported
        and does not stop the others."""
        cfg = await self.config()
        out = []
        for platform in POLLED:
            for entry in entries(cfg, platform):
                if entry.get("enabled", True) is False:
                    continue
                poller = Poller(self, self.client(platform, entry))
                try:
                    out.append(await poller.run_once())
                except Exception as exc:  # noqa: BLE001 - the next pass resumes from the last page
                    log.warning("order poll %s failed: %s", poller.source, redact_error(exc, 300))
                    out.append({"source": poller.source, "error": redact_error(exc, 300)})
        return out

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="order-pollers")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None

    async def _loop(self) -> None:
        while True:
            try:
                interval = float((await self.config()).get("poll_interval", DEFAULT_INTERVAL) or 0)
            except Exception:  # noqa: BLE001
                interval = DEFAULT_INTERVAL
            await asyncio.sleep(interval if interval > 0 else 30)
            if interval > 0:
                try:
                    await self.poll_once()
                except Exception:  # noqa: BLE001
                    log.exception("order poll pass failed")
