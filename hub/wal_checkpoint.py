"""SQLite WAL checkpoints off the event loop's thread.

By default the connection whose commit pushes the write-ahead log past 1,000 pages runs the
checkpoint inside that commit: copying the pages back into the database file and syncing it. For a
commit in the event loop's thread (pipeline, outbound, agents' replies) the whole loop waited. While
this checkpointer runs, those connections set ``wal_autocheckpoint=0`` (hub/db.py) and their log is
checkpointed here, PASSIVE (never blocking a writer or a reader), every ``interval`` seconds. The
archive writer's own connection keeps its automatic checkpoints: they run in its commit thread, off
the loop, and a writer checkpointing right after its own commit is what lets the log start over from
its beginning under a steady stream of writes (a checkpoint racing the writers from outside never
catches up with them, and the log grew without end). A command-line run has no checkpointer and
needs none: closing the last connection checkpoints the log.

That was not enough under a flood of callbacks (bench/callbacks.py, 5-7k/s): every page copied back,
yet the log never started over, and it grew past 1 GB in 40 s (a bigger log makes every page
lookup slower, takes that much disk, and must be read back after a crash). So once a PASSIVE pass
has copied back a log of ``restart_frames`` or more, the thread asks for a TRUNCATE checkpoint with
a short busy timeout (``restart_wait``): it waits that long at most for the readers to leave the
log, holding new writers back meanwhile, then empties the log file; if it cannot, it tries at a
later tick. In that bench (2 alternating pairs of full runs) the log then peaked at 21-29 MB against
135-146 MB, and the hub made 6,682 and 6,546 callbacks/s against 6,177 and 5,761.
"""
from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)


class WalCheckpointer:
    def __init__(self, path: str, interval: float = 0.25, restart_frames: int = 4096, restart_wait: float = 0.01):
        self.path = path
        self.interval = interval
        self.restart_frames = restart_frames  # a copied-back log this long (4 KB pages: 16 MB) is emptied
        self.restart_wait = restart_wait  # seconds a TRUNCATE may hold new writers back
        self.restarts = 0  # logs emptied
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0
        self.frames = 0  # pages copied back so far

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def _run(self) -> None:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA wal_autocheckpoint=0")
            while not self._stop.wait(self.interval):
                try:
                    self.run_once(conn)
                except sqlite3.Error as exc:  # a busy database or a full disk: try again at the next tick
                    log.warning("WAL checkpoint failed: %s", exc)
        finally:
            conn.close()

    def run_once(self, conn: sqlite3.Connection) -> tuple[int, int, int]:
        """One checkpoint; returns SQLite's (busy, frames in the log, frames checkpointed)."""
        busy, logged, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        self.frames += max(done, 0)
        if not busy and logged >= self.restart_frames and done == logged:
            self._restart(conn)
        return busy, logged, done

    def _restart(self, conn: sqlite3.Connection) -> None:
        """Empty a fully copied-back log (TRUNCATE), waiting at most ``restart_wait`` for readers."""
        conn.execute(f"PRAGMA busy_timeout={max(1, int(self.restart_wait * 1000))}")
        try:
            busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            conn.execute("PRAGMA busy_timeout=30000")
        if not busy:
            self.restarts += 1
