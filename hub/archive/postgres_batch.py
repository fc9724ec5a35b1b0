"""The archive writer's PostgreSQL fast path: a whole batch in one statement, conversation ids cached.

A batch used to be seven statements (conversations, their ids, messages, jobs, two touches), each a
round trip the writer waited for and a statement PostgreSQL parsed and planned; with several
processes each writer's batches are smaller, so that fixed cost per batch was paid per few messages.
Now known conversations come from a cache (only a batch with a new one inserts and reads it), and
``BATCH_SQL`` does the rest from arrays, one round trip: messages (duplicates skipped), a job for
each new message, and the touch of its conversation and open session. It runs as a transaction of
its own (``Database.durable_statements``), so no BEGIN, SET LOCAL or COMMIT waits beside it.

Lock order, so writers of several processes never deadlock: messages in (account, dedup_key)
order (their ids still follow arrival: taken from the sequence first, in the batch's order), conversations locked in id order before they are touched (sessions only under them).
"""
from __future__ import annotations

from typing import Any, Sequence

from asyncpg.exceptions import IntegrityConstraintViolationError
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from ..db_raw import fetch_raw, positional

BATCH_SQL = text("""
WITH input AS (
    SELECT * FROM unnest(CAST(:account_id AS text[]), CAST(:conversation_id AS bigint[]), CAST(:channel AS text[]),
                         CAST(:direction AS text[]), CAST(:kind AS text[]), CAST(:peer_id AS text[]),
                         CAST(:sender AS text[]), CAST(:dedup_key AS text[]), CAST(:text AS text[]),
                         CAST(:data AS text[]), CAST(:raw AS text[]), CAST(:sent_at AS bigint[]),
                         CAST(:job AS text[]), CAST(:inbound AS boolean[]))
        WITH ORDINALITY AS i(account_id, conversation_id, channel, direction, kind, peer_id, sender, dedup_key,
                             text, data, raw, sent_at, job, inbound, ord)
), numbered AS (  -- ids in arrival order (the console shows a conversation in id order), taken before
                  -- the insert, which goes in key order for its locks
    SELECT o.*, nextval(pg_get_serial_sequence('messages', 'id')) AS id
    FROM (SELECT * FROM input ORDER BY ord) o
), ins AS (
    INSERT INTO messages (id, account_id, conversation_id, channel, direction, kind, peer_id, sender, dedup_key,
                          text, data, raw, sent_at, created_at, recalled_at)
    SELECT id, account_id, conversation_id, channel, direction, kind, peer_id, sender, dedup_key, text, data, raw,
           sent_at, :now,
           -- its recall came first (effects.py); the table is nearly always empty: looked at once
           CASE WHEN (SELECT EXISTS (SELECT 1 FROM early_recalls)) THEN (
               SELECT e.recalled_at FROM early_recalls e WHERE e.account_id = n.account_id AND e.msg_key = n.dedup_key)
           END
    FROM numbered n ORDER BY account_id, dedup_key, ord
    ON CONFLICT (account_id, dedup_key) DO NOTHING
    RETURNING id, account_id, dedup_key, conversation_id
), firsts AS (  -- a key twice in one batch is one message: it belongs to the first of them
    SELECT DISTINCT ON (ins.id) ins.id, ins.conversation_id, i.job, i.inbound, i.ord
    FROM ins JOIN input i ON i.account_id = ins.account_id AND i.dedup_key = ins.dedup_key
    ORDER BY ins.id, i.ord
), new_jobs AS (
    INSERT INTO jobs (kind, message_id, conversation_id, state, attempts, run_after)
    SELECT job, id, conversation_id, 'pending', 0, 0.0 FROM firsts WHERE job IS NOT NULL ORDER BY ord  -- as received
), touched AS (
    SELECT conversation_id, bool_or(inbound) AS inbound FROM firsts GROUP BY conversation_id
), locked AS (
    SELECT c.id FROM conversations c WHERE c.id IN (SELECT conversation_id FROM touched) ORDER BY c.id FOR UPDATE
), conversation_touch AS (
    UPDATE conversations c SET last_message_at = :now,
           last_inbound_at = CASE WHEN t.inbound THEN :now ELSE c.last_inbound_at END
    FROM touched t WHERE c.id = t.conversation_id AND c.id IN (SELECT id FROM locked)
    RETURNING c.id
), session_touch AS (  -- the open session's "customer waiting since"
    UPDATE service_sessions s SET last_customer_at = :now
    FROM touched t WHERE s.conversation_id = t.conversation_id AND t.inbound AND s.state <> 'closed'
      AND s.conversation_id IN (SELECT id FROM conversation_touch)
)
SELECT ord, id FROM firsts
""")


# new conversations created (in key order) and the ids of all asked for, in one round trip: the
# SELECT's snapshot does not see what this statement inserts, so the two halves do not overlap; a
# conversation another process inserted after the snapshot is in neither (asked again). The lookup is
# an index probe per key (LATERAL, OFFSET 0 keeps it apart): as a join of the keys with conversations
# it was planned as a hash join over a scan of the whole table, 150 rows read per callback with two
# processes in bench/scale.py (each process learns every conversation once) against 4 with one
CONVERSATIONS_SQL = text("""
WITH k AS (
    SELECT * FROM unnest(CAST(:account_id AS text[]), CAST(:thread AS text[]), CAST(:peer_id AS text[]),
                         CAST(:channel AS text[])) AS k(account_id, thread, peer_id, channel)
), ins AS (
    INSERT INTO conversations (account_id, channel, thread, peer_id, created_at)
    SELECT account_id, channel, thread, peer_id, :now FROM k ORDER BY account_id, thread, peer_id
    ON CONFLICT (account_id, thread, peer_id) DO NOTHING
    RETURNING id, account_id, thread, peer_id
)
SELECT id, account_id, thread, peer_id FROM ins
UNION ALL
SELECT c.id, c.account_id, c.thread, c.peer_id FROM k CROSS JOIN LATERAL (
    SELECT id, account_id, thread, peer_id FROM conversations
    WHERE account_id = k.account_id AND thread = k.thread AND peer_id = k.peer_id OFFSET 0) c
""")


# after the batch's commit, in a statement of its own: a recall whose key came into early_recalls while
# the batch ran (its statement's snapshot did not see it, and the recall's own look did not see the
# uncommitted message) marks the message now. The recall commits its key before its last look
# (effects.py), so one of the two sees the other (the message stayed unmarked in about 1 of 5 such races).
# The look reads early_recalls alone (nearly always empty) for the batch's keys; only a hit updates its
# message, by id. (Written as an UPDATE of messages joined with early_recalls, the generic plan cached
# while the archive was small scanned the whole messages table at every batch: 550 rows read per
# callback in bench/scale.py, and growing with the archive.)
EARLY_RECALL_HITS_SQL = text("""
SELECT k.id, e.recalled_at
FROM unnest(CAST(:ids AS bigint[]), CAST(:account_id AS text[]), CAST(:dedup_key AS text[])) AS k(id, account_id, dedup_key)
JOIN early_recalls e ON e.account_id = k.account_id AND e.msg_key = k.dedup_key
""")
MARK_RECALLED_SQL = text("""
UPDATE messages m SET recalled_at = u.recalled_at
FROM unnest(CAST(:ids AS bigint[]), CAST(:recalled_at AS double precision[])) AS u(id, recalled_at)
WHERE m.id = u.id AND m.recalled_at IS NULL
""")


BATCH_COLUMNS = ("account_id", "conversation_id", "channel", "direction", "kind", "peer_id", "sender", "dedup_key",
                 "text", "data", "raw", "sent_at", "job", "inbound")
# the two statements of every batch run on the driver's connection itself: through SQLAlchemy's
# execution (parameters, greenlet hand-offs, result set-up) they cost about 0.6 ms of the process's
# CPU per batch, paid per few messages when several processes share the callbacks
BATCH_PG = positional(BATCH_SQL, (*BATCH_COLUMNS, "now"))
EARLY_RECALL_HITS_PG = positional(EARLY_RECALL_HITS_SQL, ("ids", "account_id", "dedup_key"))


class PostgresBatchWriter:
    def __init__(self, cache_size: int = 200_000):
        self.cache_size = cache_size
        self._conv: dict[tuple[str, str, str], int] = {}

    async def write(self, db: Any, rows: Sequence[dict[str, Any]], now: float) -> list[tuple[int | None, int]]:
        """rows: message columns plus "thread" and "job"; returns (message id or None, conversation id)
        per row, once committed durably. A conversation deleted behind the cache (erasure, retention,
        another process) fails the batch on its foreign key: it runs again with the cache emptied."""
        try:
            return await self._write(db, rows, now)
        except (IntegrityError, IntegrityConstraintViolationError) as exc:
            if "conversation" not in str(exc).lower():
                raise
            self._conv.clear()
            return await self._write(db, rows, now)

    async def _write(self, db: Any, rows: Sequence[dict[str, Any]], now: float) -> list[tuple[int | None, int]]:
        # each statement commits by itself, on disk before the answer; BATCH_SQL, the one that
        # matters, is the whole batch (new conversations committed before it are harmless alone:
        # the batch's retry finds them)
        async with db.durable_statements() as conn:
            return await self._batch(conn, rows, now)

    async def _batch(self, conn: Any, rows: Sequence[dict[str, Any]], now: float) -> list[tuple[int | None, int]]:
        conv_ids = await self._conversations(conn, rows, now)
        cols: dict[str, list[Any]] = {k: [] for k in BATCH_COLUMNS}
        for r, conv in zip(rows, conv_ids):
            for k in ("account_id", "channel", "direction", "kind", "peer_id", "sender", "dedup_key", "text", "data",
                      "raw", "sent_at", "job"):
                cols[k].append(r[k])
            cols["conversation_id"].append(conv)
            cols["inbound"].append(r["direction"] == "in" and r["sender"] == "customer")
        new = {ord_ - 1: mid for ord_, mid in await fetch_raw(conn, BATCH_PG, *(cols[k] for k in BATCH_COLUMNS), now)}
        recallable = [i for i in new if cols["dedup_key"][i].startswith("m:")]
        if recallable:
            hits = await fetch_raw(conn, EARLY_RECALL_HITS_PG, [new[i] for i in recallable],
                                   [cols["account_id"][i] for i in recallable],
                                   [cols["dedup_key"][i] for i in recallable])
            if hits:
                await conn.execute(MARK_RECALLED_SQL, {"ids": [mid for mid, _at in hits],
                                                       "recalled_at": [at for _mid, at in hits]})
        return [(new.get(i), conv) for i, conv in enumerate(conv_ids)]

    async def _conversations(self, conn: Any, rows: Sequence[dict[str, Any]], now: float) -> list[int]:
        """Each row's conversation id: from the cache, else created (touched with the batch) or read."""
        known: dict[tuple[str, str, str], int] = {}
        missing: dict[tuple[str, str, str], dict[str, Any]] = {}
        for r in rows:
            key = (r["account_id"], r["thread"], r["peer_id"])
            if key in self._conv:
                known[key] = self._conv[key]
            elif key not in missing:
                missing[key] = r
        if missing:
            if len(self._conv) + len(missing) > self.cache_size:
                self._conv.clear()
            keys = sorted(missing)  # one lock order in every process (no deadlock)
            for _ in range(2):  # again for any that another process inserted during the first
                params = {"account_id": [a for a, _t, _p in keys], "thread": [t for _a, t, _p in keys],
                          "peer_id": [p for _a, _t, p in keys], "channel": [missing[k]["channel"] for k in keys],
                          "now": now}
                for row in await conn.execute(CONVERSATIONS_SQL, params):
                    key = (row.account_id, row.thread, row.peer_id)
                    known[key] = self._conv[key] = row.id
                keys = [k for k in keys if k not in known]
                if not keys:
                    break
            else:
                raise LookupError(f"{len(keys)} conversations neither created nor found")
        return [known[(r["account_id"], r["thread"], r["peer_id"])] for r in rows]

    def forget_conversations(self) -> None:
        """Drop the cached ids (after deleting conversations)."""
        self._conv.clear()
