"""A supervisor's session list on a busy day: every open session with its unread count.

The list (``SessionService.list_for``, hub/service/reading.py) counts each session's unread messages
in its one query. The reference is the list as it was: the sessions read, then one or two queries
per session (the end of the conversation's previous session, then the count). Both run side by side,
alternating, on the same database, and must give the same counts.

The scenario: ``--sessions`` open sessions, each in its own conversation with ``--messages`` customer
messages; half answered by an agent part way (unread counts from the answer), a third with an earlier,
closed session (a returning customer: unread counts from its end).

Prints a line per run, then one JSON line: the median milliseconds of one list both ways and the ratio.

    python bench/session_list.py                 # 2,000 sessions x 10 messages, 15 runs each, SQLite
    python bench/session_list.py --quick         # 500 sessions, 7 runs each
    python bench/session_list.py --db postgresql+asyncpg://postgres@127.0.0.1:5432/test
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select, text  # noqa: E402

from hub.db import Database  # noqa: E402
from hub.models import Conversation, Message, ServiceSession  # noqa: E402
from hub.models.archive import Account  # noqa: E402
from hub.service.reading import OPEN, SessionReading  # noqa: E402
from hub.users import UserInfo  # noqa: E402

sessions_t, conversations, messages = ServiceSession.__table__, Conversation.__table__, Message.__table__
SUPERVISOR = UserInfo(1, "sam", "Sam", "supervisor", (), 0)
T0 = 1_733_000_000.0


class Lister(SessionReading):
    def __init__(self, db: Database):
        self.db, self.profile = db, None


async def per_session_list(db: Database) -> dict[int, int]:
    """The list as it was: the sessions, then each one's unread count by a query or two of its own."""
    async with db.read() as conn:
        rows = (await conn.execute(select(sessions_t).where(sessions_t.c.state.in_(OPEN))
                                   .order_by(sessions_t.c.id))).all()
    out = {}
    for row in rows:
        async with db.read() as conn:
            since = row.last_agent_at
            if since is None:
                since = (await conn.execute(select(func.max(sessions_t.c.closed_at)).where(
                    (sessions_t.c.conversation_id == row.conversation_id) & (sessions_t.c.id != row.id)))).scalar()
            out[row.id] = (await conn.execute(select(func.count()).select_from(messages).where(
                (messages.c.conversation_id == row.conversation_id) & (messages.c.direction == "in")
                & (messages.c.sender == "customer") & (messages.c.created_at > (since or 0))))).scalar() or 0
    return out


async def fill(db: Database, n: int, per: int) -> None:
    conv_rows = [{"account_id": "bench", "channel": "wecom", "thread": "", "peer_id": f"wm{i}", "created_at": T0}
                 for i in range(n)]
    async with db.write() as conn:
        await conn.execute(insert(Account.__table__).values(
            id="bench", platform="wecom", token="t", encoding_aes_key="k" * 43, receive_id="r", created_at=T0,
            updated_at=T0))
        await conn.execute(insert(conversations), conv_rows)
        ids = (await conn.execute(select(conversations.c.id).order_by(conversations.c.id))).scalars().all()
        msgs, sess = [], []
        for i, cid in enumerate(ids):
            for k in range(per):
                msgs.append({"account_id": "bench", "conversation_id": cid, "channel": "wecom", "direction": "in",
                             "kind": "text", "peer_id": f"wm{i}", "sender": "customer", "dedup_key": f"m:{cid}:{k}",
                             "text": "在吗", "data": "{}", "raw": "", "sent_at": T0 + k * 10, "created_at": T0 + k * 10})
            base = {"conversation_id": cid, "account_id": "bench", "group": "presales", "agent_id": 2,
                    "created_at": T0, "handover_at": T0, "last_agent_at": None, "closed_at": None}
            if i % 3 == 0:  # a returning customer: an earlier session closed part way
                sess.append({**base, "state": "closed", "closed_at": T0 + per * 3})
            sess.append({**base, "state": "active", "last_agent_at": T0 + per * 5 if i % 2 == 0 else None})
        for start in range(0, len(msgs), 5000):
            await conn.execute(insert(messages), msgs[start:start + 5000])
        await conn.execute(insert(sessions_t), sess)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--sessions", type=int)
    ap.add_argument("--messages", type=int, default=10)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file); PostgreSQL gets a schema of its own")
    args = ap.parse_args()
    n = args.sessions or (500 if args.quick else 2000)
    runs = args.runs or (7 if args.quick else 15)
    tmp = tempfile.TemporaryDirectory(prefix="bench-list-")
    schema = None
    url = args.db or f"sqlite+aiosqlite:///{tmp.name}/hub.db"
    if url.startswith("postgresql"):
        schema = "bench_" + uuid.uuid4().hex[:10]
        admin = Database(url)
        async with admin.write() as conn:
            await conn.execute(text(f"CREATE SCHEMA {schema}"))
        await admin.dispose()
        url += ("&" if "?" in url else "?") + f"schema={schema}"
    db = Database(url)
    try:
        await db.create_schema()
        started = time.perf_counter()
        await fill(db, n, args.messages)
        print(f"{n} open sessions x {args.messages} messages in {time.perf_counter() - started:.1f} s ({db.dialect})")
        lister = Lister(db)
        one: list[float] = []
        each: list[float] = []
        for r in range(runs):
            t = time.perf_counter()
            listed = await lister.list_for(SUPERVISOR)
            one.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            reference = await per_session_list(db)
            each.append((time.perf_counter() - t) * 1000)
            got = {s["id"]: s["unread"] for s in listed}
            if got != reference:
                raise SystemExit(f"the counts differ: {sorted(set(got.items()) ^ set(reference.items()))[:5]}")
            print(f"run {r + 1}: one query {one[-1]:.1f} ms, a query per session {each[-1]:.1f} ms")
        report: dict[str, Any] = {
            "sessions": n, "messages_per_session": args.messages, "database": db.dialect,
            "list_ms": round(statistics.median(one), 2), "per_session_list_ms": round(statistics.median(each), 2),
            "speedup": round(statistics.median(each) / statistics.median(one), 2), "runs": runs,
            "unread_total": sum(got.values()), "quick": args.quick}
    finally:
        await db.dispose()
        if schema:
            admin = Database(args.db)
            async with admin.write() as conn:
                await conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
            await admin.dispose()
        tmp.cleanup()
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
