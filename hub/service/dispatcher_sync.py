"""Rebuilding the dispatcher from the database: at start, and with several processes every
``RESYNC_EVERY`` seconds and after a lost assignment race, so each process's in-memory dispatcher
follows what the others did (the database guards every assignment meanwhile).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from ..routing.dispatch import Dispatcher
from ..users import UserInfo
from .floor import QUEUE_ORDER, QUEUED_Q, queued_session, read_floor

log = logging.getLogger("hub.service.sessions")

CATCH_UP_HEAD = 500  # sessions at the head of the database's queue read before room is handed out
RESYNC_EVERY = 1.0  # seconds between dispatcher rebuilds when several processes share the database
FULL_RESYNC_EVERY = 5  # every fifth rebuild re-reads the whole queue (what supervisors see stays current)
REREADS = 3  # reads of the floor per rebuild while this process's dispatcher changes under them


class DispatcherSync:
    """Mixed into SessionService (which provides ``db``, ``clock``, ``dispatcher``, ``agents``,
    ``_resync_wanted``, ``_apply_all`` and the timers' ``_arm_accept_timer`` / ``_arm_unanswered_timer``)."""

    db: Any
    clock: Any
    dispatcher: Dispatcher
    agents: dict[int, UserInfo]
    _resync_wanted: bool
    _apply_all: Any
    _arm_accept_timer: Any
    _arm_unanswered_timer: Any
    _advisor_wait: Any
    _arm_advisor_fallback: Any

    async def resync(self, full: bool = True) -> None:
        """Rebuild the dispatcher (agents, their load, the queue) from the database, route what waits,
        and arm the accept and unanswered timers of open sessions. At start; with several processes
        also every ``RESYNC_EVERY`` seconds and after a lost assignment race, so each process's
        dispatcher follows what the others did (the database guards every assignment meanwhile).
        Not ``full``: the queue is read only when some agent has room (a long queue in a busy hour
        is not re-read every second); otherwise the local queue is kept, minus what is now held."""
        for _ in range(REREADS):
            seen = (self.dispatcher, self.dispatcher.changes)
            floor = await read_floor(self.db, queue=True if full else None)
            if (self.dispatcher, self.dispatcher.changes) == seen:
                break
            # this process changed its dispatcher while the read ran (an agent came online, a session
            # was queued or assigned): the read may predate it, and replacing the dispatcher with it
            # would undo that until the next pass. Read again.
        else:  # still moving: build from this read; the next pass (1 s with several processes) mends it
            if not getattr(self, "shared", False):
                self._resync_soon()
        agents, held_rows, held, queued = floor.agents, floor.held, floor.held_by(), floor.queued
        if queued is None:
            taken = {r.id for r in held_rows}
            queued = [q for q in self.dispatcher.queue_snapshot() if q.session_id not in taken]
        self.dispatcher = Dispatcher(advisor_wait=self._advisor_wait(), now=self.clock.now(),
                                     rr=self.dispatcher.round_robin())
        for a in agents:
            info = UserInfo(a.id, a.username, a.display_name, a.role, tuple(json.loads(a.groups or "[]")), a.cap,
                            a.status)
            self.agents[a.id] = info
            self.dispatcher.upsert_agent(a.id, groups=info.groups, cap=a.cap, status=a.status,
                                         sessions=held.get(a.id, []))
        # all at once, then assigned in queue order: one sort, not an insertion per waiting session
        # (a rebuild with 20,000 waiting took 320 ms one by one, every second with several processes)
        waiting = {q.session_id: q for q in queued if not self.dispatcher.knows(q.session_id)}
        await self._apply_all(self.dispatcher.load_queue(waiting.values()))
        for q in waiting.values():
            if q.agent_id is not None and self.dispatcher.knows(q.session_id):
                self._arm_advisor_fallback(q)
        for row in held_rows:
            if row.state == "assigned":
                self._arm_accept_timer(row.id, (row.assigned_at or self.clock.now()))
            await self._arm_unanswered_timer(row)

    async def catch_up_queue(self) -> None:
        """With several processes, before this process hands out room (a session closed, transferred,
        reassigned or not accepted, an agent online, a higher cap): add to its queue what others queued at the
        head of the database's queue since it last read it. The queue is not re-read while every
        agent is full, so a slot freed here went to this process's own oldest session, not the oldest
        waiting anywhere. Only adds: sessions others took meanwhile fail their assignment's guard and
        start a resync, as before. The head only: what waits further back has the full resync."""
        if not getattr(self, "shared", False):
            return
        async with self.db.read() as conn:
            rows = (await conn.execute(QUEUED_Q.order_by(*QUEUE_ORDER).limit(CATCH_UP_HEAD))).all()
        new = [queued_session(r) for r in rows if not self.dispatcher.knows(r.id)]
        if new:
            await self._apply_all(self.dispatcher.load_queue(new))

    async def _resync_loop(self) -> None:
        passes = 0
        while True:
            await asyncio.sleep(RESYNC_EVERY)
            self._resync_wanted = False
            passes += 1
            try:
                await self.resync(full=passes % FULL_RESYNC_EVERY == 0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next pass tries again; assignments stay guarded
                log.exception("routing resync failed")

    def _resync_soon(self) -> None:
        """This process's view was stale (an assignment lost to another process): rebuild it now."""
        if self._resync_wanted:
            return
        self._resync_wanted = True

        async def run() -> None:
            await asyncio.sleep(0.05)  # let the burst that found it settle
            if self._resync_wanted:
                self._resync_wanted = False
                try:
                    await self.resync()
                except Exception:  # noqa: BLE001
                    log.exception("routing resync failed")

        asyncio.ensure_future(run())
