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
"""
from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)


class WalCheckpointer:
    def __init__(self, path: str, interval: float = 0.25):
        self.path = path
        self.interval = interval
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
        return busy, logged, done
