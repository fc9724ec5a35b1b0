"""``python -m hub serve --workers N``: a small supervisor running N hub processes on one port.

Each worker is ``python -m hub serve`` (same flags) with ``HUB_WORKER_ID=<host>:w<i>``,
``HUB_JOB_SHARD=<i>/<N>`` (the conversations whose jobs it prefers: hub/scale/job_shard.py) and
``HUB_REUSE_PORT=1``: every worker binds the same address with SO_REUSEPORT and the kernel spreads
new connections across them. The supervisor creates the schema once before starting them (so N
workers do not race to create tables), restarts a worker that dies (with a growing pause if it keeps
dying at once), and on SIGTERM / SIGINT forwards SIGTERM to every worker and waits for their graceful
stop. Several workers need PostgreSQL (SQLite allows one writer process) and, for live push across
them, Redis (``--redis`` / ``HUB_REDIS_URL``).
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field

log = logging.getLogger("hub.workers")


class WorkersConfigError(ValueError):
    """A configuration that cannot run several workers (told to the operator, exit code 2)."""


def check_workers(workers: int, database_url: str, redis_url: str) -> None:
    if workers < 1:
        raise WorkersConfigError("--workers must be at least 1")
    if workers > 1 and database_url.startswith("sqlite"):
        raise WorkersConfigError(
            "--workers > 1 needs PostgreSQL (--db postgresql+asyncpg://...): SQLite allows a single writer process")
    if workers > 1 and not redis_url:
        raise WorkersConfigError(
            "--workers > 1 needs Redis (--redis redis://... or HUB_REDIS_URL) so every agent gets live events "
            "whichever worker their socket is on")


@dataclass
class Worker:
    index: int
    proc: subprocess.Popen | None = None
    started: float = 0.0  # when it was started (or, while it is down, when to start it again)
    restarts: int = 0
    backoff: float = 0.5


@dataclass
class Supervisor:
    argv: list[str]  # the worker command line (``serve`` and its flags, without --workers)
    count: int
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    host: str = field(default_factory=socket.gethostname)
    workers: list[Worker] = field(default_factory=list)
    stopping: bool = False

    def spawn(self, w: Worker) -> None:
        env = dict(self.env, HUB_WORKER_ID=f"{self.host}:w{w.index}", HUB_REUSE_PORT="1",
                   HUB_JOB_SHARD=f"{w.index}/{self.count}")
        w.proc = subprocess.Popen([sys.executable, "-m", "hub", *self.argv], env=env)
        w.started = time.monotonic()
        log.info("worker %d started (pid %d)", w.index, w.proc.pid)

    def run(self) -> int:
        self.workers = [Worker(i) for i in range(self.count)]
        for w in self.workers:
            self.spawn(w)

        def on_signal(signum: int, _frame: object) -> None:
            self.stopping = True

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        while not self.stopping:
            time.sleep(0.2)
            for w in self.workers:
                if w.proc is not None and w.proc.poll() is not None and not self.stopping:
                    code = w.proc.returncode
                    quick = time.monotonic() - w.started < 5
                    w.backoff = min(w.backoff * 2, 30.0) if quick else 0.5
                    log.warning("worker %d (pid %d) exited with %s; restarting in %.1fs", w.index, w.proc.pid,
                                code, w.backoff)
                    w.restarts += 1
                    w.proc = None
                    w.started = time.monotonic() + w.backoff
                if w.proc is None and time.monotonic() >= w.started and not self.stopping:
                    self.spawn(w)
        return self.shutdown()

    def shutdown(self, timeout: float = 20.0) -> int:
        live = [w.proc for w in self.workers if w.proc is not None and w.proc.poll() is None]
        for proc in live:
            proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in live:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker pid %d did not stop in %.0fs; killing it", proc.pid, timeout)
                proc.kill()
                proc.wait(5)
        return 0


def worker_argv(argv: list[str]) -> list[str]:
    """The command line minus ``--workers N`` / ``--workers=N``."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--workers":
            skip = True
            continue
        if arg.startswith("--workers="):
            continue
        out.append(arg)
    return out


async def prepare_schema(database_url: str, demo: bool = False) -> None:
    """Create the schema (and with ``--demo`` seed the demo brand) once, before the workers start:
    workers starting together would race each other's seeding."""
    from .clock import Clock
    from .db import Database
    db = Database(database_url)
    try:
        await db.create_schema()
        if demo:
            from .demo import seed_demo
            await seed_demo(db, Clock())
            os.environ[DEMO_SEEDED_ENV] = "1"  # inherited by the workers: they skip seeding
    finally:
        await db.dispose()


DEMO_SEEDED_ENV = "HUB_DEMO_SEEDED"


def supervise(argv: list[str], count: int, database_url: str) -> int:
    logging.basicConfig(level=os.environ.get("HUB_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(prepare_schema(database_url, demo="--demo" in argv))
    return Supervisor(worker_argv(argv), count).run()
