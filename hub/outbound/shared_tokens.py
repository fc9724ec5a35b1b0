"""The Official Account's access token, shared by every hub process (PostgreSQL).

A token fetched from ``/cgi-bin/token`` makes the one before it stop working five minutes later, so
hub processes that each fetched their own knocked each other's out, one refresh after another
(and an account may fetch 2,000 a day). With several processes one fetches, under a lock of the
database, and stores it; the others take it from there. It is stored sealed, like the account's
secrets (hub/privacy/secrets.py). WeCom's ``gettoken`` answers the same token while it is valid,
so its tokens need none of this.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from sqlalchemy import select, text
from sqlalchemy.dialects import postgresql

from ..clock import Clock
from ..db import Database
from ..models import PlatformToken
from ..privacy.secrets import KeyRing, SecretKeyError

tokens_t = PlatformToken.__table__


@dataclass
class Token:
    value: str
    expires_at: float


class SharedTokens:
    def __init__(self, db: Database, clock: Clock, ring: KeyRing):
        self.db = db
        self.clock = clock
        self.ring = ring
        self.fetches = 0  # tokens this process fetched from the platform

    async def get_or_fetch(self, key: str, fetch: Callable[[], Awaitable[Token]], *, fresh_until: float,
                           stale: str | None = None) -> Token:
        """The stored token if it is valid past ``fresh_until`` and is not ``stale`` (one the platform
        refused); otherwise a new one from ``fetch``, stored for the others. One process at a time
        decides (an advisory lock on the key), so they fetch one token, not one each."""
        async with self.db.write() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"platform-token:{key}"})
            row = (await conn.execute(select(tokens_t).where(tokens_t.c.key == key))).first()
            stored = self._open(row)
            if stored is not None and stored.expires_at > fresh_until and stored.value != stale:
                return stored
            token = await fetch()
            self.fetches += 1
            values = {"value": self.ring.seal(token.value), "expires_at": token.expires_at,
                      "fetched_at": self.clock.now()}
            await conn.execute(postgresql.insert(tokens_t).values(key=key, **values)
                               .on_conflict_do_update(index_elements=["key"], set_=values))
            return token

    def _open(self, row: Any) -> Token | None:
        if row is None:
            return None
        try:
            return Token(self.ring.open(row.value), row.expires_at)
        except SecretKeyError:  # sealed with a key this process lacks: fetch (and store) a new one
            return None
