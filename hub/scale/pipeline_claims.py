"""Several hub processes (PostgreSQL): the pipeline claims its jobs in the database before running them.

Mixed into ``Pipeline`` (hub/pipeline.py), whose state it uses. A process claims a conversation's
due jobs (the SQL: hub/scale/job_claims.py; of its own shard's conversations and of any shard no
live process holds: hub/scale/job_shard.py), renews its leases while it works, and gives back what
it will not run; a process that dies leaves claims whose lease runs out, for any other to take.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import Integer, bindparam, func, select, update

from ..db import retry_busy
from ..models import Job
from .job_claims import CLAIM_HEAD_SQL, CLAIM_SQL, ClaimedJob, ids_in

log = logging.getLogger("hub.pipeline")
jobs = Job.__table__
NO_SHARD = {"shard_count": 1, "shard_index": 0, "shard_class": 0}  # every conversation is ours
# the backlog decides only whether callbacks go first (above hub/app.py's PIPELINE_BACKLOG, 150), so a
# long queue is counted up to BACKLOG_COUNT_CAP, not whole: after a flood each process counted its
# tens of thousands of pending jobs every second, most of what PostgreSQL read for the pipeline
BACKLOG_COUNT_CAP = 1000
PENDING_COUNT_Q = select(func.count()).select_from(
    select(jobs.c.id).where(jobs.c.state == "pending").limit(bindparam("cap", type_=Integer)).subquery())


class SharedClaiming:
    db: Any
    clock: Any
    lease: float
    _busy: set[int]
    _finished: set[int]
    _claimed: set[int]
    _claiming: int
    _shared_backlog: int
    _counted_at: float
    _renewed_at: float
    _launch: Any
    shard_lock: Any  # ShardLock or None (hub/scale/job_shard.py)
    shard_from: int
    backlog_count_cap: int = BACKLOG_COUNT_CAP  # a longer queue counts as this long

    async def _start_shared(self, room: int, now: float, limit: int) -> int:
        """Several processes: claim up to ``room`` free conversations' due jobs at the head of the
        queue (CLAIM_HEAD_SQL, then CLAIM_SQL) and start them; counts the backlog at most once a second."""
        self._claiming += 1  # until its conversations are marked busy (drain waits for it)
        try:
            return await self._claim_and_start(room, now, limit)
        finally:
            self._claiming -= 1

    async def _claim_and_start(self, room: int, now: float, limit: int) -> int:
        busy = set(self._busy)
        finished = sorted(self._finished)
        shard = self.shard_lock.params() if self.shard_lock is not None and self.prefers_shard() else NO_SHARD
        count_due = False

        async def write() -> tuple[list[Any], list[Any]]:
            nonlocal count_due
            async with self.db.write() as conn:
                got = (await conn.execute(CLAIM_HEAD_SQL, {
                    "now": now, "limit": limit, "busy": sorted(busy), "finished": finished, "room": room,
                    **shard})).all()
                head = [r for r in got if r.id is not None]
                count_due = self._count_backlog(sum(r.head_rows for r in got if r.id is None), limit)
                if not head:
                    return [], []
                return head, (await conn.execute(CLAIM_SQL, {
                    "ids": [h.id for h in head], "now": now, "lease": now + self.lease, "finished": finished})).all()

        head, rows = await retry_busy(write)
        if count_due:
            async with self.db.read() as conn:
                counted = await conn.execute(PENDING_COUNT_Q, {"cap": self.backlog_count_cap})
                self._shared_backlog = counted.scalar() or 0
        claimed = {r.job_id: r for r in rows}
        self._claimed.update(claimed)
        by_conv: dict[int, list[tuple[Any, Any]]] = {}
        cut: set[int] = set()  # conversations where a job of the head was not claimed
        lost: set[int] = set()
        for h in head:  # in id order: each conversation keeps the claimed prefix of its jobs
            r = claimed.get(h.id)
            if r is None or h.conversation_id in cut:
                cut.add(h.conversation_id)
                if r is not None:
                    lost.add(h.id)  # behind a job it did not get (its retry waits): back to pending
                continue
            job = ClaimedJob(r.job_id, r.job_kind, r.job_message_id, r.job_conversation_id, r.job_attempts,
                             r.job_run_after)
            by_conv.setdefault(job.conversation_id, []).append((job, r if r.id is not None else None))
        # the claim excludes conversations with a live claim, so a concurrent pass (drain) cannot
        # have taken these; marked busy before the next await
        self._busy.update(by_conv)
        if lost:
            try:
                await self._unclaim(lost)
            except Exception:  # noqa: BLE001 - no longer renewed: their leases run out instead
                log.exception("could not release %d claimed jobs", len(lost))
        return self._launch(by_conv)

    def prefers_shard(self) -> bool:
        """The shard preference holds under load, where the caches pay; with few conversations in
        flight the process that was woken takes any job at once (nobody waits for a wake-up hop)."""
        return len(self._busy) >= self.shard_from

    def _count_backlog(self, head_rows: int, limit: int) -> bool:
        """The backlog from a pass's head: exact when the head was not full; a full head means a long
        queue, to be counted (True, up to ``backlog_count_cap``) at most once a second."""
        if head_rows < limit or limit >= self.backlog_count_cap:
            self._shared_backlog = head_rows
            return False
        # at least a full head, known now (the count, at most once a second, may be a second old)
        self._shared_backlog = max(self._shared_backlog, head_rows)
        loop_now = asyncio.get_running_loop().time()
        if loop_now - self._counted_at < 1.0:
            return False
        self._counted_at = loop_now
        return True

    async def _unclaim(self, ids: set[int]) -> None:
        self._claimed -= ids

        async def write() -> None:
            async with self.db.write() as conn:
                await conn.execute(update(jobs).where(ids_in(jobs.c.id, ids, self.db.dialect))
                                   .where(jobs.c.state == "claimed")
                                   .values(state="pending", run_after=0.0))

        await retry_busy(write)

    async def _renew_leases(self) -> None:
        """Keep this process's claims alive while it works on them (every third of a lease)."""
        now = self.clock.now()
        live = self._claimed - self._finished
        if not live or now - self._renewed_at < self.lease / 3:
            return
        self._renewed_at = now

        async def write() -> None:
            async with self.db.write() as conn:
                await conn.execute(update(jobs).where(ids_in(jobs.c.id, live, self.db.dialect))
                                   .where(jobs.c.state == "claimed")
                                   .values(run_after=now + self.lease))

        await retry_busy(write)
