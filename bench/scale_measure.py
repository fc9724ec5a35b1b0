"""What bench/scale.py measures and how: CPU of the hub's processes, of PostgreSQL and of the whole
machine (/proc), PostgreSQL's own activity per callback, py-spy profiles, and the database's counts
(jobs left, messages archived) for a SQLite file or a PostgreSQL schema."""
from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.harness import ACCOUNT, cpu_seconds, process_cpu


def machine_jiffies() -> tuple[int, int]:
    """(all, idle) jiffies of the whole machine so far (/proc/stat): idle includes iowait."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields), fields[3] + fields[4]




def total_cpu(pids: list[int]) -> float:
    """CPU seconds of the hub's processes so far."""
    return sum(cpu_seconds(pid) for pid in pids)


def postgres_cpu() -> dict[int, float]:
    """CPU seconds so far of every PostgreSQL process on this host (the server and its backends),
    by pid: a backend that starts during a run counts whole, one that ends during it is missed."""
    out: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, cpu = process_cpu(stat)
        except (OSError, IndexError, ValueError):
            continue
        if name.startswith("postgres"):
            out[int(stat.parent.name)] = cpu
    return out


PG_ACTIVITY = ("SELECT xact_commit + xact_rollback AS xacts, tup_returned AS rows_read, "
               "tup_inserted + tup_updated + tup_deleted AS rows_written FROM pg_stat_database "
               "WHERE datname = current_database()")


PG_TABLE_READS = ("SELECT coalesce(json_object_agg(relname, seq_tup_read + coalesce(idx_tup_fetch, 0)), '{}') "
                  "FROM pg_stat_user_tables WHERE schemaname = current_schema()")


def pg_activity(db_url: str) -> dict[str, Any]:
    """PostgreSQL's counters of this database so far (pg_stat_database: every connection's, updated
    within about a second of each transaction's end), and the rows read per table of the run's schema."""
    out: dict[str, Any] = dict(asyncio.run(pg(db_url, PG_ACTIVITY, fetch="row")))
    out["by_table"] = json.loads(asyncio.run(pg(db_url, PG_TABLE_READS)))
    return out


def per_callback(after: dict[str, Any], before: dict[str, Any], acked: int) -> dict[str, Any]:
    """The counters' growth per acknowledged callback; the tables read most, most first."""
    tables = {t: (n - before["by_table"].get(t, 0)) / max(1, acked) for t, n in after["by_table"].items()}
    out: dict[str, Any] = {f"pg_{k}_per_callback": round((after[k] - before[k]) / max(1, acked), 2)
                           for k in ("xacts", "rows_read", "rows_written")}
    out["pg_rows_read_per_callback_by_table"] = {t: round(n, 1) for t, n in sorted(tables.items(), key=lambda x: -x[1])[:5]}
    return out


def postgres_cpu_since(before: dict[int, float]) -> float:
    return sum(t - before.get(pid, 0.0) for pid, t in postgres_cpu().items())


def profile(pids: list[int], out_dir: str, label: str) -> list[subprocess.Popen]:
    """py-spy (if installed) records each hub process from the flood until its jobs are done, into
    OUT_DIR/LABEL-PID.txt (raw collapsed stacks, every thread)."""
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    spies = [subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--rate", "200", "--format", "raw",
                               "--nonblocking", "-o", str(Path(out_dir) / f"{label}-{pid}.txt")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env) for pid in pids]
    time.sleep(0.5)
    return spies


def hub_pids(proc: subprocess.Popen) -> list[int]:
    path = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    children = [int(p) for p in path.read_text().split()] if path.exists() else []
    return [proc.pid, *children]


def settle(proc: subprocess.Popen, workers: int, timeout: float = 120.0, quiet_for: int = 3) -> list[int]:
    """Wait until every worker is up and idle (start-up, and any restart, is not measured); returns
    the hub's pids."""
    want = 1 + workers if workers else 1
    deadline = time.monotonic() + timeout
    quiet = 0
    while time.monotonic() < deadline:
        pids = hub_pids(proc)
        before = total_cpu(pids)
        time.sleep(0.5)
        if hub_pids(proc) == pids and len(pids) == want and total_cpu(pids) - before < 0.05:
            quiet += 1
            if quiet >= quiet_for:
                return pids
        else:
            quiet = 0
    print(f"warning: hub processes did not settle in {timeout:.0f} s (a busy machine); measuring anyway", flush=True)
    return hub_pids(proc)


def pending_jobs(db_url: str) -> int:
    if db_url.startswith("sqlite"):
        con = sqlite3.connect(f"file:{db_url.split(':///', 1)[1]}?mode=ro", uri=True, timeout=30)
        try:
            return con.execute("SELECT count(*) FROM jobs WHERE state IN ('pending', 'claimed')").fetchone()[0]
        finally:
            con.close()
    return asyncio.run(pg(db_url, "SELECT count(*) FROM jobs WHERE state IN ('pending', 'claimed')"))


def wait_jobs_done(db_url: str, timeout: float) -> bool:
    """Wait until the pipeline has run every job the callbacks left (True) or the timeout passed."""
    deadline = time.monotonic() + timeout
    while True:
        if pending_jobs(db_url) == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)


def archived_count(db_url: str) -> int:
    if db_url.startswith("sqlite"):
        con = sqlite3.connect(f"file:{db_url.split(':///', 1)[1]}?mode=ro", uri=True)
        try:
            return con.execute("SELECT count(*) FROM messages WHERE account_id = ? AND direction = 'in'",
                               (ACCOUNT,)).fetchone()[0]
        finally:
            con.close()
    return asyncio.run(pg(db_url, "SELECT count(*) FROM messages WHERE account_id = $1 AND direction = 'in'", ACCOUNT))


async def pg(db_url: str, sql: str, *args: object, fetch: str = "val") -> object:
    import asyncpg
    from hub.db import split_schema
    dsn, schema = split_schema(db_url)
    conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        if schema:
            await conn.execute(f"SET search_path TO {schema}")
        return await (conn.fetchrow if fetch == "row" else conn.fetchval)(sql, *args)
    finally:
        await conn.close()
