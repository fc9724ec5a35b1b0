"""SQLite WAL checkpoints in a thread of their own, off the paths that wait on them.

By default the connection whose commit pushes the write-ahead log past 1,000 pages runs the
checkpoint inside that commit: copying the pages back into the database file and syncing it. In the
hub that was either the archive writer (every callback of that batch waited for the copy) or a
pipeline transaction in the event loop's thread (the whole loop waited). While it runs, the hub's
connections set ``wal_autocheckpoint=0`` (hub/db.py, hub/archive/sqlite_batch.py) and this thread checkpoints every
``interval`` seconds instead (PASSIVE: it never blocks a writer or a reader; the log restarts from its
beginning once a checkpoint has caught up). Should readers keep the log from ever restarting, a
TRUNCATE checkpoint past ``max_frames`` bounds its size. A command-line run that has no checkpointer
loses nothing by it: closing the last connection checkpoints the log.
"""
from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)


class WalCheckpointer:
    def __init__(self, path: str, interval: float = 0.25, max_frames: int = 100_000):
        self.path = path
        self.interval = interval
        self.max_frames = max_frames  # 4 KiB pages: about 400 MB of log
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
        if logged > self.max_frames and done >= logged:
            busy, logged, done = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        self.checkpoints += 1
        self.frames += max(done, 0)
        return busy, logged, done
