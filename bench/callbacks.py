"""Benchmark encrypted WeCom text callbacks: the durable hub vs a bare aiohttp ceiling.

One hub process (``python -m hub serve``) on a fresh SQLite file (the hub sets WAL +
synchronous=FULL on every connection) receives signed, AES-encrypted WeCom text callbacks from
``wrk`` (a separate load-generator process, over loopback, 2 threads x 64 connections, Lua script
``bench/callbacks.lua`` replaying pre-encrypted requests, each with its own query string and
body). In the same run, the same generator settings hit a bare aiohttp server (one process, same
Python, same event loop as the hub: uvloop by default, --loop) whose handler only answers ``success``:
the ceiling of this machine. With uvloop, a bare aiohttp on asyncio's own loop is measured too
(``ceiling_asyncio_per_s``), for reference. The hub is paused (SIGSTOP) while a bare server is
measured: it would otherwise work off its floods' job backlog on the same 2 cores meanwhile.

Every request sent to the hub is a distinct message (distinct MsgId; senders drawn from a pool of
customers, --senders; Chinese text) and the Lua script drains every outstanding response before a
wrk thread stops, so after the run the number of 200 responses (``acked``, warm-up included) must
equal the number of archived inbound rows for the bench account (``archived``). A run whose
responses do not all arrive within a grace period is reported as undrained (a stalled hub).
The platform APIs the hub calls (tokens, sends such as queue-position notices) are served by the
stand-in of tests/platform_standin.py in a third process, so nothing goes to the internet.

Runs are interleaved (hub, bare, bare, hub, ...); the reported numbers are medians over runs.
Prints human-readable lines, then one JSON line last.

    python bench/callbacks.py            # 3 x 10 s per side (+ warm-up)
    python bench/callbacks.py --quick    # 1 x 6 s per side, < 45 s wall
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402  (after the path set-up above)
    ACCOUNT, AES_KEY, CORP_ID, TOKEN, MessageFactory, clean_tmp, cpu_seconds, free_port, kill_group, paused, run_wrk,
    standin_server, start, stop, wait_healthy)

TARGET_RATIO, STRETCH_RATIO, TARGET_RATE, TARGET_P99_MS = 0.25, 0.33, 6000, 20.0


# ---------------------------------------------------------------------------------------------
# the bare ceiling server (run as `python bench/callbacks.py --bare-server PORT`)

def bare_server(port: int, loop_name: str) -> None:
    """aiohttp answering ``success`` and nothing else, on the event loop ``loop_name``."""
    from aiohttp import web

    from hub.event_loop import new_event_loop

    async def receive(request: web.Request) -> web.Response:
        return web.Response(text="success", content_type="text/plain")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok", content_type="text/plain")

    app = web.Application()
    app.router.add_post("/callbacks/wecom/{account}", receive)
    app.router.add_get("/healthz", health)
    loop, _ = new_event_loop(loop_name)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *_: None, loop=loop)


def count_rows(db_path: Path) -> tuple[int, int, str]:
    con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        # inbound customer messages only: the hub also archives what it sends (e.g. queue-position notices)
        archived = con.execute("SELECT count(*) FROM messages WHERE account_id = ? AND direction = 'in'",
                               (ACCOUNT,)).fetchone()[0]
        jobs = con.execute("SELECT count(*) FROM jobs").fetchone()[0]
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        con.close()
    return archived, jobs, mode




def finite(ms: float) -> float | None:
    """Milliseconds for the JSON line (None for a run that got no answer at all)."""
    return round(ms, 3) if math.isfinite(ms) else None


def fmt(res: dict) -> str:
    e = res["errors"]
    errs = sum(e.values())
    return (f"{res['rate']:8.0f}/s  acked={res['acked']:6d} non200={res['non200']} "
            f"p50={res['p50_us'] / 1000:6.2f} ms p90={res['p90_us'] / 1000:6.2f} ms "
            f"p99={res['p99_us'] / 1000:6.2f} ms max={res['max_us'] / 1000:7.2f} ms "
            f"in {res['elapsed_s']:.2f} s{'  errors=' + json.dumps(e) if errs else ''}"
            f"{'  (messages exhausted early)' if res.get('exhausted') else ''}")


# ---------------------------------------------------------------------------------------------

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 x 6 s per side (< 45 s wall)")
    ap.add_argument("--runs", type=int, help="measured runs per side (default 3, quick 1)")
    ap.add_argument("--duration", type=float, help="seconds per measured run (default 10, quick 6)")
    ap.add_argument("--warmup", type=float, help="warm-up seconds per side (default 3, quick 1.5)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2, help="wrk threads")
    ap.add_argument("--senders", type=int, default=20000, help="distinct customers the messages come from")
    ap.add_argument("--plan-rate", type=float, default=6000,
                    help="messages/s to prepare for the warm-up; measured runs prepare 2.5x the best rate seen "
                         "(a run that uses them all ends early, still measured exactly)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (DB, logs, data files)")
    ap.add_argument("--profile", metavar="DIR", help="py-spy (if installed) records the hub during a measured "
                    "run (--profile-run) into DIR/hub-profile-N.txt (raw collapsed stacks; with --gil only the thread holding the GIL)")
    ap.add_argument("--profile-run", default="1", help="which measured runs --profile records, comma-separated "
                    "(default 1); run N goes to DIR/hub-profile-N.txt")
    ap.add_argument("--profile-flags", default="--gil", help="extra py-spy record flags (default --gil)")
    ap.add_argument("--hub-cmd", default="", help="command that runs the hub CLI (default: PYTHON -m hub); "
                    "for A/B experiments, e.g. a script that patches the hub then calls hub.cli.main()")
    ap.add_argument("--loop", choices=["auto", "uvloop", "asyncio"], default="auto",
                    help="event loop of the hub and of the bare ceiling (default auto: uvloop if installed, as the "
                         "hub's own default); with uvloop, a bare aiohttp on asyncio's loop is measured as well")
    ap.add_argument("--bare-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    ap.add_argument("--bare-loop", default="asyncio", help=argparse.SUPPRESS)
    ap.add_argument("--standin-server", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.bare_server:
        bare_server(args.bare_server, args.bare_loop)
        return
    if args.standin_server:
        standin_server(args.standin_server)
        return

    runs = args.runs or (1 if args.quick else 3)
    duration = args.duration or (6.0 if args.quick else 10.0)
    warmup = args.warmup if args.warmup is not None else (1.5 if args.quick else 3.0)
    wall0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-callbacks-"))
    db_path = tmp / "hub.db"
    db_url = f"sqlite+aiosqlite:///{db_path}"
    py = sys.executable
    hub = bare = bare_asyncio = standin = None
    from hub.event_loop import resolve
    loop_name = resolve(args.loop)
    procs: list[subprocess.Popen] = []
    try:
        env = dict(os.environ)
        # The bodies are encrypted and signed ahead of the runs (the encryption is not part of what
        # is measured), so their timestamps age during the run: widen the hub's replay window.
        env["HUB_CALLBACK_MAX_SKEW"] = "86400"
        env["HUB_LOG_LEVEL"] = "WARNING"
        env["HUB_EVENT_LOOP"] = loop_name  # the hub and the bare ceiling run on the same loop
        env.pop("HUB_CONFIG", None)
        env.pop("HUB_DATABASE_URL", None)
        subprocess.run([py, "-m", "hub", "accounts", "add", "--db", db_url, "--id", ACCOUNT, "--platform", "wecom",
                        "--name", "Bench Corp", "--receive-id", CORP_ID, "--token", TOKEN, "--aes-key", AES_KEY,
                        "--secret", "bench-corp-secret"],
                       cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)

        hub_port, bare_port, standin_port, asyncio_port = free_port(), free_port(), free_port(), free_port()
        hub_log, bare_log, standin_log = tmp / "hub.log", tmp / "bare.log", tmp / "standin.log"
        me = str(Path(__file__).resolve())
        standin = start([py, me, "--standin-server", str(standin_port)], standin_log, env)
        api_base = f"http://127.0.0.1:{standin_port}"
        hub_cmd = args.hub_cmd.split() if args.hub_cmd else [py, "-m", "hub"]
        hub = start([*hub_cmd, "serve", "--db", db_url, "--port", str(hub_port), "--wecom-api-base", api_base,
                     "--oa-api-base", api_base], hub_log, env)
        bare = start([py, me, "--bare-server", str(bare_port), "--bare-loop", loop_name], bare_log, env)
        if loop_name != "asyncio":  # also the ceiling on Python's own loop, for reference
            bare_asyncio = start([py, me, "--bare-server", str(asyncio_port), "--bare-loop", "asyncio"],
                                 tmp / "bare-asyncio.log", env)

        factory = MessageFactory(args.senders)
        wal_max = [0]  # the biggest the SQLite write-ahead log grew, sampled through the runs
        wal_stop = threading.Event()

        def watch_wal() -> None:
            wal = Path(f"{db_path}-wal")
            while not wal_stop.wait(0.2):
                try:
                    wal_max[0] = max(wal_max[0], wal.stat().st_size)
                except FileNotFoundError:
                    pass
        threading.Thread(target=watch_wal, daemon=True).start()
        t = time.perf_counter()
        warm_file = tmp / "warmup.txt"
        factory.write(warm_file, max(1000, int(args.plan_rate * max(warmup, 0.5) * 1.6)))
        prep_s = time.perf_counter() - t
        wait_healthy(hub_port, hub, hub_log)
        wait_healthy(bare_port, bare, bare_log)
        if bare_asyncio is not None:
            wait_healthy(asyncio_port, bare_asyncio, tmp / "bare-asyncio.log")
        wait_healthy(standin_port, standin, standin_log, "/cgi-bin/gettoken")
        print(f"event loop {loop_name} (hub and bare){'; bare on asyncio :' + str(asyncio_port) if bare_asyncio else ''}")
        print(f"hub :{hub_port} (SQLite {db_path}), bare :{bare_port}; wrk -t{args.threads} -c{args.connections}, "
              f"{runs} x {duration:g} s per side after {warmup:g} s warm-up")
        print(f"prepared {factory.made} warm-up messages in {prep_s:.2f} s "
              f"({prep_s / factory.made * 1e6:.0f} us each, not measured)")

        wrk = dict(threads=args.threads, connections=args.connections, procs=procs, grace=5 if args.quick else 15)
        hub_results: list[dict] = []
        bare_results: list[dict] = []
        asyncio_results: list[dict] = []
        # the bare servers measured beside the hub: label, port, where their results go
        bares = {"bare": ("bare", bare_port, bare_results)}
        if bare_asyncio is not None:
            bares["bare-asyncio"] = ("bare (asyncio loop)", asyncio_port, asyncio_results)

        def run_bare(side: str, data: Path, seconds: float) -> dict:
            """A bare server's run, the hub paused meanwhile."""
            with paused(hub):
                return run_wrk(bares[side][1], data, "cycle", seconds, **wrk)
        total_acked = total_non200 = total_sent = 0
        undrained = 0
        total_errors: dict[str, int] = {}

        def account(res: dict) -> None:
            nonlocal total_acked, total_non200, total_sent, undrained
            undrained += not res["drained"]
            total_sent += res["sent"]
            total_acked += res["acked"]
            total_non200 += res["non200"]
            for k, v in res["errors"].items():
                total_errors[k] = total_errors.get(k, 0) + v

        if warmup > 0:
            res = run_wrk(hub_port, warm_file, "once", warmup, **wrk)
            account(res)
            print(f"warm-up hub : {fmt(res)}")
            best = res["rate"]
            for side, (label, _, _) in bares.items():
                print(f"warm-up {label}: {fmt(run_bare(side, warm_file, warmup))}")
        else:
            best = args.plan_rate
        bare_file = warm_file  # the bare server stores nothing: it may see the same bodies again

        for r in range(runs):
            # enough for 2.5x the best rate seen (a run that uses them all ends early, still exact)
            count = int(max(best * 2.5, 1500) * duration)
            data = tmp / f"run{r}.txt"
            t = time.perf_counter()
            factory.write(data, count)
            print(f"run {r + 1}/{runs}: prepared {count} new messages in {time.perf_counter() - t:.2f} s")
            sides = ("hub", *bares)
            order = sides if r % 2 == 0 else sides[::-1]
            for side in order:
                if side == "hub":
                    spy = None
                    if args.profile and str(r + 1) in args.profile_run.split(","):
                        Path(args.profile).mkdir(parents=True, exist_ok=True)
                        out = Path(args.profile) / f"hub-profile-{r + 1}.txt"
                        spy = subprocess.Popen(
                            ["py-spy", "record", "--pid", str(hub.pid), "--rate", "250", "--format", "raw",
                             "--nonblocking", *args.profile_flags.split(), "-o", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, "PATH": f"{Path(py).parent}:{os.environ.get('PATH', '')}"})
                        procs.append(spy)
                        time.sleep(0.5)
                    cpu0 = cpu_seconds(hub.pid)
                    res = run_wrk(hub_port, data, "once", duration, **wrk)
                    res["cpu_us_per_callback"] = (cpu_seconds(hub.pid) - cpu0) / max(res["acked"], 1) * 1e6
                    res["cpu_share"] = (cpu_seconds(hub.pid) - cpu0) / max(res["elapsed_s"], 1e-9)
                    if spy is not None:
                        spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
                        spy.wait(30)
                        procs.remove(spy)
                        print(f"  profile: {out}")
                    account(res)
                    hub_results.append(res)
                    best = max(best, res["rate"])
                    print(f"  hub  : {fmt(res)}  cpu {res['cpu_us_per_callback']:.0f} us/callback "
                          f"({res['cpu_share']:.0%} of a core)")
                else:
                    label, _, results = bares[side]
                    res = run_bare(side, bare_file, duration)
                    results.append(res)
                    print(f"  {label} : {fmt(res)}")
            data.unlink()

        live_archived, _, _ = count_rows(db_path)
        wal_stop.set()
        hub_rc = stop(hub, 10 if args.quick else 20)
        stop(bare)
        stop(bare_asyncio)
        stop(standin)
        archived, jobs_left, journal = count_rows(db_path)
        hub_errors = [ln for ln in hub_log.read_text(errors="replace").splitlines()
                      if " ERROR " in ln or "Traceback" in ln]

        # PRAGMA synchronous is per connection, so it cannot be read from outside the hub process
        synchronous = "FULL" if "PRAGMA synchronous=FULL" in (ROOT / "hub" / "db.py").read_text() else "unknown"
        med = statistics.median
        rate = med(r["rate"] for r in hub_results)
        ceiling = med(r["rate"] for r in bare_results)
        # a run without a single answer has no latency: count it as infinitely slow
        lat = lambda r, k: r[k] / 1000 if r["received"] else float("inf")  # noqa: E731
        p50 = med(lat(r, "p50_us") for r in hub_results)
        p99 = med(lat(r, "p99_us") for r in hub_results)
        ratio = rate / ceiling if ceiling else 0.0
        ceiling_asyncio = med(r["rate"] for r in asyncio_results) if asyncio_results else ceiling
        # every hub request is a distinct message and every run drains, so if all were acked the archive
        # must hold exactly the acked messages; a stalled (undrained) run leaves requests archived but
        # never answered, so then only archived >= acked can be asked of it
        durable = archived >= total_acked and live_archived >= total_acked
        exact = archived == total_acked == total_sent
        wall = time.perf_counter() - wall0
        print(f"hub     : {rate:.0f} callbacks/s (median of {runs}), p50={p50:.2f} ms p99={p99:.2f} ms")
        print(f"ceiling : {ceiling:.0f} /s bare aiohttp 'success' (median of {runs}), "
              f"p50={med(r['p50_us'] for r in bare_results) / 1000:.2f} ms "
              f"p99={med(r['p99_us'] for r in bare_results) / 1000:.2f} ms")
        if asyncio_results:
            print(f"ceiling : {ceiling_asyncio:.0f} /s bare aiohttp on asyncio's own loop (median of {runs}); the hub "
                  f"makes {rate / ceiling_asyncio:.1%} of it")
        print(f"ratio   : {ratio:.1%} of the ceiling on the same loop (target {TARGET_RATIO:.0%}, stretch {STRETCH_RATIO:.0%})")
        print(f"durable : sent={total_sent} acked={total_acked} archived={archived} (live count {live_archived}) "
              f"non200={total_non200} -> {'archived == acked' if exact else 'archived != acked'}"
              f"{'' if durable else ' -- ACKED MESSAGES MISSING'}; journal_mode={journal}, jobs left={jobs_left}, "
              f"hub exit={hub_rc}; write-ahead log at most {wal_max[0] / 2**20:.1f} MB")
        if undrained:
            print(f"STALL   : {undrained} hub run(s) did not get all responses within the grace period "
                  f"(the hub stalled; unanswered requests are not acked)")
        if hub_errors:
            print(f"hub log : {len(hub_errors)} error lines, first: {hub_errors[0]}")
        meets = {"ratio": ratio >= TARGET_RATIO, "stretch": ratio >= STRETCH_RATIO, "rate": rate >= TARGET_RATE,
                 "p99": p99 <= TARGET_P99_MS, "durable": durable}
        print("targets : " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in meets.items()))
        print(f"wall    : {wall:.1f} s")
        print(json.dumps({
            "callbacks_per_s": round(rate, 1), "p50_ms": finite(p50), "p99_ms": finite(p99),
            "p90_ms": finite(med(lat(r, "p90_us") for r in hub_results)),
            "max_ms": finite(max(lat(r, "max_us") for r in hub_results)),
            "ceiling_per_s": round(ceiling, 1),
            "ceiling_p50_ms": round(med(r["p50_us"] for r in bare_results) / 1000, 3),
            "ceiling_p99_ms": round(med(r["p99_us"] for r in bare_results) / 1000, 3),
            "ratio": round(ratio, 4), "loop": loop_name,
            "ceiling_asyncio_per_s": round(ceiling_asyncio, 1),
            "ratio_to_asyncio_ceiling": round(rate / ceiling_asyncio, 4) if ceiling_asyncio else 0.0,
            "hub_cpu_us_per_callback": round(med(r["cpu_us_per_callback"] for r in hub_results), 1),
            "acked": total_acked, "archived": archived, "durable": durable,
            "archived_equals_acked": exact, "undrained_runs": undrained, "hub_exit": hub_rc,
            "non200": total_non200, "errors": total_errors, "messages": factory.made, "messages_sent": total_sent,
            "senders": args.senders, "connections": args.connections, "threads": args.threads,
            "runs": runs, "duration_s": duration, "warmup_s": warmup,
            "hub_runs_per_s": [round(r["rate"], 1) for r in hub_results],
            "ceiling_runs_per_s": [round(r["rate"], 1) for r in bare_results],
            "ceiling_asyncio_runs_per_s": [round(r["rate"], 1) for r in asyncio_results],
            "jobs_left": jobs_left, "journal_mode": journal, "synchronous": synchronous,
            "wal_max_mb": round(wal_max[0] / 2**20, 1),
            "meets": meets, "quick": args.quick, "wall_s": round(wall, 1),
        }, ensure_ascii=False))
    finally:
        for p in list(procs):
            kill_group(p)
        stop(hub, 10)
        stop(bare, 10)
        stop(bare_asyncio, 10)
        stop(standin, 10)
        clean_tmp(tmp, args.keep)


if __name__ == "__main__":
    main()
