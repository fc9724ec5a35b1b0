"""The archive writer's SQLite fast path: one dedicated connection (``synchronous=FULL``), a whole
batch per transaction with prepared statements, conversation ids cached.

The inserts run in the event loop's thread (microseconds each, no lock waits: the process's
write gate is held); only ``COMMIT``, the fsync, runs in a helper thread. A thread doing the
inserts would fight the loop for the GIL on every statement, which costs far more than the work.
"""
from __future__ import annotations

import asyncio
import functools
import sqlite3
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Callable, Sequence

# a new conversation is created already touched (last message, last inbound): no session can hold it yet
CONV_INSERT = ("INSERT INTO conversations (account_id, channel, thread, peer_id, created_at, last_message_at, "
               "last_inbound_at) VALUES (?, ?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (account_id, thread, peer_id) DO NOTHING RETURNING id")
CONV_SELECT = "SELECT id FROM conversations WHERE account_id = ? AND thread = ? AND peer_id = ?"
MSG_INSERT = ("INSERT INTO messages (account_id, conversation_id, channel, direction, kind, peer_id, sender, dedup_key, "
              "text, data, raw, sent_at, created_at) VALUES {} "
              "ON CONFLICT (account_id, dedup_key) DO NOTHING RETURNING id, account_id, dedup_key")
MSG_VALUES = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
# a message whose recall came first (its delivery was retried after it) goes in recalled: the
# recall's job left its key in early_recalls (hub/archive/effects.py). The table is nearly always
# empty: a batch looks (one probe) and marks its new messages only when it is not (a subquery per
# row of the insert cost a tenth of the callbacks' throughput)
EARLY_RECALLS_ANY = "SELECT 1 FROM early_recalls LIMIT 1"
MARK_EARLY_RECALLED = ("UPDATE messages SET recalled_at = (SELECT e.recalled_at FROM early_recalls e "
                       "WHERE e.account_id = messages.account_id AND e.msg_key = messages.dedup_key) "
                       "WHERE id BETWEEN ? AND ? AND recalled_at IS NULL AND EXISTS (SELECT 1 FROM early_recalls e "
                       "WHERE e.account_id = messages.account_id AND e.msg_key = messages.dedup_key)")
JOB_INSERT = ("INSERT INTO jobs (kind, message_id, conversation_id, state, attempts, run_after) "
              "VALUES (?, ?, ?, 'pending', 0, 0.0)")
SESSION_TOUCH = ("UPDATE service_sessions SET last_customer_at = ? "
                 "WHERE conversation_id = ? AND state != 'closed'")
CONV_TOUCH = ("UPDATE conversations SET last_message_at = ?, "
              "last_inbound_at = CASE WHEN ? THEN ? ELSE last_inbound_at END WHERE id = ?")


# a statement inserts up to this many messages (13 parameters each, well inside SQLite's 32,766)
MSG_PER_STATEMENT = 256


@functools.lru_cache(maxsize=None)
def _msg_insert(n: int) -> str:
    return MSG_INSERT.format(", ".join([MSG_VALUES] * n))


@dataclass(frozen=True, slots=True)
class _Committing:
    done: asyncio.Future[None]  # the loop's view of the COMMIT
    thread: Future[None]  # the helper thread's


class SqliteBatchWriter:
    def __init__(self, path: str, cache_size: int = 200_000):
        self.path = path
        self.cache_size = cache_size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="archive-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._conv: dict[tuple[str, str, str], int] = {}

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            # this connection keeps SQLite's automatic checkpoints: they run inside its COMMIT, in the
            # helper thread, and a writer's own checkpoint is what lets the log start over under a
            # steady stream of writes (hub/wal_checkpoint.py)
            for pragma in ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000", "foreign_keys=ON"):
                conn.execute(f"PRAGMA {pragma}")
            self._conn = conn
        return self._conn

    async def write(self, rows: Sequence[dict[str, Any]], now: float,
                    durable: Callable[[list[tuple[int | None, int]]], None] | None = None
                    ) -> list[tuple[int | None, int]]:
        """rows: message columns plus "thread" and "job"; returns (message id or None, conversation id).
        ``durable`` gets those results as soon as the commit is back, in the loop's turn that learns
        of it (see ``_commit``). The caller holds the database's write gate."""
        rows = list(rows)
        conn = self._connect()
        committing: _Committing | None = None
        try:
            try:
                results = self._insert(conn, rows, now)
            except sqlite3.IntegrityError:
                self._conv.clear()  # a cached conversation was deleted (erasure, retention): look them up again
                results = self._insert(conn, rows, now)
            committing = self._commit(conn, results, durable)
            await committing.done
        except BaseException:
            if committing is not None and not committing.thread.cancel():
                wait([committing.thread])  # stopped while the thread commits: it finishes first (the
                # connection is not to be used by two threads at once); one not begun is called off
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            # the conversations this batch created went with it, and SQLite hands their ids out again:
            # kept in the cache, they filed this customer's next messages under the next new customer
            self._conv.clear()
            raise
        return results

    def _commit(self, conn: sqlite3.Connection, results: list[tuple[int | None, int]],
                durable: Callable[[list[tuple[int | None, int]]], None] | None) -> "_Committing":
        """COMMIT in the helper thread; ``done`` once it is. The thread hands the outcome
        straight to the loop, where ``durable`` runs first: the callbacks of this batch can answer in
        the loop's next turn, before the writer's next batch is inserted. (``run_in_executor`` takes
        two turns to wake the writer, which then inserted the next batch before the answers went
        out: about 2 ms between the fsync and the answers under a flood of callbacks, as long as the
        fsync itself, and the platforms' connections wait that long for their next request.)"""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def on_loop(exc: BaseException | None) -> None:
            try:
                if exc is None and durable is not None:  # (also when the writer was stopped meanwhile:
                    durable(results)  # the batch is stored, and its waiters hear so, not "a duplicate")
            finally:
                if not done.cancelled():
                    if exc is not None:
                        done.set_exception(exc)
                    else:
                        done.set_result(None)

        def in_thread() -> None:
            outcome: BaseException | None = None
            try:
                conn.execute("COMMIT")
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, which raises it in write()
                outcome = exc
            try:
                loop.call_soon_threadsafe(on_loop, outcome)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass
        return _Committing(done, self._pool.submit(in_thread))

    def _insert(self, conn: sqlite3.Connection, rows: list[dict[str, Any]], now: float) -> list[tuple[int | None, int]]:
        """Everything but the commit; rolls back and re-raises on an error."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            conv_ids, fresh = self._conversations(conn, rows, now)
            convs = [conv_ids[(r["account_id"], r["thread"], r["peer_id"])] for r in rows]
            results: list[tuple[int | None, int]] = []
            jobs, touched = [], {}
            for r, conv, mid in zip(rows, convs, self._messages(conn, rows, convs, now)):
                results.append((mid, conv))
                if mid is not None:
                    if r["job"]:
                        jobs.append((r["job"], mid, conv))
                    if conv not in fresh:
                        inbound = r["direction"] == "in" and r["sender"] == "customer"
                        touched[conv] = touched.get(conv, False) or inbound
            new_ids = [mid for mid, _conv in results if mid is not None]
            if new_ids and conn.execute(EARLY_RECALLS_ANY).fetchone() is not None:
                conn.execute(MARK_EARLY_RECALLED, (min(new_ids), max(new_ids)))
            if jobs:
                conn.executemany(JOB_INSERT, jobs)
            if touched:
                conn.executemany(CONV_TOUCH, [(now, inbound, now, conv) for conv, inbound in touched.items()])
                conn.executemany(SESSION_TOUCH, [(now, conv) for conv, inbound in touched.items() if inbound])
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return results

    def _messages(self, conn: sqlite3.Connection, rows: list[dict[str, Any]], convs: list[int],
                  now: float) -> list[int | None]:
        """Insert the messages in arrival order, in statements of up to ``MSG_PER_STATEMENT`` rows; the
        new id of each row, or None for a duplicate (of an earlier batch, or of an earlier row here)."""
        new: dict[tuple[str, str], int] = {}
        for start in range(0, len(rows), MSG_PER_STATEMENT):
            part = rows[start:start + MSG_PER_STATEMENT]
            params = [value for r, conv in zip(part, convs[start:start + MSG_PER_STATEMENT]) for value in (
                r["account_id"], conv, r["channel"], r["direction"], r["kind"], r["peer_id"], r["sender"],
                r["dedup_key"], r["text"], r["data"], r["raw"], r["sent_at"], now)]
            for mid, account, key in conn.execute(_msg_insert(len(part)), params):
                new[(account, key)] = mid
        # the first row with a key is the one that went in: a later row with the same key is a retry
        return [new.pop((r["account_id"], r["dedup_key"]), None) for r in rows]

    def _conversations(self, conn: sqlite3.Connection, rows: list[dict[str, Any]],
                       now: float) -> tuple[dict[tuple[str, str, str], int], set[int]]:
        """Conversation ids by key, and the ids created by this batch (created touched)."""
        out: dict[tuple[str, str, str], int] = {}
        missing: dict[tuple[str, str, str], list[Any]] = {}  # key -> [channel, a customer wrote]
        for r in rows:
            key = (r["account_id"], r["thread"], r["peer_id"])
            cached = self._conv.get(key)
            if cached is not None:
                out[key] = cached
                continue
            inbound = r["direction"] == "in" and r["sender"] == "customer"
            seen = missing.get(key)
            if seen is None:
                missing[key] = [r["channel"], inbound]
            elif inbound:
                seen[1] = True
        fresh: set[int] = set()
        if missing:
            if len(self._conv) + len(missing) > self.cache_size:
                self._conv.clear()
            for key, (channel, inbound) in missing.items():
                a, t, p = key
                got = conn.execute(CONV_INSERT, (a, channel, t, p, now, now, now if inbound else None)).fetchone()
                if got is not None:
                    fresh.add(got[0])
                else:  # known before, but not to this cache (a restart, an evicted entry)
                    got = conn.execute(CONV_SELECT, key).fetchone()
                out[key] = self._conv[key] = got[0]
        return out, fresh

    def forget_conversations(self) -> None:
        """Drop the cached ids (after deleting conversations)."""
        self._conv.clear()

    async def close(self) -> None:
        def close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        await asyncio.get_running_loop().run_in_executor(self._pool, close)
        self._pool.shutdown(wait=True)
