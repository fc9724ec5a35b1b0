"""Keyword watches: supervisors are told, as messages arrive, when a customer writes a watched word
(过敏, 急用, 投诉 ...). The matcher is pure; ``WatchService`` stores watches and hits, and its
pipeline step checks each inbound customer message and pushes ``watch.hit`` to the supervisors.

A hit is stored once per (watch, message) and pushed only when first stored, so a job that runs
again after a crash notifies nobody twice. Watches are cached; a change made through this process
applies at once, one made by another process within ``ttl`` seconds."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ...clock import Clock
from ...db import Database, retry_busy
from ...errors import HubError, bad_request, not_found
from ...models import Watch, WatchHit
from ...pipeline import JobContext
from ...privacy.masking import mask_text
from ...push import SUPERVISORS, Push
from .tokens import normalize

watches_t = Watch.__table__
hits_t = WatchHit.__table__
MAX_WORD = 64
MAX_WATCHES = 500
EXCERPT = 200  # characters of the message kept with a hit


@dataclass(frozen=True, slots=True)
class WatchWord:
    id: int
    word: str  # normalised


class WatchMatcher:
    """Pure: which watched words a text contains (normalised: 全角/半角 and case do not matter)."""

    def __init__(self, watches: list[WatchWord]):
        self.watches = watches

    def hits(self, text: str | None) -> list[WatchWord]:
        if not text or not self.watches:
            return []
        norm = normalize(text)
        return [w for w in self.watches if w.word in norm]


def clean_word(value: Any) -> str:
    """A watch word as stored: normalised, trimmed, 1-64 characters (``invalid_word`` otherwise)."""
    if not isinstance(value, str) or not normalize(value).strip():
        raise bad_request("invalid_word", "word must be a non-empty string", "word")
    word = normalize(value).strip()
    if len(word) > MAX_WORD:
        raise bad_request("invalid_word", f"word has at most {MAX_WORD} characters", "word")
    return word


def watch_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "word": row.word, "enabled": bool(row.enabled), "created_by": row.created_by,
            "created_at": row.created_at}


def hit_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "watch_id": row.watch_id, "word": row.word, "message_id": row.message_id,
            "conversation_id": row.conversation_id, "account_id": row.account_id, "text": mask_text(row.text or ""),
            "at": row.at}


class WatchService:
    def __init__(self, db: Database, clock: Clock, push: Push, ttl: float = 10.0):
        self.db = db
        self.clock = clock
        self.push = push
        self.ttl = ttl
        self.matcher = WatchMatcher([])
        self._loaded_at: float | None = None
        self._insert = sqlite.insert if db.is_sqlite else postgresql.insert

    async def load(self) -> None:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(watches_t.c.id, watches_t.c.word)
                                       .where(watches_t.c.enabled.is_(True)).order_by(watches_t.c.id))).all()
        self.matcher = WatchMatcher([WatchWord(r.id, r.word) for r in rows])
        self._loaded_at = self.clock.now()

    async def list(self) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(watches_t).order_by(watches_t.c.id))).all()
        return [watch_json(r) for r in rows]

    async def add(self, word: Any, by: str) -> dict[str, Any]:
        word = clean_word(word)

        async def write() -> Any:
            async with self.db.write() as conn:
                count = (await conn.execute(select(func.count()).select_from(watches_t))).scalar()
                if count >= MAX_WATCHES:
                    raise HubError(409, "too_many_watches", f"at most {MAX_WATCHES} watches")
                if (await conn.execute(select(watches_t.c.id).where(watches_t.c.word == word))).first():
                    raise HubError(409, "duplicate_word", f"{word!r} is already watched", "word")
                await conn.execute(watches_t.insert().values(word=word, enabled=True, created_by=by,
                                                             created_at=self.clock.now()))
                return (await conn.execute(select(watches_t).where(watches_t.c.word == word))).first()

        row = await retry_busy(write)
        await self.load()
        return watch_json(row)

    async def set_enabled(self, watch_id: int, enabled: Any) -> dict[str, Any]:
        if not isinstance(enabled, bool):
            raise bad_request("invalid_enabled", "enabled must be true or false", "enabled")

        async def write() -> Any:
            async with self.db.write() as conn:
                await conn.execute(update(watches_t).where(watches_t.c.id == watch_id).values(enabled=enabled))
                return (await conn.execute(select(watches_t).where(watches_t.c.id == watch_id))).first()

        row = await retry_busy(write)
        if row is None:
            raise not_found("unknown_watch", f"no watch {watch_id}")
        await self.load()
        return watch_json(row)

    async def delete(self, watch_id: int) -> None:
        async def write() -> int:
            async with self.db.write() as conn:
                return (await conn.execute(delete(watches_t).where(watches_t.c.id == watch_id))).rowcount

        if not await retry_busy(write):
            raise not_found("unknown_watch", f"no watch {watch_id}")
        await self.load()

    async def hits(self, limit: int = 50, before: int | None = None,
                   watch_id: int | None = None) -> tuple[list[dict[str, Any]], int | None]:
        """Hits newest first, keyset-paged by id; (page, next_before)."""
        query = select(hits_t)
        if before is not None:
            query = query.where(hits_t.c.id < before)
        if watch_id is not None:
            query = query.where(hits_t.c.watch_id == watch_id)
        async with self.db.read() as conn:
            rows = (await conn.execute(query.order_by(hits_t.c.id.desc()).limit(limit + 1))).all()
        page = rows[:limit]
        return [hit_json(r) for r in page], (page[-1].id if len(rows) > limit else None)

    async def step(self, ctx: JobContext) -> None:
        """Pipeline inbound step: a customer's message containing watched words -> hits + push."""
        msg = ctx.message
        if msg.direction != "in" or msg.sender != "customer" or not msg.text:
            return
        if self._loaded_at is None or self.clock.now() - self._loaded_at > self.ttl:
            await self.load()
        found = self.matcher.hits(msg.text)
        if not found:
            return
        now = self.clock.now()
        excerpt = msg.text[:EXCERPT]

        async def write() -> list[Any]:
            async with self.db.write() as conn:
                # RETURNING gives only the rows inserted now: a re-run of the job pushes nothing again
                return (await conn.execute(self._insert(hits_t).on_conflict_do_nothing(
                    index_elements=["watch_id", "message_id"]).returning(*hits_t.c), [
                    {"watch_id": w.id, "word": w.word, "message_id": msg.id, "conversation_id": msg.conversation_id,
                     "account_id": msg.account_id, "text": excerpt, "at": now} for w in found])).all()

        for row in await retry_busy(write):
            await self.push.to_room(SUPERVISORS, "watch.hit", hit_json(row))
