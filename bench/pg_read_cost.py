"""CPU of one short read on PostgreSQL, by the way it runs (side by side, in one process, uvloop).

The statement is the open-session lookup each customer message makes (hub/service/sessions.py),
on a real schema in a schema of its own (dropped after):

* ``pooled``: a connection checked out of SQLAlchemy's pool and back for the read, SQLAlchemy's
  execution (what ``Database.read()`` did before hub/db_kept.py);
* ``kept``: ``Database.read()`` today: a kept connection, SQLAlchemy's execution;
* ``kept_raw``: ``Database.read()`` and the statement on the asyncpg connection (hub/db_raw.py),
  as the session lookups run now;
* ``asyncpg``: the statement on a bare asyncpg connection (the floor).

Rounds alternate the four ways; the figure of each is the median over rounds of the process's CPU
time per read.

    python bench/pg_read_cost.py            # 7 rounds of 3,000 reads per way
    python bench/pg_read_cost.py --quick    # 3 rounds of 1,000
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asyncpg  # noqa: E402

from hub.db import Database  # noqa: E402
from hub.event_loop import new_event_loop  # noqa: E402
from hub.service.sessions import OPEN_SESSION_PG, OPEN_SESSION_Q  # noqa: E402

PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


async def measure(url: str, rounds: int, reads: int) -> dict[str, float]:
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    schema = "bench_read_" + uuid.uuid4().hex[:8]
    admin = await asyncpg.connect(dsn)
    await admin.execute(f"CREATE SCHEMA {schema}")
    db = Database(f"{url}?schema={schema}")
    bare = None
    try:
        await db.create_schema()
        bare = await asyncpg.connect(dsn, server_settings={"search_path": schema})

        async def pooled() -> None:
            async with db._read_engine.connect() as conn:
                (await conn.execute(OPEN_SESSION_Q, {"cid": 1})).first()

        async def kept() -> None:
            async with db.read() as conn:
                (await conn.execute(OPEN_SESSION_Q, {"cid": 1})).first()

        async def kept_raw() -> None:
            async with db.read() as conn:
                await OPEN_SESSION_PG.first(conn, cid=1)

        async def floor() -> None:
            await bare.fetch(OPEN_SESSION_PG.sql, 1)

        ways = {"pooled": pooled, "kept": kept, "kept_raw": kept_raw, "asyncpg": floor}
        per: dict[str, list[float]] = {k: [] for k in ways}
        for fn in ways.values():  # warm: connections opened, statements prepared
            for _ in range(200):
                await fn()
        for _ in range(rounds):
            for name, fn in ways.items():
                started = time.process_time()
                for _ in range(reads):
                    await fn()
                per[name].append(1e6 * (time.process_time() - started) / reads)
        return {k: round(statistics.median(v), 1) for k, v in per.items()}
    finally:
        if bare is not None:
            await bare.close()
        await db.dispose()
        await admin.execute(f"DROP SCHEMA {schema} CASCADE")
        await admin.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--pg", default=PG, help=f"PostgreSQL URL (default {PG})")
    args = ap.parse_args()
    rounds, reads = (3, 1000) if args.quick else (7, 3000)
    loop, _name = new_event_loop("auto")
    try:
        us = loop.run_until_complete(measure(args.pg, rounds, reads))
    finally:
        loop.close()
    for name, v in us.items():
        print(f"{name:9s} {v:7.1f} us CPU per read")
    print(json.dumps({"pooled_us_per_read": us["pooled"], "kept_us_per_read": us["kept"],
                      "kept_raw_us_per_read": us["kept_raw"], "asyncpg_us_per_read": us["asyncpg"],
                      "kept_vs_pooled": round(us["kept"] / us["pooled"], 3),
                      "kept_raw_vs_pooled": round(us["kept_raw"] / us["pooled"], 3),
                      "rounds": rounds, "reads_per_round": reads, "quick": args.quick}))


if __name__ == "__main__":
    main()
