"""A/B runs for bench/push.py: the hub CLI with experimental patches, chosen by environment variables.

    python bench/push.py --hub-cmd "python bench/push_hub_ab.py" ...

PUSH_AB_PRESSURE=off   the pipeline never backs off (CallbackDeps.under_pressure always False)
PUSH_AB_TRICKLE=S      pause S seconds after each job under pressure (hub default 0.05)
PUSH_AB_CONCURRENCY=N  the pipeline runs N conversations at once (hub default 32)
PUSH_AB_GATE=fair      WriteGate: when an urgent holder (the archive writer's group commit) releases, every
                       normal writer already waiting gets its turn before the next urgent one (the hub
                       hands over to one normal writer per archive commit)
PUSH_AB_GATE_BUDGET=K  with gate=fair: at most K normal writers between two urgent ones
PUSH_AB_TOUCH=batch    SessionService.customer_message pushes message.new first and coalesces the session's
                       last_customer_at UPDATE into one executemany transaction every 20 ms (instead of
                       one write transaction per inbound message)
PUSH_AB_WATCH=S        every S seconds, when the pipeline made no progress but jobs are pending, log its
                       internal state and the stacks of its running tasks (stall diagnosis)
PUSH_AB_STEPS=S        every S seconds log the wall time spent per inbound pipeline step (mean ms per job),
                       the write gate's waits (mean ms per grant) and the job start delay
PUSH_AB_METHODS=1      with PUSH_AB_STEPS: also time every coroutine method of SessionService, CustomerService,
                       Bots, Push, PlatformApi and the hub.db / views helpers (inclusive wall time)
PUSH_AB_GATE_STATS=S   log the write gate's grants (urgent / normal) every S seconds to stderr

Nothing in hub/ is changed on disk; the patches live in this process only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def patch() -> list[str]:
    applied = []
    if os.environ.get("PUSH_AB_PRESSURE") == "off":
        from hub.callbacks.common import CallbackDeps
        CallbackDeps.under_pressure = lambda self: False  # type: ignore[method-assign]
        applied.append("pressure=off")
    if os.environ.get("PUSH_AB_TRICKLE"):
        from hub import pipeline
        pause = float(os.environ["PUSH_AB_TRICKLE"])
        init = pipeline.Pipeline.__init__

        def patched_init(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
            init(self, *a, **kw)
            self.trickle_pause = pause

        pipeline.Pipeline.__init__ = patched_init  # type: ignore[method-assign]
        applied.append(f"trickle_pause={pause}")
    if os.environ.get("PUSH_AB_CONCURRENCY"):
        import asyncio

        from hub import pipeline as P
        n = int(os.environ["PUSH_AB_CONCURRENCY"])
        init0 = P.Pipeline.__init__

        def init_conc(self, *a, **kw):  # noqa: ANN001, ANN002, ANN003, ANN202
            init0(self, *a, **kw)
            self.concurrency = n
            self._slots = asyncio.Semaphore(n)

        P.Pipeline.__init__ = init_conc  # type: ignore[method-assign]
        applied.append(f"concurrency={n}")
    if os.environ.get("PUSH_AB_GATE") == "fair":
        from hub.db import WriteGate

        def acquire_fair(self, urgent: bool = False):  # noqa: ANN001, ANN202
            return _acquire(self, urgent)

        async def _acquire(self, urgent: bool) -> None:  # noqa: ANN001
            import asyncio
            if not self._held and not self._urgent and (urgent or not self._normal):
                self._held = True
                self._holder_urgent = urgent
                return
            fut = asyncio.get_running_loop().create_future()
            fut.urgent = urgent  # type: ignore[attr-defined]
            (self._urgent if urgent else self._normal).append(fut)
            try:
                await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled():
                    self.release()
                else:
                    (self._urgent if urgent else self._normal).remove(fut)
                raise

        def release_fair(self) -> None:  # noqa: ANN001
            if getattr(self, "_holder_urgent", False):
                # everyone waiting now goes before the next urgent (at most PUSH_AB_GATE_BUDGET of them)
                self._budget = min(len(self._normal), int(os.environ.get("PUSH_AB_GATE_BUDGET") or 1 << 30))
            budget = getattr(self, "_budget", 0)
            order = (self._normal, self._urgent) if budget > 0 else (self._urgent, self._normal)
            for queue in order:
                while queue:
                    fut = queue.popleft()
                    if not fut.done():
                        fut.set_result(None)
                        self._holder_urgent = queue is self._urgent
                        if queue is self._normal and budget > 0:
                            self._budget = budget - 1
                        return
            self._held = False
            self._holder_urgent = False

        WriteGate.acquire = acquire_fair  # type: ignore[method-assign]
        WriteGate.release = release_fair  # type: ignore[method-assign]
        applied.append("gate=fair")
    if os.environ.get("PUSH_AB_TOUCH") == "batch":
        import asyncio
        from types import SimpleNamespace

        from hub.db import retry_busy
        from hub.service import sessions as S

        async def flush(self) -> None:  # noqa: ANN001
            self._ab_timer = None
            batch, self._ab_pending = self._ab_pending, {}
            if not batch:
                return

            async def write() -> None:
                async with self.db.write() as conn:
                    await conn.execute(S.TOUCH_CUSTOMER_Q, [{"sid": k, "at": v} for k, v in batch.items()])

            await retry_busy(write)

        async def customer_message(self, conversation_id, message_row, row=None) -> bool:  # noqa: ANN001
            row = row if row is not None else await self._open_session(conversation_id)
            if row is None:
                return False
            now = self.clock.now()
            from hub.archive.history import message_json
            if row.agent_id:
                await self.push.to_user(row.agent_id, "message.new",
                                        {"session_id": row.id, "message": message_json(message_row)})
                self._arm_unanswered_timer(SimpleNamespace(**{**row._mapping, "last_customer_at": now}))
            if not hasattr(self, "_ab_pending"):
                self._ab_pending, self._ab_timer = {}, None
            self._ab_pending[row.id] = now
            if self._ab_timer is None:
                self._ab_timer = asyncio.get_running_loop().call_later(
                    0.02, lambda: asyncio.ensure_future(flush(self)))
            return True

        S.SessionService.customer_message = customer_message  # type: ignore[method-assign]
        applied.append("touch=batch")
    if os.environ.get("PUSH_AB_WATCH"):
        import asyncio
        import io

        from hub import pipeline as P
        every = float(os.environ["PUSH_AB_WATCH"])
        start = P.Pipeline.start

        def watched_start(self) -> None:  # noqa: ANN001
            start(self)

            async def watch() -> None:
                last = -1
                while True:
                    await asyncio.sleep(every)
                    try:
                        async with self.db.read() as conn:
                            pending = (await conn.execute(P.JOBS_Q, {"limit": 100000})).all()
                    except Exception as exc:  # noqa: BLE001
                        print(f"watch: read failed {exc}", file=sys.stderr, flush=True)
                        continue
                    if pending and self.done == last:
                        gate = self.db.gate
                        out = io.StringIO()
                        print(f"watch: STALL done={self.done} pending={len(pending)} busy={len(self._busy)} "
                              f"running={len(self._running)} finished={len(self._finished)} "
                              f"finishing={len(self._finishing)} deleted={len(self._deleted)} "
                              f"retry_at={len(self._retry_at)} slots={self._slots._value} "
                              f"trickle waiting={self.trickle.waiting} task_done={self._task.done() if self._task else None} "
                              f"gate held={gate._held} urgent={len(gate._urgent)} normal={len(gate._normal)} "
                              f"first pending={[tuple(r) for r in pending[:3]]} busy={sorted(self._busy)[:10]}",
                              file=out)
                        for t in list(self._running)[:5]:
                            t.print_stack(limit=30, file=out)
                        if self._task is not None and self._task.done():
                            print(f"pipeline task result: {self._task.exception()!r}", file=out)
                        elif self._task is not None:
                            self._task.print_stack(limit=30, file=out)
                        print(out.getvalue(), file=sys.stderr, flush=True)
                    last = self.done

            self._ab_watch = asyncio.ensure_future(watch())

        P.Pipeline.start = watched_start  # type: ignore[method-assign]
        applied.append("watch")
    if os.environ.get("PUSH_AB_STEPS"):
        import time
        from collections import defaultdict

        from hub import pipeline as P
        from hub.db import WriteGate
        every = float(os.environ["PUSH_AB_STEPS"])
        acc: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        mark = [time.monotonic()]

        def add(key: str, dt: float) -> None:
            a = acc[key]
            a[0] += dt
            a[1] += 1
            now = time.monotonic()
            if now - mark[0] >= every:
                mark[0] = now
                parts = [f"{k}={v[0] / v[1] * 1000:.2f}ms x{v[1]}" for k, v in sorted(acc.items())]
                print("steps: " + "  ".join(parts), file=sys.stderr, flush=True)
                acc.clear()

        add_step = P.Pipeline.add_inbound_step

        def timed_add(self, step) -> None:  # noqa: ANN001
            name = getattr(step, "__qualname__", repr(step)).split(".<locals>")[0]

            async def timed(ctx) -> None:  # noqa: ANN001
                t = time.monotonic()
                try:
                    await step(ctx)
                finally:
                    add(f"step:{name}", time.monotonic() - t)

            add_step(self, timed)

        P.Pipeline.add_inbound_step = timed_add  # type: ignore[method-assign]
        run_job = P.Pipeline._run_job

        async def timed_job(self, job, message) -> bool:  # noqa: ANN001
            t = time.monotonic()
            try:
                return await run_job(self, job, message)
            finally:
                add("job", time.monotonic() - t)

        P.Pipeline._run_job = timed_job  # type: ignore[method-assign]
        acquire = WriteGate.acquire

        async def timed_acquire(self, urgent: bool = False) -> None:  # noqa: ANN001
            t = time.monotonic()
            await acquire(self, urgent)
            add("gate-wait:" + ("urgent" if urgent else "normal"), time.monotonic() - t)

        WriteGate.acquire = timed_acquire  # type: ignore[method-assign]
        applied.append("steps")
        if os.environ.get("PUSH_AB_METHODS"):
            import functools
            import inspect

            from bots.pipeline import Bots
            from hub.customers.service import CustomerService
            from hub.outbound.api import PlatformApi
            from hub.push import Push
            from hub.service import sessions as S
            from hub.service import views as V

            def wrap(owner, name, fn, label):  # noqa: ANN001, ANN202
                @functools.wraps(fn)
                async def timed_fn(*a, **kw):  # noqa: ANN002, ANN003, ANN202
                    t = time.monotonic()
                    try:
                        return await fn(*a, **kw)
                    finally:
                        add(label, time.monotonic() - t)
                setattr(owner, name, timed_fn)

            for cls in (S.SessionService, CustomerService, Bots, Push, PlatformApi):
                for name, fn in list(vars(cls).items()):
                    if inspect.iscoroutinefunction(fn):
                        wrap(cls, name, fn, f"{cls.__name__}.{name}")
            wrap(V, "session_bundle", V.session_bundle, "session_bundle")
            S.session_bundle = V.session_bundle
            applied.append("methods")
    if os.environ.get("PUSH_AB_GATE_STATS"):
        import asyncio
        import time
        from collections import Counter

        from hub.db import WriteGate
        every = float(os.environ["PUSH_AB_GATE_STATS"])
        grants: Counter = Counter()
        acq = WriteGate.acquire

        async def counting_acquire(self, urgent: bool = False) -> None:  # noqa: ANN001
            await acq(self, urgent)
            grants["urgent" if urgent else "normal"] += 1
            now = time.monotonic()
            if now - grants.get("_t", 0) >= every:
                print(f"gate grants/{every:g}s: urgent={grants['urgent']} normal={grants['normal']}", file=sys.stderr,
                      flush=True)
                grants.clear()
                grants["_t"] = now

        WriteGate.acquire = counting_acquire  # type: ignore[method-assign]
        applied.append("gate-stats")
    return applied


if __name__ == "__main__":
    print(f"push_hub_ab: {', '.join(patch()) or 'no patches'}", file=sys.stderr, flush=True)
    from hub.cli import main
    sys.exit(main())
