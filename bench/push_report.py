"""What the push bench reports: percentiles, which hub code was measured, the database totals checked
at the end, and the summary (human-readable lines, then one JSON line last)."""
from __future__ import annotations

import argparse
import json
import math
import os
import sqlite3
import subprocess
import time
from pathlib import Path

from bench.harness import ACCOUNT, ROOT
from bench.push_scenario import TARGET_P99_MS, TARGET_RATE


def pct(sorted_vals: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list (inf entries = lost messages)."""
    if not sorted_vals:
        return float("inf")
    k = max(0, min(len(sorted_vals) - 1, math.ceil(q / 100.0 * len(sorted_vals)) - 1))
    return sorted_vals[k]


def ms(x: float) -> float | None:
    return round(x * 1000, 2) if math.isfinite(x) else None


def code_state() -> dict:
    """Which hub code was measured (read-only git queries; others may be editing the tree)."""
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.rstrip("\n")
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = [ln[3:] for ln in git("status", "--porcelain", "--", "hub", "bots").splitlines() if len(ln) > 3]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "dirty": dirty}


def db_counts(db_path: Path) -> dict[str, int]:
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        q = lambda sql: con.execute(sql).fetchone()[0]  # noqa: E731
        return {"inbound": q(f"SELECT count(*) FROM messages WHERE account_id = '{ACCOUNT}' AND direction = 'in'"),
                "sessions_open": q("SELECT count(*) FROM service_sessions WHERE state != 'closed'")
                if con.execute("SELECT 1 FROM sqlite_master WHERE name = 'service_sessions'").fetchone() else -1,
                "jobs_left": q("SELECT count(*) FROM jobs")}
    finally:
        con.close()


def report(args: argparse.Namespace, results: list[dict], *, agents_n: int, customers: int, procs_n: int,
           duration: float, quick: bool, wall0: float, code: dict, load0: tuple[float, float, float],
           got: dict[int, float], new_rate: float, new_lat: list[float], new_cpu: dict[str, float], burst: dict,
           ack_span: float, total_sent: int, total_ok: int, late: int, dup: int, db: dict[str, int],
           end_counts: dict, hub_rc: int | None, hub_errors: list[str]) -> None:
    """Print the result lines, then the JSON line. ``results`` are the sweep's steps; the other
    arguments are the run's settings and figures, named as in push_run.orchestrate."""
    passing = [r for r in results if r["ok"]]
    best = max(passing, key=lambda r: r["rate"]) if passing else min(
        results, key=lambda r: (r["p99_ms"] is None, r["p99_ms"] or 0, r["rate"]))
    at_target = next((r for r in results if r["rate"] == TARGET_RATE), None)
    target_met = bool(at_target and at_target["ok"])
    wall = time.perf_counter() - wall0
    all_delivered = sum(r["delivered"] for r in results)
    print(f"result  : highest rate with p99 <= {TARGET_P99_MS:g} ms and nothing lost: "
          f"{best['rate'] if passing else 'none'}/s (p50 {best['p50_ms']} ms, p99 {best['p99_ms']} ms, "
          f"{best['delivered']}/{best['sent']} delivered)")
    print(f"target  : p99 <= {TARGET_P99_MS:g} ms at {TARGET_RATE}/s, delivered == sent: "
          f"{'yes' if target_met else 'NO'}" + (f" (p99 {at_target['p99_ms']} ms, "
                                                f"{at_target['delivered']}/{at_target['sent']})" if at_target else
                                                " (not tested)"))
    print(f"totals  : callbacks sent={total_sent + customers} acked (sweep)={total_ok}, delivered (sweep)="
          f"{all_delivered}, late (after the drain wait)={late}, duplicates={dup}; DB inbound={db['inbound']} (expected {total_ok + customers}), "
          f"jobs left={db['jobs_left']}; sockets connected at the end={end_counts['connected']}/{agents_n}; "
          f"other events {dict(end_counts['other'])}; hub exit={hub_rc}")
    if hub_errors:
        print(f"hub log : {len(hub_errors)} error lines, first: {hub_errors[0]}")
    print(f"wall    : {wall:.1f} s")
    print(json.dumps({
        "agents": agents_n, "rate_per_s": best["rate"], "p50_ms": best["p50_ms"], "p99_ms": best["p99_ms"],
        "delivered": best["delivered"], "sent": best["sent"], "rate_passes": best["ok"],
        "target": {"rate_per_s": TARGET_RATE, "p99_ms": TARGET_P99_MS, "met": target_met},
        "rates": [{k: v for k, v in r.items() if k not in ("http", "errors", "prep_s")} | (
            {"http": r["http"]} if r["http"] != {"200": r["sent"]} else {}) for r in results],
        "new_sessions_per_s": round(new_rate, 1), "new_sessions": len(got), "customers": customers,
        "new_session_p50_ms": ms(pct(new_lat, 50)), "new_session_p99_ms": ms(pct(new_lat, 99)),
        "new_session_burst_ack_per_s": round(burst["n"] / ack_span, 1), "new_session_cpu_pct": new_cpu,
        "sent_total": total_sent, "delivered_total": all_delivered, "late_total": late, "duplicates": dup,
        "db_inbound": db["inbound"], "db_inbound_expected": total_ok + customers, "jobs_left": db["jobs_left"],
        "hub_error_lines": len(hub_errors), "hub_exit": hub_rc, "agent_procs": procs_n, "cap": args.cap,
        "duration_s": duration, "connections": args.conns, "quick": quick, "wall_s": round(wall, 1),
        "hub_cmd": args.hub_cmd or None, "code": code, "cpus": os.cpu_count(),
        "loadavg_start": round(load0[0], 2), "loadavg_end": round(os.getloadavg()[0], 2),
    }, ensure_ascii=False))
