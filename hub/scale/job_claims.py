"""How several hub processes (PostgreSQL) share the pipeline's job queue: the two statements of a
claim, run in one transaction by ``Pipeline`` (hub/scale/pipeline_claims.py). SQL only, no I/O.

First the head of the queue (pending jobs, and claimed ones whose lease ran out: their process
died), each conversation's jobs up to one waiting for its retry and none another process runs now
(as far as this snapshot shows), and a lock on up to :room of those conversations, in queue order,
skipping any another process holds at that moment: two processes reading the same head take
different conversations instead of racing for the same ones. The lock's namespace is the schema's
(LOCK_CLASS): one database may hold several hubs' schemas (the PostgreSQL tests' two workers do),
whose conversation ids are the same small numbers; under one namespace for all, a claim of another
hub's conversation 1 made this one skip its own for that pass, and a drain() then returned with its
job still pending (a flaky test: no session after the drain). (OFFSET 0 keeps the subquery whole:
flattened, the lock was tried on every conversation of the head before the sort and the limit, and
held them all until the commit.) Its first row only carries the head's length (the backlog).

With shards (hub/scale/job_shard.py) the head is this process's part of the queue: it leaves out
the conversations of another shard whose process is alive (holds its advisory lock: a shared
try of it fails; one that succeeds holds a dead shard until the commit, which its restarted process
then takes a few seconds later), in the index scan itself, so a head full of another's backlog never hides
this process's own jobs behind it. Its length is then this process's part of the backlog.

Then, under those locks and with a fresh snapshot, the claim itself: ``pending -> claimed`` with
``run_after`` = the lease's end, only where no other live claim exists for the conversation,
returning the claimed jobs with their messages. This process's own finished jobs (done, their
deletion not yet committed: :finished) hold nothing back: it goes on with those conversations at once.

Both statements read the conversations with a live claim once (a hashed subplan). Written as a
per-row NOT EXISTS, that was a scan of every claimed job, finished ones not yet vacuumed included,
for each row of the head: the largest read PostgreSQL did for the hub (15 index scans per job and
1,150 rows read per callback in bench/scale.py, against 165 since).
"""
from __future__ import annotations

from dataclasses import dataclass

from typing import Any, Iterable

from sqlalchemy import BigInteger, all_, any_, bindparam, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY

from ..models import Job, Message
from .job_shard import SHARD_SPAN

jobs = Job.__table__
messages = Message.__table__
JOB_COLUMNS = (jobs.c.id, jobs.c.kind, jobs.c.message_id, jobs.c.conversation_id, jobs.c.attempts, jobs.c.run_after)
# pg advisory lock namespace of per-conversation job claims: one per schema (hub/scale/job_shard.py's
# lock_class is too), as hubs on other schemas of the database have conversations of the same ids
LOCK_CLASS = "hashtext('scrm-hub job claims ' || current_schema())"
# a conversation of this process's shard, or of a shard no live process holds (hub/scale/job_shard.py)
_OURS = ("(CAST(:shard_count AS bigint) = 1 OR conversation_id % CAST(:shard_count AS bigint) = CAST(:shard_index AS bigint)"
         " OR conversation_id % CAST(:shard_count AS bigint) NOT IN (SELECT shard FROM alive))")
CLAIM_HEAD_SQL = text(f"""
WITH alive AS MATERIALIZED (  -- the other shards whose process holds its lock: a shared try fails on them
    SELECT s AS shard FROM generate_series(0, CAST(:shard_count AS bigint) - 1) s
    WHERE CAST(:shard_count AS bigint) > 1 AND s <> CAST(:shard_index AS bigint)
      AND NOT pg_try_advisory_xact_lock_shared(CAST(:shard_class AS integer),
                                               CAST(CAST(:shard_count AS bigint) * {SHARD_SPAN} + s AS integer))
), head AS (  -- two index range scans (ix_jobs_state), not a scan and sort of the whole queue
    SELECT * FROM (
        (SELECT id, conversation_id, state, run_after FROM jobs WHERE state = 'pending' AND {_OURS}
         ORDER BY id LIMIT :limit)
        UNION ALL
        (SELECT id, conversation_id, state, run_after FROM jobs WHERE state = 'claimed' AND run_after < :now
         AND {_OURS} ORDER BY id LIMIT :limit)
    ) u ORDER BY id LIMIT :limit
), live AS MATERIALIZED (  -- conversations another claim runs now: read once, not once per head row
    SELECT DISTINCT conversation_id FROM jobs
    WHERE state = 'claimed' AND run_after >= :now AND id <> ALL(CAST(:finished AS bigint[]))
), flagged AS (
    SELECT id, conversation_id,
           bool_or(state = 'pending' AND run_after > :now) OVER (PARTITION BY conversation_id ORDER BY id) AS blocked
    FROM head h WHERE conversation_id <> ALL(CAST(:busy AS bigint[]))
      AND conversation_id NOT IN (SELECT conversation_id FROM live)
), convs AS (
    SELECT conversation_id, min(id) AS first FROM flagged WHERE NOT blocked GROUP BY conversation_id
), locked AS (
    SELECT conversation_id FROM (SELECT conversation_id, first FROM convs ORDER BY first OFFSET 0) c
    WHERE pg_try_advisory_xact_lock({LOCK_CLASS}, CAST(conversation_id % 2147483647 AS integer))
    LIMIT :room
)
SELECT NULL AS id, NULL AS conversation_id, (SELECT count(*) FROM head) AS head_rows
UNION ALL
(SELECT f.id, f.conversation_id, NULL FROM flagged f JOIN locked l ON l.conversation_id = f.conversation_id
 WHERE NOT f.blocked ORDER BY f.id)
""")
_other = jobs.alias("o")
IDS = ARRAY(BigInteger)


def ids_in(column: Any, ids: Iterable[int], dialect: str) -> Any:
    """``column IN ids``; on PostgreSQL ``= ANY(array)``, one statement whatever the count. An IN
    list is a new statement per length there: each is prepared anew on every connection and pushes
    the hub's steady statements out of the connection's cache of prepared statements."""
    ids = list(ids)
    return column == any_(bindparam(None, ids, type_=IDS)) if dialect == "postgresql" else column.in_(ids)


_CLAIMED = (update(jobs).where(jobs.c.id == any_(bindparam("ids", type_=IDS)))
            .where(((jobs.c.state == "pending") & (jobs.c.run_after <= bindparam("now")))
                   | ((jobs.c.state == "claimed") & (jobs.c.run_after < bindparam("now"))))
            .where(jobs.c.conversation_id.not_in(  # the live claims read once (one hashed subplan), as in the head
                select(_other.c.conversation_id).where(_other.c.state == "claimed", _other.c.run_after >= bindparam("now"),
                                                       _other.c.id != all_(bindparam("finished", type_=IDS)))))
            .values(state="claimed", run_after=bindparam("lease"))
            .returning(*(c.label(f"job_{c.name}") for c in JOB_COLUMNS)).cte("claimed"))
CLAIM_SQL = (select(_CLAIMED, messages).join_from(_CLAIMED, messages, messages.c.id == _CLAIMED.c.job_message_id,
                                                   isouter=True).order_by(_CLAIMED.c.job_id))


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job row claimed together with its message (shared mode): the fields handlers read."""

    id: int
    kind: str
    message_id: int
    conversation_id: int
    attempts: int
    run_after: float

