"""What a running hub forgets after an erasure, wherever it was made.

An erasure through the API clears the caches of the process that made it. One made by the CLI (or
by another hub process) deletes rows under this process's caches: SQLite hands the erased ids out
again, so the archive writer filed the next new customer's messages under a cached conversation id
of the erased one. ``ErasureWatch`` looks at the newest erasure record every ``every`` seconds and
forgets the same caches when a new one appears.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from sqlalchemy import func, select

from ..models import ErasureRecord
from ..tasks import cancel_and_wait, repeat

log = logging.getLogger(__name__)
records = ErasureRecord.__table__
WATCH_EVERY = 5.0  # seconds


async def forget_erased(app: web.Application) -> None:
    """Drop what this process remembers of erased rows: cached conversation ids (archive writer,
    sessions, customers), the routing queue and agents' load (rebuilt from the database), and the
    search indexer's position (an erasure may set it back: SQLite reuses the ids), and the agents' replay
    buffers (they repeat the erased customer's messages)."""
    from ..app import HUB
    from ..archive.search.wiring import INDEXER
    hub = app[HUB]
    hub.writer.forget_conversations()
    hub.sessions.forget_conversations()
    hub.customers.forget_conversations()
    await hub.sessions.resync(full=True)
    if INDEXER in app:
        app[INDEXER].cursor_moved()
    await drop_replay_buffers(hub.push.streams)


async def drop_replay_buffers(streams: Any) -> None:
    """Empty the agents' resume buffers (hub/push.py ``MemoryStreams``, or Redis with several
    processes): they repeat the erased customer's messages, bundles and identities. The sequence
    numbers stay, so a console that resumes from before the erasure is told to ``resync`` and reloads
    through the API, where nothing of the customer is left."""
    buffers = getattr(streams, "_buf", None)
    if isinstance(buffers, dict):  # MemoryStreams: this process's own
        buffers.clear()
        return
    redis = getattr(streams, "redis", None)
    if redis is None:
        return
    try:  # RedisStreams: shared by every process (each one's ErasureWatch drops them again, harmlessly)
        keys = [k async for k in redis.scan_iter(match="hub:streams:buf:*", count=500)]
        if keys:
            await redis.delete(*keys)
    except Exception as exc:  # noqa: BLE001 - the buffers expire (their TTL); the erasure itself is done
        log.warning("could not empty the agents' replay buffers in redis: %s", exc)


class ErasureWatch:
    def __init__(self, app: web.Application, db: Any, every: float = WATCH_EVERY):
        self.app = app
        self.db = db
        self.every = every
        self.seen: int | None = None
        self._task: asyncio.Task | None = None

    async def newest(self) -> int:
        async with self.db.read() as conn:
            return (await conn.execute(select(func.max(records.c.id)))).scalar() or 0

    async def check(self) -> bool:
        """Forget the caches if an erasure was recorded since the last look; True if it did."""
        newest = await self.newest()
        if self.seen is None or newest == self.seen:
            self.seen = newest
            return False
        self.seen = newest
        log.info("an erasure was made elsewhere (record %s): forgetting cached conversations", newest)
        await forget_erased(self.app)
        return True

    async def start(self) -> None:
        self.seen = await self.newest()
        self._task = asyncio.create_task(repeat(lambda: self.every, self.check, "checking for erasures"),
                                         name="erasure-watch")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
