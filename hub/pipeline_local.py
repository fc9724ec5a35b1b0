"""One hub process (SQLite): the pipeline picks its jobs from an index of pending jobs kept in memory.

Mixed into ``Pipeline`` (hub/pipeline.py), whose state it uses: the in-memory index (``_known``),
the conversations busy now, the finished and deleted jobs and the retry times.
"""
from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import bindparam, select

from .models import Job, Message
from .scale.job_claims import JOB_COLUMNS

jobs = Job.__table__
messages = Message.__table__
JOBS_Q = select(*JOB_COLUMNS).where(jobs.c.state == "pending").order_by(jobs.c.id).limit(bindparam("limit"))
NEW_JOBS_Q = (select(*JOB_COLUMNS).where(jobs.c.state == "pending").where(jobs.c.id > bindparam("seen"))
              .order_by(jobs.c.id).limit(bindparam("limit")))


class LocalPicking:
    db: Any
    _busy: set[int]
    _known: dict[int, dict[int, Any]]
    _known_jobs: int
    _seen: int
    _resync: bool
    _synced_at: float
    max_known: int
    resync_every: float
    _finished: set[int]
    _deleted: dict[int, float]
    _retry_at: dict[int, float]
    _launch: Any

    async def _pick_local(self, room: int, now: float, limit: int) -> dict[int, list[Any]]:
        """One process (SQLite): job ids grow in commit order, so a pass reads only the jobs above the
        highest id it has seen and keeps them per conversation in memory, up to ``max_known``; the
        head of the queue is read whole at start, after a failure and every ``resync_every`` seconds
        (fresh attempts and retry times, and jobs deleted behind its back). Reading the head on every
        pass cost more than running the jobs once a backlog formed."""
        loop_now = asyncio.get_running_loop().time()
        async with self.db.read() as conn:
            if self._resync or loop_now - self._synced_at > self.resync_every:
                self._resync, self._synced_at = False, loop_now
                rows = (await conn.execute(JOBS_Q, {"limit": limit})).all()
                self._known, self._known_jobs = {}, 0
                if len(rows) >= limit:  # a full head: more may wait above it, so reading goes on from its end
                    self._seen = rows[-1].id
            elif self._known_jobs < self.max_known:
                rows = (await conn.execute(NEW_JOBS_Q, {"seen": self._seen, "limit": 2 * limit})).all()
            else:
                rows = []
        for row in rows:
            self._seen = max(self._seen, row.id)
            conv_jobs = self._known.setdefault(row.conversation_id, {})
            self._known_jobs += row.id not in conv_jobs
            conv_jobs[row.id] = row
        # a walk from the front that stops once the free slots are filled (no copy of the whole
        # index per pass: with a backlog of thousands, the copies cost more than the jobs)
        by_conv: dict[int, list[Any]] = {}
        emptied: list[int] = []
        for conv, conv_jobs in self._known.items():
            if len(by_conv) >= room:
                break
            if conv in self._busy:
                continue
            gone: list[int] = []
            take: list[Any] = []
            for job_id, row in conv_jobs.items():
                if job_id in self._finished or job_id in self._deleted:
                    gone.append(job_id)
                    continue
                if max(row.run_after, self._retry_at.get(job_id, 0.0)) > now:
                    break  # an earlier job waits for its retry: keep the order
                take.append(row)
            for job_id in gone:
                del conv_jobs[job_id]
            for row in take:
                del conv_jobs[row.id]
            self._known_jobs -= len(gone) + len(take)
            if not conv_jobs:
                emptied.append(conv)
            if take:
                by_conv[conv] = take
        for conv in emptied:
            del self._known[conv]
        return by_conv

    async def _start(self, by_conv: dict[int, list[Any]], now: float) -> int:
        """One process: start the picked conversations' jobs with their messages."""
        self._busy.update(by_conv)  # taken before the next await, so no other pass takes them
        ids = [j.message_id for conv_jobs in by_conv.values() for j in conv_jobs]
        try:
            async with self.db.read() as conn:
                found = {m.id: m for m in (await conn.execute(select(messages).where(messages.c.id.in_(ids)))).all()}
        except BaseException:
            self._busy.difference_update(by_conv)
            self._resync = True  # they left the in-memory index: read the head again
            raise
        return self._launch({conv: [(j, found.get(j.message_id)) for j in conv_jobs]
                             for conv, conv_jobs in by_conv.items()})
