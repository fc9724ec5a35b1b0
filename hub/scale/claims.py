"""Exactly-once timer firings across hub processes: the first insert of ``key@when`` wins."""
from __future__ import annotations

import logging
import os
import socket

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from ..clock import Clock
from ..db import Database, retry_busy
from ..models import TimerClaim

log = logging.getLogger(__name__)

claims = TimerClaim.__table__
KEEP = 7 * 86400.0  # claims older than this are pruned (no timer is re-armed that late)


def worker_name(configured: str = "") -> str:
    """This process in leases, claims and logs: the configured id, else host:pid."""
    return configured or f"{socket.gethostname()}:{os.getpid()}"


class TimerClaims:
    def __init__(self, db: Database, clock: Clock, worker: str):
        self.db = db
        self.clock = clock
        self.worker = worker
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        self._pruned_at = 0.0

    async def claim(self, key: str, when: float) -> bool:
        """True for exactly one caller per (key, when), whichever process it runs in."""
        now = self.clock.now()

        async def write() -> bool:
            async with self.db.write() as conn:
                row = (await conn.execute(
                    self._insert(claims).on_conflict_do_nothing(index_elements=["key"]).returning(claims.c.key),
                    {"key": f"{key}@{when:.3f}"[:200], "worker": self.worker[:96], "at": now})).first()
                if now - self._pruned_at > 3600:
                    self._pruned_at = now
                    await conn.execute(delete(claims).where(claims.c.at < now - KEEP))
                return row is not None

        won = await retry_busy(write)
        if not won:
            log.debug("timer %s at %.3f already fired elsewhere", key, when)
        return won
