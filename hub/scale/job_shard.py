"""Which conversations' jobs a hub process prefers (several processes on PostgreSQL): its shard.

With ``HUB_JOB_SHARD=i/n`` (``serve --workers n`` sets it for worker i) a process claims the jobs
of conversations with ``id % n == i`` first: a conversation's jobs then run in one process, whose
caches (the conversation's customer and channel, the last-contact and keyword-tag stamps, the
archive writer's conversation ids) already know it. Without it each process met every
conversation: with two workers a callback cost 4.18 statements against one worker's 3.40, and
3.77 with shards (bench/scale.py, statements counted per process).

The preference holds under load (from a quarter of the pipeline's slots busy: ``Pipeline.shard_from``),
where the caches pay; with fewer conversations in flight the process that was woken runs any job
at once, as the quickest way to the agent.

Affinity is a preference, never a wait: a process holds a session-level advisory lock per shard
(``pg_try_advisory_lock``) on a connection of its own, and a claim pass takes the conversations of
any shard whose lock nobody holds (it tries the lock shared, cheaply, instead of reading the lock
table) (its process died, was never started, or lost its connection:
PostgreSQL drops the lock with the session at once). So a killed worker's conversations go on in
the others at their next pass, as before. No shard set (one process, or a deployment that does not
number its processes) means no preference. SQL only in hub/scale/job_claims.py; this module keeps
the lock.

A message can arrive at any process, and that process's pipeline is woken by its own commit; a job
of another shard's conversation must wake that shard's process. On the lock's connection each
process LISTENs on its shard's channel, and after a commit a process under load (one that leaves
other shards' jobs to their owners) NOTIFYs the channels of the other shards its batch had jobs
for: at most one notification per shard every ``WAKE_GAP`` seconds, the later ones deferred to the
end of the gap, never dropped. That only has to start an idle owner (one that gets no callbacks of
its own): once busy, each conversation it finishes starts its next pass. Without it such jobs
waited up to a second.
"""
from __future__ import annotations

import asyncio
import logging
import zlib
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text

from ..tasks import cancel_and_wait

log = logging.getLogger("hub.pipeline")
SHARD_SPAN = 65536  # a shard lock's key: count * SHARD_SPAN + index (the count too: see job_claims.py)
KEEPALIVE = 5.0  # seconds between checks that the lock's connection is alive (and re-takes after a loss)
TAKE_TRIES = 10  # tries, 20 ms apart, before the shard counts as another process's
WAKE_GAP = 0.1  # seconds: at most one notification per shard this often (it only has to start an idle owner)


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @classmethod
    def parse(cls, value: str) -> "Shard | None":
        """``"i/n"`` (0 <= i < n); empty means none. A malformed value raises ValueError."""
        if not value.strip():
            return None
        try:
            index, count = (int(part) for part in value.split("/"))
        except ValueError:
            raise ValueError(f"job shard must be INDEX/COUNT, e.g. 0/2 (got {value!r})") from None
        if count < 1 or count * SHARD_SPAN > 2**31 - 1 or not 0 <= index < count:
            raise ValueError(f"job shard {value!r}: need 0 <= INDEX < COUNT")
        return cls(index, count)


def lock_class(schema: str) -> int:
    """The advisory-lock namespace of the shards of the hub on this schema (one database may hold
    several hubs' schemas: tests and benches do)."""
    return zlib.crc32(f"scrm-hub job shards {schema}".encode()) & 0x7FFFFFFF


class ShardLock:
    """Holds this process's shard lock; ``params`` are what a claim pass passes to its SQL."""

    def __init__(self, db: Any, shard: Shard | None):
        self.db = db
        self.shard = shard
        self.held = False
        self.contested = False  # another process held the shard at the last try (warned once)
        self._key = 0
        self._conn: Any = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.on_wake: Any = None  # called when another process committed jobs of our shard
        self.preferring: Any = lambda: True  # does this process prefer its shard now (Pipeline.prefers_shard)
        self._io = asyncio.Lock()  # one statement at a time on the lock's connection
        self._woken: dict[int, float] = {}  # shard -> loop time of its last notification
        self._waking: set[int] = set()  # shards with a notification scheduled
        self._sending: set[asyncio.Task] = set()

    def params(self) -> dict[str, Any]:
        """Without a shard held, every conversation is this process's own (count 1)."""
        if self.shard is None or not self.held:
            return {"shard_count": 1, "shard_index": 0, "shard_class": self._key}
        return {"shard_count": self.shard.count, "shard_index": self.shard.index, "shard_class": self._key}

    async def start(self) -> None:
        if self.shard is None or self.shard.count == 1 or self.db.dialect != "postgresql":
            return
        await self._take()
        self._task = asyncio.create_task(self._keep(), name="job-shard")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            await cancel_and_wait(self._task)
        await self._drop()  # closing the session releases the lock: the others take the shard at once

    async def _take(self) -> None:
        try:
            if self._conn is None:
                self._conn = await self.db.engine.execution_options(isolation_level="AUTOCOMMIT").connect()
                schema = (await self._conn.execute(text("SELECT current_schema()"))).scalar() or ""
                self._key = lock_class(schema)
            key = self.shard.count * SHARD_SPAN + self.shard.index
            for _ in range(TAKE_TRIES):  # the others' claim passes hold a dead shard's lock shared for a moment
                async with self._io:
                    got = (await self._conn.execute(text("SELECT pg_try_advisory_lock(:c, :k)"),
                                                    {"c": self._key, "k": key})).scalar()
                if got:
                    break
                await asyncio.sleep(0.02)
        except Exception as exc:  # noqa: BLE001 - no preference until the next try
            log.warning("job shard %s: cannot take its lock (%s); claiming without a preference",
                        self.shard, exc)
            await self._drop()
            return
        if got:
            try:
                raw = (await self._conn.get_raw_connection()).driver_connection
                await raw.add_listener(self._channel(self.shard.index), self._heard)
            except Exception as exc:  # noqa: BLE001 - the owner's own commits and its 1 s pass still find them
                log.warning("job shard %s: cannot listen for wake-ups (%s)", self.shard, exc)
        if got and not self.held:
            log.info("job shard %d/%d held: this process prefers its conversations", self.shard.index, self.shard.count)
        elif not got and not self.contested:  # once, not at every keep-alive try
            log.warning("job shard %d/%d is held by another process (two processes with one HUB_JOB_SHARD?); "
                        "claiming without a preference until it is free", self.shard.index, self.shard.count)
        self.held, self.contested = bool(got), not got

    async def _drop(self) -> None:
        self.held = False
        conn, self._conn = self._conn, None
        if conn is not None:
            try:  # closed, not returned to the pool: a pooled session would keep holding the lock
                await conn.invalidate()
                await conn.close()
            except Exception:  # noqa: BLE001 - a broken connection: its session (and lock) is gone anyway
                pass

    async def _keep(self) -> None:
        while not self._stopping:
            await asyncio.sleep(KEEPALIVE)
            try:
                if self._conn is not None and self.held:
                    async with self._io:
                        await self._conn.execute(text("SELECT 1"))
                    continue
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the session is gone, and the lock with it
                log.warning("job shard %s: lock connection lost (%s); taking it again", self.shard, exc)
                await self._drop()
            await self._take()

    # -- wake-ups across processes ---------------------------------------------------------------
    def _channel(self, index: int) -> str:
        return f"hub_jobs_{self._key}_{self.shard.count}_{index}"

    def _heard(self, *_args: Any) -> None:
        if self.on_wake is not None:
            self.on_wake()

    def committed(self, saved: Any) -> None:
        """The archive writer's hook: wake the processes of the other shards this batch had jobs for,
        when this one leaves them to their owners (under load; otherwise it runs them itself)."""
        if not self.held or not self.preferring():
            return
        count, me = self.shard.count, self.shard.index
        shards = {s.conversation_id % count for s in saved if s.message_id is not None} - {me}
        loop = asyncio.get_running_loop()
        for shard in shards - self._waking:
            self._waking.add(shard)
            delay = self._woken.get(shard, float("-inf")) + WAKE_GAP - loop.time()
            if delay > 0:
                loop.call_later(delay, self._send, shard)
            else:
                self._send(shard)

    def _send(self, shard: int) -> None:
        self._waking.discard(shard)
        self._woken[shard] = asyncio.get_running_loop().time()
        task = asyncio.create_task(self._notify(shard))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _notify(self, shard: int) -> None:
        try:
            async with self._io:
                if self._conn is not None:
                    await self._conn.execute(text("SELECT pg_notify(:ch, '')"), {"ch": self._channel(shard)})
        except Exception as exc:  # noqa: BLE001 - its owner's next own commit or 1 s pass finds the jobs
            log.debug("job shard wake-up of %d failed: %s", shard, exc)
