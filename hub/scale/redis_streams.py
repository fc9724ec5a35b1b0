"""Per-agent event streams in Redis, shared by every hub process (the interface of ``MemoryStreams``).

An agent's events get their ``seq`` from one Redis counter whichever process emits them, and sit in a
capped sorted set (score = seq) with a TTL, so a client that reconnects to another process resumes
from its ``(epoch, last_seq)``. ``epoch`` lives in Redis too: when Redis loses its data (restart
without persistence, eviction) a new epoch is drawn and clients are told to resync.

Redis down: ``append`` fails fast (short socket timeouts, then a short circuit-breaker window so a
burst of events does not wait on each one), the caller logs it, and the user is remembered as
*broken*; once Redis answers again (and Socket.IO's Redis listener had time to resubscribe) every
broken user is sent ``resync`` so their console reloads what it missed. Callbacks and the archive
never depend on Redis.
"""
from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import Any, Awaitable, Callable

from ..push import StreamEvent
from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)

EPOCH_KEY = "hub:streams:epoch"

# KEYS: epoch, seq, buffer. ARGV: candidate epoch, payload json, keep, ttl seconds.
# Returns {epoch, seq}. One round trip: the counter, the buffer and its trim move together.
# The buffer expires; the counter never does (a few bytes per user): restarting from 1 under the
# same epoch, a console that kept its place (open a day with nothing new) took every new event for
# one it had already seen and dropped it.
APPEND_LUA = """
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  redis.call('SET', KEYS[1], ARGV[1])
  epoch = ARGV[1]
end
local seq = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[3], seq, ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[3]) + 1))
redis.call('EXPIRE', KEYS[3], ARGV[4])
redis.call('PERSIST', KEYS[2])
return {epoch, seq}
"""


class RedisUnavailable(RuntimeError):
    """Redis did not answer (or did recently not answer): the event was not recorded."""


class RedisStreams:
    """Sequenced, resumable per-user event streams in Redis."""

    def __init__(self, redis: Any, keep: int = 5000, ttl: int = 86400, breaker: float = 1.0):
        self.redis = redis
        self.keep = keep
        self.ttl = ttl
        self.breaker = breaker  # seconds to skip Redis after a failure
        self.epoch = ""
        self.broken: set[int] = set()  # users whose events were lost while Redis was down
        self._down_until = 0.0
        self._script = redis.register_script(APPEND_LUA)
        self.on_recovered: Callable[[set[int]], Awaitable[None]] | None = None  # set by Push
        self._watch: asyncio.Task | None = None

    @classmethod
    def from_url(cls, url: str, **kw: Any) -> "RedisStreams":
        import redis.asyncio as aioredis
        client = aioredis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0,
                                         retry_on_timeout=False, health_check_interval=10)
        return cls(client, **kw)

    async def start(self) -> None:
        """Learn (or set) the shared epoch; Redis being down at start is not fatal."""
        try:
            await self._current_epoch()
        except Exception as exc:  # noqa: BLE001
            self.epoch = self.epoch or secrets.token_hex(6)
            log.warning("redis unavailable at start (%s); agent push waits for it", exc)
        self._watch = asyncio.create_task(self._watch_recovery(), name="redis-streams-recovery")

    async def stop(self) -> None:
        if self._watch is not None:
            await cancel_and_wait(self._watch)
        await self.redis.aclose()

    async def _current_epoch(self) -> str:
        candidate = secrets.token_hex(6)
        await self.redis.set(EPOCH_KEY, candidate, nx=True)
        epoch = await self.redis.get(EPOCH_KEY)
        self.epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch or candidate)
        return self.epoch

    def _check_breaker(self) -> None:
        if time.monotonic() < self._down_until:
            raise RedisUnavailable("redis is down (recent failure)")

    def _tripped(self) -> None:
        self._down_until = time.monotonic() + self.breaker

    async def append(self, user_id: int, name: str, payload: dict[str, Any]) -> StreamEvent:
        try:
            self._check_breaker()
            blob = json.dumps({"n": name, "p": payload}, ensure_ascii=False, separators=(",", ":"))
            epoch, seq = await self._script(keys=[EPOCH_KEY, f"hub:streams:seq:{user_id}", f"hub:streams:buf:{user_id}"],
                                            args=[secrets.token_hex(6), blob, self.keep, self.ttl])
        except Exception as exc:
            self.broken.add(user_id)
            if not isinstance(exc, RedisUnavailable):
                self._tripped()
            raise RedisUnavailable(str(exc)) from exc
        self.epoch = epoch.decode() if isinstance(epoch, bytes) else str(epoch)
        return StreamEvent(int(seq), name, payload)

    async def since(self, user_id: int, epoch: str | None, last_seq: int) -> list[StreamEvent] | None:
        """Events after ``last_seq``; None when they cannot be replayed (unknown epoch, trimmed, Redis down)."""
        try:
            self._check_breaker()
            current = await self._current_epoch()
            if epoch != current:
                return None
            seq = int(await self.redis.get(f"hub:streams:seq:{user_id}") or 0)
            if last_seq >= seq:
                return []
            rows = await self.redis.zrangebyscore(f"hub:streams:buf:{user_id}", last_seq + 1, "+inf", withscores=True)
        except Exception as exc:  # noqa: BLE001
            self._tripped()
            log.warning("redis unavailable for a replay to user %s: %s", user_id, exc)
            return None
        if not rows or int(rows[0][1]) > last_seq + 1:
            return None
        out = []
        for blob, score in rows:
            item = json.loads(blob)
            out.append(StreamEvent(int(score), item["n"], item["p"]))
        return out

    async def last_seq(self, user_id: int) -> int:
        try:
            self._check_breaker()
            return int(await self.redis.get(f"hub:streams:seq:{user_id}") or 0)
        except Exception:  # noqa: BLE001
            self._tripped()
            return 0

    async def _watch_recovery(self, every: float = 0.5, settle: float = 2.0) -> None:
        """While some users missed events, wait for Redis to answer, give Socket.IO's Redis listener
        ``settle`` seconds to resubscribe, then tell those users to resync."""
        while True:
            await asyncio.sleep(every)
            if not self.broken:
                continue
            try:
                await self.redis.ping()
            except Exception:  # noqa: BLE001
                continue
            await asyncio.sleep(settle)
            try:
                await self._current_epoch()
            except Exception:  # noqa: BLE001
                continue
            users, self.broken = self.broken, set()
            self._down_until = 0.0
            log.info("redis is back: %d agents resync", len(users))
            if self.on_recovered is not None:
                try:
                    await self.on_recovered(users)
                except Exception:  # noqa: BLE001
                    log.exception("resync after redis recovery failed")
                    self.broken |= users
