"""Exactly-once timer firings across hub processes: the first insert of ``key@when`` wins, as a
lease. The winner marks the firing done once its action has run; a process that died in between
leaves the lease to run out, and the next process to look (one that lost the claim looks again
then, a restarted one when it re-arms its timers) takes the firing over, so it is neither lost nor
run twice while its first runner lives."""
from __future__ import annotations

import logging
import os
import socket

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..clock import Clock
from ..db import Database, retry_busy
from ..models import TimerClaim

log = logging.getLogger(__name__)

claims = TimerClaim.__table__
KEEP = 7 * 86400.0  # claims older than this are pruned (no timer is re-armed that late)
LEASE = 60.0  # a firing's claim is its runner's for this long; its actions take well under a second


def worker_name(configured: str = "") -> str:
    """This process in leases, claims and logs: the configured id, else host:pid."""
    return configured or f"{socket.gethostname()}:{os.getpid()}"


class TimerClaims:
    def __init__(self, db: Database, clock: Clock, worker: str, lease: float = LEASE):
        self.db = db
        self.clock = clock
        self.worker = worker
        self.lease = lease
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        self._pruned_at = 0.0

    async def claim(self, key: str, when: float) -> bool | float:
        """True: this process runs the firing (exactly one caller per (key, when) while its runner
        lives). False: it has run. A float: another process holds it; look again at that time."""
        now = self.clock.now()
        name = _name(key, when)

        async def write() -> bool | float:
            async with self.db.write() as conn:
                row = (await conn.execute(
                    self._insert(claims).on_conflict_do_nothing(index_elements=["key"]).returning(claims.c.key),
                    {"key": name, "worker": self.worker[:96], "at": now, "until": now + self.lease,
                     "done": False})).first()
                if row is not None:
                    if now - self._pruned_at > 3600:
                        self._pruned_at = now
                        await conn.execute(delete(claims).where(claims.c.at < now - KEEP))
                    return True
                held = (await conn.execute(select(claims.c.worker, claims.c.until, claims.c.done)
                                           .where(claims.c.key == name))).first()
                if held is None or held.done:
                    return False
                if held.until >= now:
                    return float(held.until)
                # its runner's lease ran out (the process died): take the firing over
                took = (await conn.execute(
                    update(claims).where(claims.c.key == name, claims.c.done.is_(False), claims.c.until < now)
                    .values(worker=self.worker[:96], at=now, until=now + self.lease).returning(claims.c.key))).first()
                if took is None:
                    return False  # another process took it over first
                log.warning("timer %s at %.3f: taking over from %s, whose lease ran out", key, when, held.worker)
                return True

        got = await retry_busy(write)
        if got is False:
            log.debug("timer %s at %.3f already fired elsewhere", key, when)
        return got

    async def finish(self, key: str, when: float) -> None:
        """The firing has run (or its action gave up and was re-armed under a new time)."""
        async def write() -> None:
            async with self.db.write() as conn:
                await conn.execute(update(claims).where(claims.c.key == _name(key, when),
                                                        claims.c.worker == self.worker[:96]).values(done=True))

        await retry_busy(write)


def _name(key: str, when: float) -> str:
    return f"{key}@{when:.3f}"[:200]
