"""Benchmark scale-out: callbacks/s, push latency and hub CPU for 1 and 2 hub workers on
PostgreSQL + Redis, next to one process on SQLite, in one run.

Each configuration gets a fresh database (a SQLite file, or a new schema in the PostgreSQL at
--pg), a fresh private ``redis-server`` (no persistence), the stand-in platform API of
tests/platform_standin.py, and the same load: ``wrk`` (2 threads x 64 connections, the Lua script
of bench/callbacks.py replaying distinct, signed and AES-encrypted WeCom text callbacks from a pool
of customers). The workers run as ``python -m hub serve --workers N`` (one port, SO_REUSEPORT).

Alongside wrk a *probe* process (bench/scale_probe.py, python-socketio) is an agent: it logs in, goes online, opens a
session as a customer of its own, then sends one callback every 50 ms carrying its send time and
records when each arrives as ``message.new`` on its socket: end-to-end push latency
(callback -> archive -> pipeline -> routing -> Redis -> the worker holding the socket). It does so
in two phases per run:

* the *flood*: alongside wrk at full speed. The hub answers callbacks first and runs their jobs
  behind them (bots, routing, push), so here push latency measures the backlog a saturating load
  leaves, not the hub (reported as ``flood_push_*``; a probe message not delivered by the end of
  its wait is counted late, not lost, as it arrives once the backlog drains);
* the *steady* load, once the flood's jobs are done: wrk paced at ``--steady-rate`` callbacks/s
  (default 100, a rate every configuration sustains) from the same customers, for
  ``--steady-seconds``. This is the push latency the JSON reports as ``p99_ms``; a probe message not
  delivered by the end of its wait counts as lost (``push_probe_lost``).

Load: ``--senders`` customers (default 2,000; quick 150). Before the measured flood every customer
writes ``--warmup-rounds`` times (default 2, quick 1) and the hub finishes all of it, so every
configuration starts from the same state and measures the same work: follow-ups to known customers,
and each conversation's first message the bots cannot answer (a new session: routing, a queue notice).

Machine: the share of both cores busy during the flood (/proc/stat; everything on the box: the
hub, PostgreSQL, Redis, wrk), per configuration (``machine_busy_*``). One worker that already keeps
the machine nearly busy leaves a second nothing to scale into: ``scaling_ceiling`` = 1 / ``machine_busy_one``
is the most two workers could reach here if nothing (hub, PostgreSQL, Redis, wrk) cost more per callback
with two than with one and they kept both cores wholly busy. The same share while the flood's jobs
drain (``machine_busy_drain_*``) says whether that backlog waits for the machine (near 1: a second
worker cannot drain it sooner) or for something else; and PostgreSQL's own CPU (every ``postgres``
process on this host, flood and drain, per 1,000 acknowledged callbacks: ``pg_cpu_ms_per_1k_*``;
the flood alone, beside the hub's: ``pg_cpu_ms_per_1k_flood_*``, ``cpu_ms_per_1k_flood_*``)
shows what the database costs beside the hub, with its transactions and rows read per callback
(pg_stat_database: ``pg_xacts_per_callback_*``, ``pg_rows_read_per_callback_*``).

CPU: utime + stime from /proc/<pid>/stat of every hub process (supervisor and workers), from the
start of the measured run until the pipeline has run every job the run left (``jobs done N s after
the run``; at most ``--drain-timeout``), per 1,000 acknowledged callbacks: the work a callback causes
after its answer counts too, so a configuration that defers it does not look cheaper. ``acked`` (200 success answers,
warm-up, probe and run) must equal ``archived`` (inbound rows of the bench account) in every run.
Runs are interleaved (sqlite, one, two, two, one, sqlite ...); medians are reported.

PostgreSQL: by default over its Unix socket when this host has one (a one-host deployment's connection;
``pg_transport`` in the JSON), else 127.0.0.1:5432; ``--pg URL`` picks another (TCP included).

    python bench/scale.py            # 3 runs x 10 s per configuration
    python bench/scale.py --quick    # 1 run x 1 s per configuration (150 senders), < 45 s wall on an idle box

Last line: one JSON object (one_worker_per_s, two_workers_per_s, sqlite_per_s, scaling,
cpu_ms_per_1k_one, cpu_ms_per_1k_two, cpu_ms_per_1k_sqlite, acked, archived, p99_ms, ...).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (ACCOUNT, AES_KEY, CORP_ID, TOKEN, MessageFactory, free_port, kill_group,  # noqa: E402
                             clean_tmp, run_wrk, start, stop, wait_healthy)
from bench.scale_measure import (archived_count, hub_pids, machine_jiffies, pending_jobs, per_callback,  # noqa: E402
                                 pg, pg_activity, postgres_cpu, postgres_cpu_since, profile, settle,
                                 total_cpu, wait_jobs_done)
from bench.scale_probe import ADMIN_PASSWORD, ADMIN_USER, PROBE_PASSWORD, PROBE_USER, probe_route  # noqa: E402

PG_TCP = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PG_SOCKET_DIR = "/var/run/postgresql"
# PostgreSQL on this host: its Unix socket, as a one-host deployment connects (docs/deploy.md); over TCP
# loopback the kernel's TCP work lands on the hub's CPU (10-22% more CPU per 1k callbacks, one worker)
PG = (f"postgresql+asyncpg://postgres@/test?host={PG_SOCKET_DIR}"
      if os.path.exists(f"{PG_SOCKET_DIR}/.s.PGSQL.5432") else PG_TCP)
TARGET_SCALING, TARGET_CPU_DRIFT = 1.3, 0.15


# ---------------------------------------------------------------------------------------------
# one configuration, one run

def run_config(name: str, workers: int, tmp: Path, factory: MessageFactory, args: argparse.Namespace,
               api_base: str, env: dict[str, str], duration: float, run: int) -> dict:
    py = sys.executable
    port = free_port()
    schema = None
    redis = None
    if name == "sqlite":
        db_url = f"sqlite+aiosqlite:///{tmp}/{name}-{run}.db"
        serve = ["serve", "--db", db_url, "--port", str(port)]
    else:
        schema = "bench_" + uuid.uuid4().hex[:10]
        asyncio.run(pg(args.pg, f"CREATE SCHEMA {schema}"))
        db_url = f"{args.pg}{'&' if '?' in args.pg else '?'}schema={schema}"
        rport = free_port()
        redis = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port", str(rport), "--save", "",
                                  "--appendonly", "no", "--bind", "127.0.0.1"], stdout=subprocess.DEVNULL)
        serve = ["serve", "--workers", str(workers), "--db", db_url, "--port", str(port),
                 "--redis", f"redis://127.0.0.1:{rport}/0"]
    log = tmp / f"{name}-{run}.log"
    hub = None
    try:
        common = dict(cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        # the bench account, the probe's agent and an admin, through the CLI (one interpreter for all)
        subprocess.run([py, "-c", "import sys; from hub.cli import main; a = sys.argv[1:]; i = a.index('users'); "
                        "j = a.index('users', i + 1); sys.exit(main(a[:i]) or main(a[i:j]) or main(a[j:]))",
                        "accounts", "add", "--db", db_url, "--id", ACCOUNT, "--platform", "wecom", "--name", "Bench Corp",
                        "--receive-id", CORP_ID, "--token", TOKEN, "--aes-key", AES_KEY, "--secret", "bench-corp-secret",
                        "users", "add", "--db", db_url, "--username", PROBE_USER, "--password", PROBE_PASSWORD,
                        "--groups", "probe", "--cap", "1",
                        "users", "add", "--db", db_url, "--username", ADMIN_USER, "--password", ADMIN_PASSWORD,
                        "--role", "admin", "--cap", "0"], **common)
        hub = start([py, "-m", "hub", *serve, "--wecom-api-base", api_base, "--oa-api-base", api_base], log, env)
        wait_healthy(port, hub, log, timeout=120)
        deadline = time.monotonic() + 120
        while len(hub_pids(hub)) < workers + (workers > 0 and name != "sqlite") and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(3 * workers):  # every worker answers (SO_REUSEPORT spreads new connections)
            wait_healthy(port, hub, log, timeout=120)
        probe_route(port)
        wrk = dict(threads=args.threads, connections=args.connections, procs=[], grace=5 if args.quick else 15)
        acked = 0
        if args.warmup_rounds > 0:
            # every customer writes the same number of times, and all that work is done, before the
            # measured flood: each configuration then measures the same work (a time-bound warm-up
            # left the slower configurations more first messages, the costly ones, inside the run)
            warm = tmp / f"warm-{name}-{run}.txt"
            count = factory.write(warm, args.warmup_rounds * len(factory.senders), every_sender=True)
            warm_res = run_wrk(port, warm, "once", 600, **wrk)
            acked += warm_res["acked"]
            if warm_res["acked"] != count or not wait_jobs_done(db_url, timeout=max(args.drain_timeout, 60)):
                raise SystemExit(f"{name}: the warm-up was not acknowledged ({warm_res['acked']}/{count}) or its "
                                 f"jobs did not finish")
        settle(hub, workers, quiet_for=1 if args.quick else 3)
        probe = subprocess.Popen([py, str(ROOT / "bench" / "scale_probe.py"), str(port), str(duration),
                                  str(args.drain)], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                 stdout=subprocess.PIPE, text=True)
        ready = json.loads(probe.stdout.readline() or "{}")
        if not ready.get("ready"):
            raise SystemExit(f"probe did not start:\n{log.read_text()[-2000:]}")
        data = tmp / f"run-{name}-{run}.txt"
        factory.write(data, int(args.plan_rate * duration))
        pids = settle(hub, workers, quiet_for=1 if args.quick else 3)
        spies = profile(pids, args.profile, f"{name}-{run}") if args.profile and run == 0 else []
        activity0 = pg_activity(db_url) if not db_url.startswith("sqlite") else None
        cpu0, machine0, pg0 = total_cpu(pids), machine_jiffies(), postgres_cpu()
        probe.stdin.write("go\n")
        probe.stdin.flush()
        res = run_wrk(port, data, "once", duration, **wrk, rate=args.flood_rate)
        cpu_acked = total_cpu(pids) - cpu0
        if args.profile_flood:  # the flood only, not the drain after it
            for spy in spies:
                spy.send_signal(signal.SIGINT)
        after: dict = {}
        if args.after_rate > 0:
            # customers keep writing after the burst, at a rate the hub sustains: does the burst's
            # backlog drain meanwhile, or do the jobs keep giving way to callbacks that no longer need it?
            backlog0 = pending_jobs(db_url)
            later = tmp / f"after-{name}-{run}.txt"
            factory.write(later, int(args.after_rate * args.after_seconds) + 1)
            ares = run_wrk(port, later, "once", args.after_seconds, threads=args.threads, connections=16, procs=[],
                           grace=5 if args.quick else 15, rate=args.after_rate)
            acked += ares["acked"]
            backlog1 = pending_jobs(db_url)
            after = {"backlog_at_burst_end": backlog0, "backlog_after_traffic": backlog1,
                     "jobs_per_s_under_traffic": round((backlog0 - backlog1 + ares["acked"]) / args.after_seconds, 1)}
            print(f"{name:6} run {run + 1}: backlog {backlog0} at the burst's end, {backlog1} after "
                  f"{args.after_seconds:g} s at {args.after_rate:g} callbacks/s", flush=True)
        pg_cpu_flood = postgres_cpu_since(pg0) if not db_url.startswith("sqlite") else None
        machine1 = machine_jiffies()
        busy = 1 - (machine1[1] - machine0[1]) / max(1, machine1[0] - machine0[0])  # of all cores, the flood
        t_end = time.monotonic()
        probe_res = json.loads(probe.stdout.readline() or "{}")  # the probe waits for its flood messages
        # the work a callback causes (bots, routing, push) runs after its answer, partly after the run:
        # the CPU is counted until every job is done, so deferring work never looks cheaper
        drained = wait_jobs_done(db_url, timeout=args.drain_timeout)
        drain_s = time.monotonic() - t_end  # from the end of the flood
        cpu = total_cpu(pids) - cpu0
        machine2 = machine_jiffies()
        # the share of both cores busy while the flood's jobs drain: near 1, the backlog waits for
        # the machine (a second worker cannot drain it sooner); well below, for something else
        busy_drain = 1 - (machine2[1] - machine1[1]) / max(1, machine2[0] - machine1[0])
        pg_cpu = postgres_cpu_since(pg0) if not db_url.startswith("sqlite") else None
        if activity0 is not None:  # what PostgreSQL did for the flood's callbacks and their jobs
            time.sleep(1.5)  # its counters trail the transactions by up to a second
            activity = per_callback(pg_activity(db_url), activity0, res["acked"])
        for spy in spies:  # py-spy writes its output on Ctrl-C
            if spy.poll() is None and not args.profile_flood:
                spy.send_signal(signal.SIGINT)
            spy.wait(30)
        # steady load: the same customers at a rate every configuration sustains, and the probe's
        # push latency under it (under the flood above, latency only measures the backlog)
        steady = tmp / f"steady-{name}-{run}.txt"
        factory.write(steady, int(args.steady_rate * args.steady_seconds) + 1)
        probe.stdin.write(f"go {args.steady_seconds} 10\n")  # a steady load leaves no backlog: 10 s is plenty
        probe.stdin.flush()
        sres = run_wrk(port, steady, "once", args.steady_seconds, threads=args.threads, connections=16, procs=[],
                       grace=5 if args.quick else 15, rate=args.steady_rate)
        steady_res = json.loads(probe.stdout.readline() or "{}")
        probe.stdin.write("end\n")
        probe.stdin.flush()
        probe.wait(30)
        wait_jobs_done(db_url, timeout=args.drain_timeout)
        acked += res["acked"] + sres["acked"] + steady_res.get("acked", probe_res.get("acked", 0))  # the probe's own, opening message too
        archived = archived_count(db_url)
        out = {"config": name, "workers": workers, "per_s": res["rate"], "acked": acked, "archived": archived,
               "cpu_s": round(cpu, 3), "cpu_ms_per_1k": round(1000 * cpu / max(1, res["acked"]) * 1000, 1),
               "cpu_ms_per_1k_during_run": round(1000 * cpu_acked / max(1, res["acked"]) * 1000, 1),
               "machine_busy": round(busy, 3), "machine_busy_drain": round(busy_drain, 3),
               "pg_cpu_ms_per_1k": round(1000 * pg_cpu / max(1, res["acked"]) * 1000, 1) if pg_cpu is not None else None,
               "pg_cpu_ms_per_1k_during_run": (round(1000 * pg_cpu_flood / max(1, res["acked"]) * 1000, 1)
                                               if pg_cpu_flood is not None else None),
               **(activity if activity0 is not None else {}),
               "jobs_drained": drained, "drain_s": round(drain_s, 2),
               "ack_p99_ms": round(res["p99_us"] / 1000, 2), "flood_push_p50_ms": probe_res.get("p50_ms"),
               "flood_push_p99_ms": probe_res.get("p99_ms"), "flood_probe_sent": probe_res.get("sent"),
               "flood_probe_delivered": probe_res.get("delivered"), "drained": res["drained"],
               "steady_rate_per_s": round(sres["rate"], 1), "push_p50_ms": steady_res.get("p50_ms"),
               "push_p99_ms": steady_res.get("p99_ms"), "probe_sent": steady_res.get("sent"),
               "probe_delivered": steady_res.get("delivered"), **after}
        print(f"{name:6} run {run + 1}: {out['per_s']:7.0f}/s  machine {busy:4.0%} busy  cpu {out['cpu_ms_per_1k']:7.1f} ms/1k "
              f"(jobs done {drain_s:.1f} s after the run{'' if drained else ', NOT drained'}, machine {busy_drain:4.0%} busy; "
              f"PostgreSQL {out['pg_cpu_ms_per_1k']} ms/1k ({out['pg_cpu_ms_per_1k_during_run']} in the flood; hub "
              f"{out['cpu_ms_per_1k_during_run']}), {out.get('pg_xacts_per_callback')} transactions and "
              f"{out.get('pg_rows_read_per_callback')} rows read per callback)  "
              f"ack p99 {out['ack_p99_ms']:6.1f} ms  flood push p50 {out['flood_push_p50_ms']} "
              f"p99 {out['flood_push_p99_ms']} ms (probe {out['flood_probe_delivered']}/{out['flood_probe_sent']}); "
              f"at {out['steady_rate_per_s']}/s push p50 {out['push_p50_ms']} p99 {out['push_p99_ms']} ms "
              f"(probe {out['probe_delivered']}/{out['probe_sent']})  acked {acked} archived {archived}", flush=True)
        return out
    finally:
        stop(hub)
        if redis is not None:
            redis.kill()
            redis.wait(5)
        if schema:
            asyncio.run(pg(args.pg, f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    f"WHERE application_name = 'hub:{schema}'"))
            asyncio.run(pg(args.pg, f"DROP SCHEMA {schema} CASCADE"))


def median(vals: list, digits: int = 1) -> float | None:
    vals = [v for v in vals if v is not None]
    return round(statistics.median(vals), digits) if vals else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 run x 1 s per configuration, then 1.5 s steady (< 45 s wall)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (logs, SQLite files, data files: ~480 MB "
                    "for a full run)")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--duration", type=float)
    ap.add_argument("--pg", default=os.environ.get("HUB_BENCH_PG", PG), help="PostgreSQL URL (a schema per run; default: the Unix socket "
                    "when there is one, else TCP 127.0.0.1:5432)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--plan-rate", type=float, default=5000, help="messages prepared per second of run")
    ap.add_argument("--warmup-rounds", type=int, help="messages every customer sends (and the hub finishes with) "
                    "before the measured flood (default 2, quick 1)")
    ap.add_argument("--flood-rate", type=float, default=0, help="pace the flood at this many callbacks/s (default: "
                    "as fast as the hub answers); the same offered rate in every configuration separates "
                    "what saturating the machine costs from what a callback costs")
    ap.add_argument("--profile", metavar="DIR", help="py-spy (if installed) records every hub process during the "
                    "first run of each configuration, from the flood until its jobs are done, into DIR")
    ap.add_argument("--after-rate", type=float, default=0, help="after the flood, keep customers writing at this "
                    "many callbacks/s (paced) for --after-seconds before waiting for the jobs, and report the "
                    "backlog at both ends (does a burst's backlog drain under ongoing traffic?)")
    ap.add_argument("--after-seconds", type=float, default=10)
    ap.add_argument("--profile-flood", action="store_true", help="with --profile: record the flood only "
                    "(what the callbacks compete with), not the drain after it")
    ap.add_argument("--drain", type=float, help="seconds the probe waits for its last messages after the flood (default 30, quick 0.5)")
    ap.add_argument("--senders", type=int, help="customers the messages come from (default 2000, quick 150): "
                    "each one's first message opens a session (bots, routing), later ones join it")
    ap.add_argument("--drain-timeout", type=float,
                    help="seconds to wait after a run for the pipeline to finish its jobs (CPU is counted until then; "
                         "default 120, quick 5)")
    ap.add_argument("--steady-rate", type=float, default=100,
                    help="callbacks/s of the steady phase after each flood, where push latency is measured (default 100)")
    ap.add_argument("--steady-seconds", type=float, help="length of the steady phase (default 10, quick 1.5)")
    ap.add_argument("--configs", default="sqlite,one,two",
                    help="which configurations to run (comma-separated; the ratios need one and two)")
    args = ap.parse_args()
    args.configs = set(args.configs.split(","))
    runs = args.runs or (1 if args.quick else 3)
    duration = args.duration or (1.0 if args.quick else 10.0)
    args.senders = args.senders or (150 if args.quick else 2000)
    args.drain_timeout = args.drain_timeout if args.drain_timeout is not None else (5.0 if args.quick else 120.0)
    args.warmup_rounds = args.warmup_rounds if args.warmup_rounds is not None else (1 if args.quick else 2)
    args.steady_seconds = args.steady_seconds or (1.5 if args.quick else 10.0)
    args.drain = args.drain if args.drain is not None else (0.5 if args.quick else 30.0)
    wall0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    py = sys.executable
    env = dict(os.environ, HUB_CALLBACK_MAX_SKEW="86400", HUB_LOG_LEVEL="WARNING")
    for var in ("HUB_CONFIG", "HUB_DATABASE_URL", "HUB_REDIS_URL", "HUB_WORKER_ID"):
        env.pop(var, None)
    standin_port = free_port()
    standin = start([py, str(ROOT / "bench" / "callbacks.py"), "--standin-server", str(standin_port)],
                    tmp / "standin.log", env)
    results: dict[str, list[dict]] = {"sqlite": [], "one": [], "two": []}
    try:
        wait_healthy(standin_port, standin, tmp / "standin.log", "/cgi-bin/gettoken")
        api_base = f"http://127.0.0.1:{standin_port}"
        factory = MessageFactory(args.senders)
        print(f"wrk -t{args.threads} -c{args.connections}, {runs} x {duration:g} s per configuration; "
              f"PostgreSQL {args.pg}; {os.cpu_count()} cores shared by hub, PostgreSQL, Redis and wrk", flush=True)
        for r in range(runs):
            order = [(n, w) for n, w in (("sqlite", 0), ("one", 1), ("two", 2)) if n in args.configs]
            for name, workers in (order if r % 2 == 0 else order[::-1]):
                results[name].append(run_config(name, workers, tmp, factory, args, api_base, env, duration, r))
    finally:
        stop(standin)
        kill_group(standin)
        clean_tmp(tmp, args.keep)
    fig = {k: {"per_s": median([x["per_s"] for x in v]), "cpu": median([x["cpu_ms_per_1k"] for x in v]),
               "p99": median([x["push_p99_ms"] for x in v]),
               "busy": median([x["machine_busy"] for x in v], 3),
               "busy_drain": median([x["machine_busy_drain"] for x in v], 3),
               "pg_cpu": median([x["pg_cpu_ms_per_1k"] for x in v]),
               "pg_cpu_flood": median([x["pg_cpu_ms_per_1k_during_run"] for x in v]),
               "cpu_flood": median([x["cpu_ms_per_1k_during_run"] for x in v]),
               "pg_xacts": median([x.get("pg_xacts_per_callback") for x in v], 2),
               "pg_rows_read": median([x.get("pg_rows_read_per_callback") for x in v], 2),
               "backlog0": median([x.get("backlog_at_burst_end") for x in v], 0),
               "backlog1": median([x.get("backlog_after_traffic") for x in v], 0)} for k, v in results.items()}
    acked = sum(x["acked"] for v in results.values() for x in v)
    archived = sum(x["archived"] for v in results.values() for x in v)
    lost_push = sum((x["probe_sent"] or 0) - (x["probe_delivered"] or 0) for v in results.values() for x in v)
    flood_late = sum((x["flood_probe_sent"] or 0) - (x["flood_probe_delivered"] or 0) for v in results.values() for x in v)
    flood_p99 = {k: median([x["flood_push_p99_ms"] for x in v]) for k, v in results.items()}
    both = fig["one"]["per_s"] and fig["two"]["per_s"]
    scaling = round(fig["two"]["per_s"] / fig["one"]["per_s"], 3) if both else None
    drift = round(fig["two"]["cpu"] / fig["one"]["cpu"] - 1, 3) if both and fig["one"]["cpu"] else None
    # the machine's room for a second worker: everything one worker's callbacks cost (hub, PostgreSQL,
    # Redis, wrk) kept this share of both cores busy; at the same cost per callback, all of both
    # cores would carry 1 / share as many
    ceiling = round(1 / fig["one"]["busy"], 3) if fig["one"]["busy"] else None
    meets = {"scaling": scaling is not None and scaling >= TARGET_SCALING,
             "cpu": drift is not None and drift <= TARGET_CPU_DRIFT, "nothing_lost": acked == archived,
             "push_delivered": lost_push == 0}
    print(f"1 worker  : {fig['one']['per_s']}/s, {fig['one']['cpu']} ms CPU per 1k, push p99 {fig['one']['p99']} ms at {args.steady_rate:g}/s "
          f"(under the flood {flood_p99['one']} ms)")
    print(f"2 workers : {fig['two']['per_s']}/s, {fig['two']['cpu']} ms CPU per 1k, push p99 {fig['two']['p99']} ms at {args.steady_rate:g}/s "
          f"(under the flood {flood_p99['two']} ms)")
    print(f"SQLite x1 : {fig['sqlite']['per_s']}/s, {fig['sqlite']['cpu']} ms CPU per 1k, push p99 {fig['sqlite']['p99']} ms at {args.steady_rate:g}/s "
          f"(under the flood {flood_p99['sqlite']} ms)")
    print(f"scaling {scaling} (target >= {TARGET_SCALING}; this machine's ceiling {ceiling}: 1 worker kept "
          f"{fig['one']['busy']:.0%} of it busy), CPU per callback 2 vs 1: {drift:+.1%} "
          f"(target <= {TARGET_CPU_DRIFT:.0%}), acked {acked} archived {archived}" if drift is not None else "")
    print(json.dumps({
        "one_worker_per_s": fig["one"]["per_s"], "two_workers_per_s": fig["two"]["per_s"],
        "sqlite_per_s": fig["sqlite"]["per_s"], "scaling": scaling, "scaling_ceiling": ceiling,
        "cpu_ms_per_1k_one": fig["one"]["cpu"], "cpu_ms_per_1k_two": fig["two"]["cpu"],
        "cpu_ms_per_1k_sqlite": fig["sqlite"]["cpu"], "cpu_drift_two_vs_one": drift,
        "machine_busy_one": fig["one"]["busy"], "machine_busy_two": fig["two"]["busy"],
        "machine_busy_sqlite": fig["sqlite"]["busy"],
        "machine_busy_drain_one": fig["one"]["busy_drain"], "machine_busy_drain_two": fig["two"]["busy_drain"],
        "machine_busy_drain_sqlite": fig["sqlite"]["busy_drain"],
        "pg_cpu_ms_per_1k_one": fig["one"]["pg_cpu"], "pg_cpu_ms_per_1k_two": fig["two"]["pg_cpu"],
        # the flood alone (acknowledging, before the deferred jobs drain): hub and PostgreSQL
        "cpu_ms_per_1k_flood_one": fig["one"]["cpu_flood"], "cpu_ms_per_1k_flood_two": fig["two"]["cpu_flood"],
        "pg_cpu_ms_per_1k_flood_one": fig["one"]["pg_cpu_flood"], "pg_cpu_ms_per_1k_flood_two": fig["two"]["pg_cpu_flood"],
        "pg_xacts_per_callback_one": fig["one"]["pg_xacts"], "pg_xacts_per_callback_two": fig["two"]["pg_xacts"],
        "pg_rows_read_per_callback_one": fig["one"]["pg_rows_read"],
        "pg_rows_read_per_callback_two": fig["two"]["pg_rows_read"],
        **({f"backlog_{when}_{k}": fig[k][key] for k in results for when, key in (("at_burst_end", "backlog0"),
            ("after_traffic", "backlog1"))} if args.after_rate > 0 else {}),
        "acked": acked, "archived": archived, "p99_ms": fig["two"]["p99"],
        "p99_ms_one": fig["one"]["p99"], "p99_ms_two": fig["two"]["p99"], "p99_ms_sqlite": fig["sqlite"]["p99"],
        "steady_rate_per_s": args.steady_rate, "push_probe_lost": lost_push,
        "flood_push_p99_ms_one": flood_p99["one"], "flood_push_p99_ms_two": flood_p99["two"],
        "flood_push_p99_ms_sqlite": flood_p99["sqlite"], "flood_probe_late": flood_late, "runs": runs, "duration_s": duration, "quick": args.quick,
        "meets": meets, "cores": os.cpu_count(), "pg_transport": "tcp" if "@127.0.0.1" in args.pg or "@localhost" in args.pg
        else "unix" if "host=/" in args.pg else "other", "wall_s": round(time.perf_counter() - wall0, 1),
        "per_run": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
