"""The pipeline worker: runs the jobs written with archived messages, after the callback's reply.

Jobs run in id order per conversation (a later message of a conversation never overtakes an
earlier one, even across retries); different conversations run concurrently. A job left pending
when the hub stops runs after it restarts. Handlers are registered per job kind; the ``inbound``
kind runs a chain of steps (bots, routing, push) that later modules append to.

Several processes (PostgreSQL): a process claims a conversation's due jobs before running them
(``state`` pending -> claimed, ``run_after`` = lease expiry, under a per-conversation advisory
lock, and only if no other live claim exists for that conversation), renews its leases while it
works, and deletes the jobs when done. A process that dies leaves claims whose lease runs out; any
other process then takes those jobs, still in id order (hub/scale/pipeline_claims.py, its SQL in
hub/scale/job_claims.py). SQLite (one process) skips all of this: it picks from an index of the
pending jobs kept in memory (hub/pipeline_local.py).
"""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from sqlalchemy import delete, update

from .clock import Clock
from .db import Database, retry_busy
from .models import Job
from .loop_load import LoadMeter
from .pipeline_local import LocalPicking
from .scale.job_claims import ids_in
from .scale.pipeline_claims import SharedClaiming
from .tasks import cancel_and_wait
from .trickle import Trickle

log = logging.getLogger(__name__)

jobs = Job.__table__
LEASE = 30.0  # seconds a claim (several processes: hub/scale/job_claims.py) lives without renewal


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a handler gets: the job and its archived message row. ``state`` carries what one step
    tells the next (e.g. the bots' FAQ suggestions, or that a bot answered)."""

    job_id: int
    kind: str
    attempts: int
    message: Any  # a Row of the messages table
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def data(self) -> dict[str, Any]:
        return json.loads(self.message.data or "{}")


Handler = Callable[[JobContext], Awaitable[None]]


class Pipeline(LocalPicking, SharedClaiming):
    def __init__(self, db: Database, clock: Clock, concurrency: int = 32, max_attempts: int = 10,
                 lease: float = LEASE, burst_share: float = 0.1):
        self.db = db
        self.clock = clock
        self.handlers: dict[str, Handler] = {}
        self.inbound_steps: list[Handler] = []
        self.concurrency = concurrency
        self.max_attempts = max_attempts
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._busy: set[int] = set()  # conversations with a job in flight
        self._running: set[asyncio.Task] = set()
        self._slots = asyncio.Semaphore(concurrency)
        self.wake_room = max(1, concurrency // 4)  # free slots that start a new pass at once
        self.wake_delay = 0.005  # seconds after which fewer free slots start one anyway
        self._late_wake: asyncio.TimerHandle | None = None
        # one process: pending jobs known in memory, per conversation in id order (see _pick_local)
        self._known: dict[int, dict[int, Any]] = {}
        self._known_jobs = 0  # rows in _known
        # a backlog past this stays in the database until the jobs before it ran: its rows held in
        # memory made every full garbage collection walk them (100-200 ms stalls under a flood)
        self.max_known = 5000
        self._seen = 0
        self._resync = True
        self._synced_at = 0.0
        self.resync_every = 10.0
        # under a burst of callbacks, acknowledging comes first: jobs then trickle (the platform
        # waits 5 s for an answer; nobody waits that long for a bot reply to be computed)
        self.pressure: Callable[[], bool] | None = None
        # under pressure jobs take at most about this share of the loop, but only while the loop's
        # thread is saturated (``saturated_share`` of its CPU): with CPU to spare they take it all, or
        # a backlog left by a burst would drain at a fraction of the speed under steady traffic (and
        # grow). During a flood they cannot keep up anyway, and every point given to them is taken
        # from acknowledging, whose capacity decides whether the platforms time out and retry.
        # (``HUB_BURST_JOB_SHARE``; measured: at 0.005 instead of 0.1 a flood was acknowledged 0-11 %
        # faster by one process on SQLite and 11-19 % by two on PostgreSQL, its jobs left for after it)
        self.trickle = Trickle(self._yielding, share=burst_share)
        self.saturated_share = 0.85  # of a core the loop's thread ran or waited for one
        # ... or while callbacks come in at ``flood_rate`` a second or more (``ack_rate``: this
        # process's saves) with the thread at least ``flood_share`` busy: a flood whose
        # acknowledgements wait on their commits between batches, so the thread reads as saturated
        # only while the jobs run beside them; yielding and running in turn, the jobs took 7,000
        # callbacks/s down to 4,000-4,700 (bench/callbacks.py). The share keeps a fast machine, to
        # which that rate is light work, running its jobs at full speed.
        self.flood_rate = 2000.0
        self.flood_share = 0.5
        self.ack_rate: Callable[[], float] | None = None
        self.machine_share = 0.9  # several processes: of the machine's cores busy (PostgreSQL's work shows there)
        self.load = LoadMeter()
        # several processes: saves slow enough that acknowledging is behind (whatever the CPU says)
        self.acks_slow: Callable[[], bool] | None = None
        self._finished: set[int] = set()  # done, deletion not yet committed
        self._finishing: list[int] = []
        # deleted jobs, kept a while: a read that began before the delete may still return them
        self._deleted: dict[int, float] = {}
        self._retry_at: dict[int, float] = {}  # failed jobs' next run, ahead of reads that began earlier
        self._finish_lock = asyncio.Lock()
        self._flush_timer: asyncio.TimerHandle | None = None
        self.finish_delay = 0.02
        self.done = 0
        self.handlers["inbound"] = self._run_inbound_steps
        self.shared = db.dialect == "postgresql"  # other processes may run jobs too: claim before running
        self._claimed: set[int] = set()  # job ids this process holds a lease on
        self._renewed_at = 0.0
        # several processes: the jobs waiting in the database, from the last read (each process's
        # own written-minus-done count means nothing when the others run its jobs)
        self._shared_backlog = 0
        self._counted_at = 0.0
        self._claiming = 0  # shared passes between their claim and marking its conversations busy
        self.shard_lock: Any = None  # several processes: the conversations this one prefers (ShardLock)
        self.shard_from = max(1, concurrency // 4)  # conversations in flight from which it prefers them
        self.lease = lease

    def backlog(self, writer: Any) -> int:
        """Jobs waiting to run: one process, those its archive writer committed that it has not
        finished yet; several processes, the pending jobs in the database (as of the last pass)."""
        if self.shared:
            return self._shared_backlog
        return max(0, writer.jobs_written - self.done)

    def register(self, kind: str, handler: Handler) -> None:
        self.handlers[kind] = handler

    def add_inbound_step(self, step: Handler) -> None:
        self.inbound_steps.append(step)

    async def _run_inbound_steps(self, ctx: JobContext) -> None:
        for step in self.inbound_steps:
            await self.trickle.give_way()  # a burst that began since the job started: it waits its turn
            await step(ctx)

    def notify(self, *_args: Any) -> None:
        self._wakeup.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="pipeline")
        self._wakeup.set()  # pick up jobs left pending by a previous run

    async def stop(self) -> None:
        self._stopping = True
        if self._task:
            await cancel_and_wait(self._task)
        if self._flush_timer is not None:
            self._flush_timer.cancel()
        if self._late_wake is not None:
            self._late_wake.cancel()
        if self._finishing:
            try:
                await asyncio.wait_for(self._flush_finished(), 5)
            except Exception:  # noqa: BLE001 - unfinished ones simply run again after the restart
                pass
        if self._running:  # jobs are idempotent: what is cut short runs again after the restart
            _done, pending = await asyncio.wait(list(self._running), timeout=5)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        if self.shared and self._claimed - self._finished:  # another process takes them at once
            try:
                await asyncio.wait_for(self._unclaim(self._claimed - self._finished), 5)
            except Exception:  # noqa: BLE001 - their lease runs out instead
                pass

    async def _loop(self) -> None:
        # the flag, not only the cancel: 3.11's wait_for can swallow a cancel that races its timeout
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                pass
            self._wakeup.clear()
            try:
                if self.shared:
                    await self._renew_leases()
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("pipeline pass failed")
                await asyncio.sleep(0.5)

    async def run_once(self, limit: int = 200) -> int:
        """Start due jobs of free conversations (as many conversations as there are free slots);
        returns how many jobs were started."""
        room = self.concurrency - len(self._busy)
        if room <= 0:
            return 0  # a finishing conversation wakes the loop again
        now = self.clock.now()
        self._forget_old_deletions()
        if self.shared:
            return await self._start_shared(room, now, limit)
        by_conv = await self._pick_local(room, now, limit)
        if not by_conv:
            return 0
        return await self._start(by_conv, now)

    def _launch(self, by_conv: dict[int, list[tuple[Any, Any]]]) -> int:
        for conv, conv_jobs in by_conv.items():
            task = asyncio.create_task(self._run_conversation(conv, conv_jobs))
            self._running.add(task)
            task.add_done_callback(self._running.discard)
        return sum(len(v) for v in by_conv.values())

    def _forget_old_deletions(self, keep: float = 60.0) -> None:
        """No read takes a minute: deletions older than that can no longer be seen. The dict is in
        deletion order, so the old ones are at its front."""
        cutoff = asyncio.get_running_loop().time() - keep
        while self._deleted:
            oldest = next(iter(self._deleted))
            if self._deleted[oldest] > cutoff:
                break
            del self._deleted[oldest]

    async def drain(self, timeout: float = 10.0) -> None:
        """Run until no due job is left (tests and the CLI)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            started = await self.run_once()
            if self._running:
                await asyncio.gather(*list(self._running), return_exceptions=True)
            elif self._busy or self._claiming:
                await asyncio.sleep(0.01)  # another pass is claiming or starting conversations
            elif self._finishing:
                await self._flush_finished()
            elif not started:
                return
        log.warning("drain: jobs still running or due after %.0f s", timeout)  # (a test's failure then says why)

    async def _run_conversation(self, conv: int, conv_jobs: list[tuple[Any, Any]]) -> None:
        leftover = {job.id for job, _ in conv_jobs}
        try:
            async with self._slots:
                for job, message in conv_jobs:
                    ok = await self.trickle.run(lambda: self._run_job(job, message))
                    leftover.discard(job.id)
                    if not ok:
                        break  # keep order: later jobs wait for this one's retry
        finally:
            leftover &= self._claimed
            if leftover:  # behind a failed job (or cut short): back to pending, for whoever comes next
                try:
                    await self._unclaim(leftover)
                except Exception:  # noqa: BLE001 - their lease runs out instead
                    log.exception("could not release %d claimed jobs", len(leftover))
            self._busy.discard(conv)
            self._slot_freed()

    def _yielding(self) -> bool:
        """Callbacks come first, under pressure, but only while they need the CPU the jobs would take:
        while the loop's thread is saturated (it ran or waited for a core ``saturated_share`` of the
        last 0.1 s or so: hub/loop_load.py), or while callbacks arrive at ``flood_rate`` or more and
        it is ``flood_share`` busy (a flood: its acknowledgements wait on their commits, and the thread
        reads as saturated only while the jobs run). With several processes the jobs' cost is mostly
        PostgreSQL's, which the thread does not show: there they also yield while the machine is
        ``machine_share`` busy (a measured 2-worker flood fell from 2,100 to 300 callbacks/s when the
        jobs took the cores), or while saves are slow. With CPU to spare they run at full speed: when
        they always yielded under pressure, customers writing on at 300/s after a burst kept the
        burst's backlog growing for as long as they wrote (each worker ran 40 jobs/s at 30 % CPU)."""
        if self.pressure is None or not self.pressure():
            return False
        if (self.ack_rate is not None and self.ack_rate() >= self.flood_rate
                and self.load.saturated(self.flood_share)):
            return True
        if not self.shared:
            return self.load.saturated(self.saturated_share)
        if self.acks_slow is not None and self.acks_slow():
            return True
        return self.load.saturated(self.saturated_share, self.machine_share)

    def _slot_freed(self) -> None:
        """Wake the loop for the next pass once enough slots are free (each pass reads the head of
        the job queue: with a backlog, one read per finished conversation would cost more than the
        jobs), or a few milliseconds later in any case."""
        if self.concurrency - len(self._busy) >= self.wake_room:
            self._wakeup.set()
        elif self._late_wake is None:
            def wake() -> None:
                self._late_wake = None
                self._wakeup.set()
            self._late_wake = asyncio.get_running_loop().call_later(self.wake_delay, wake)

    async def _run_job(self, job: Any, message: Any) -> bool:
        handler = self.handlers.get(job.kind)
        try:
            if message is None:
                raise LookupError(f"message {job.message_id} is gone")
            if handler is None:
                raise LookupError(f"no handler for job kind {job.kind!r}")
            await handler(JobContext(job.id, job.kind, job.attempts, message))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            await self._failed(job, exc)
            return False
        self._retry_at.pop(job.id, None)
        self._finished.add(job.id)
        self._finishing.append(job.id)
        if self._flush_timer is None:  # coalesce the deletes of jobs finishing close together
            self._flush_timer = asyncio.get_running_loop().call_later(
                self.finish_delay, lambda: self._spawn(self._flush_finished()))
        self.done += 1
        return True

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _flush_finished(self) -> None:
        """Delete finished jobs in batches (group commit): handlers are idempotent, so a crash
        before the delete commits only means a job runs once more."""
        self._flush_timer = None
        async with self._finish_lock:
            ids, self._finishing = self._finishing, []
            if not ids:
                return

            async def write() -> None:
                async with self.db.write() as conn:
                    await conn.execute(delete(jobs).where(ids_in(jobs.c.id, ids, self.db.dialect)))

            try:
                await retry_busy(write)
            except Exception:  # noqa: BLE001 - they stay pending and run again, harmlessly
                log.exception("could not delete %d finished jobs", len(ids))
                self._finished.difference_update(ids)
                self._claimed.difference_update(ids)  # their leases run out; whoever comes next reruns them
                return
            self._finished.difference_update(ids)
            self._claimed.difference_update(ids)
            at = asyncio.get_running_loop().time()
            self._deleted.update((i, at) for i in ids)

    async def _failed(self, row: Any, exc: Exception) -> None:
        attempts = row.attempts + 1
        give_up = attempts >= self.max_attempts
        self._resync = True  # (one process) this job and those behind it are read again, with fresh attempts
        delay = min(2 ** attempts, 300)
        self._claimed.discard(row.id)
        if attempts >= self.max_attempts:
            self._retry_at.pop(row.id, None)
        else:
            self._retry_at[row.id] = self.clock.now() + delay
        log.warning("job %s (%s) failed, attempt %d%s: %s", row.id, row.kind, attempts,
                    " - giving up" if give_up else f", retry in {delay}s", exc)

        async def write() -> None:
            async with self.db.write() as conn:
                await conn.execute(update(jobs).where(jobs.c.id == row.id).values(
                    attempts=attempts, last_error=str(exc)[:2000],
                    state="failed" if give_up else "pending", run_after=self.clock.now() + delay))

        await retry_busy(write)
