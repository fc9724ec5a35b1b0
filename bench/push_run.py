"""The push bench's orchestrator: starts the platform stand-in, the hub, the load generator and the
agents processes, runs the new-session phase and the rate sweep (see bench/push.py for what is
measured), and hands the figures to push_report."""
from __future__ import annotations

import argparse
import asyncio
import math
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench.harness import clean_tmp, free_port, kill_group, start, stop, wait_healthy
from bench.push_procs import Child, CpuMeter, end_profile, profile_hub
from bench.push_report import code_state, db_counts, ms, pct, report
from bench.push_scenario import PASSWORD, TARGET_P99_MS, TARGET_RATE, prepare_db, write_config

ENTRY = Path(__file__).resolve().with_name("push.py")  # the helper processes run push.py --role ...


async def orchestrate(args: argparse.Namespace) -> None:
    wall0 = time.perf_counter()
    quick = args.quick
    agents_n = args.agents or (50 if quick else 200)
    customers = args.customers or agents_n * 4
    if customers > agents_n * args.cap:
        raise SystemExit("--customers must be <= agents x cap (every customer needs an assigned session)")
    duration = args.duration or (4.0 if quick else 10.0)
    rates = [int(r) for r in (args.rates or ("500,1000" if quick else "250,500,1000,1500,2000,3000")).split(",")]
    refine = args.refine if args.refine is not None else (0 if quick else 2)
    procs_n = max(1, min(args.agent_procs, agents_n))
    settle = 2.0 if quick else 3.0

    code = code_state()
    load0 = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="bench-push-"))
    db_path = tmp / "hub.db"
    db_url = f"sqlite+aiosqlite:///{db_path}"
    config = tmp / "hub.toml"
    write_config(config)
    py = sys.executable
    me = str(ENTRY)
    hub = standin = None
    children: list[Child] = []
    spies: list[subprocess.Popen] = []
    try:
        env = dict(os.environ)
        env.pop("HUB_DATABASE_URL", None)
        env["HUB_CONFIG"] = str(config)
        env["HUB_CALLBACK_MAX_SKEW"] = "86400"  # bodies are signed ahead of sending
        env["HUB_LOG_LEVEL"] = "WARNING"
        env["PYTHONUNBUFFERED"] = "1"

        standin_port, hub_port = free_port(), free_port()
        standin = start([py, me, "--role", "standin", "--port", str(standin_port)], tmp / "standin.log", env)
        t = time.perf_counter()
        names, new_items = await prepare_db(db_url, agents_n, args.cap, customers, args.seed)
        setup_s = time.perf_counter() - t
        api = f"http://127.0.0.1:{standin_port}"
        hub_cmd = args.hub_cmd.split() if args.hub_cmd else [py, "-m", "hub"]
        hub = start([*hub_cmd, "serve", "--db", db_url, "--port", str(hub_port), "--wecom-api-base", api,
                     "--oa-api-base", api], tmp / "hub.log", env)
        await asyncio.to_thread(wait_healthy, hub_port, hub, tmp / "hub.log")
        await asyncio.to_thread(wait_healthy, standin_port, standin, tmp / "standin.log", "/cgi-bin/gettoken")
        print(f"hub     : :{hub_port} pid {hub.pid} (SQLite {db_path}); stand-in :{standin_port}; "
              f"setup {setup_s:.1f} s, hub up at {time.perf_counter() - wall0:.1f} s; code {code['commit']}"
              f"{' + local changes in ' + ', '.join(code['dirty']) if code['dirty'] else ''}; "
              f"{os.cpu_count()} CPUs, load average {load0[0]:.2f}")

        loadgen = await Child.spawn("loadgen", [py, me, "--role", "loadgen", "--port", str(hub_port),
                                                "--conns", str(args.conns)], tmp / "loadgen.log", env)
        children.append(loadgen)
        split = [names[i::procs_n] for i in range(procs_n)]
        agent_procs = []
        for k, part in enumerate(split):
            ch = await Child.spawn(f"agents{k}", [py, me, "--role", "agents", "--port", str(hub_port), "--users",
                                                  ",".join(part), "--password", PASSWORD], tmp / f"agents{k}.log", env)
            children.append(ch)
            agent_procs.append(ch)
        lg_ready = await loadgen.read(60)
        ready = [await ch.read(120) for ch in agent_procs]
        print(f"agents  : {sum(r['ready'] for r in ready)} connected and online in {procs_n} process(es); "
              + "; ".join(f"login {r['login_s']:.1f} s, connect {r['connect_s']:.1f} s, online {r['online_s']:.1f} s"
                          for r in ready))
        pids = {"hub": [hub.pid], "loadgen": [lg_ready["pid"]], "agents": [r["pid"] for r in ready],
                "standin": [standin.pid]}

        async def counts(min_id: int = 0) -> dict:
            got = [await ch.call({"cmd": "counts", "min_id": min_id}) for ch in agent_procs]
            return {"msgs": sum(g["msgs"] for g in got), "sess": sum(g["sess"] for g in got),
                    "connected": sum(g["connected"] for g in got),
                    "other": sum((Counter(g["other"]) for g in got), Counter())}

        async def dump() -> tuple[list, list]:
            m, s = [], []
            for ch in agent_procs:
                d = await ch.call({"cmd": "dump"})
                m += d["msgs"]
                s += d["sess"]
            return m, s

        async def wait_for(key: str, want: int, min_id: int, limit: float) -> float:
            """Poll until the agents hold ``want`` receipts, or nothing arrives for ``settle`` s, or ``limit``."""
            t0 = time.perf_counter()
            last, last_change = -1, t0
            while True:
                c = await counts(min_id)
                now = time.perf_counter()
                if c[key] >= want:
                    return now - t0
                if c[key] != last:
                    last, last_change = c[key], now
                elif now - last_change > settle and now - t0 > settle:
                    return now - t0
                if now - t0 > limit:
                    return now - t0
                await asyncio.sleep(0.1)

        # ---- phase 1: new customers -> bots -> routing -> session.new ------------------------
        warm_n = max(10, customers // 20)
        await loadgen.call({"cmd": "run", "rate": 50, "items": new_items[:warm_n]}, timeout=120)
        await wait_for("sess", warm_n, 0, 30)
        spy = None
        if args.profile:
            spy = profile_hub(hub.pid, Path(args.profile) / "push-hub-new-sessions.txt", args, spies)
            await asyncio.sleep(1.0)
        cpu = CpuMeter(pids)
        burst = await loadgen.call({"cmd": "run", "rate": 0, "items": new_items[warm_n:]}, timeout=300)
        await wait_for("sess", customers, 0, 60 if quick else 120)
        new_cpu = cpu.done()
        if spy is not None:
            await end_profile(spy, spies)
        _, sess = await dump()
        got = {i: t for i, t in sess}
        sched = dict(zip(burst["ids"], burst["sched"]))
        burst_recv = sorted(t for i, t in got.items() if i in sched)
        new_lat = sorted([got[i] - s for i, s in sched.items() if i in got] + [math.inf] * sum(i not in got for i in sched))
        new_span = (burst_recv[-1] - burst["first_send"]) if burst_recv else math.inf
        new_rate = len(burst_recv) / new_span if burst_recv else 0.0
        ack_span = burst["last_ack"] - burst["first_send"]
        print(f"new     : {len(got)}/{customers} sessions assigned ({warm_n} paced warm-up + {burst['n']} burst); "
              f"burst acked at {burst['n'] / ack_span:.0f}/s ({ack_span:.2f} s), session.new at {new_rate:.0f}/s "
              f"({new_span:.2f} s), latency p50={ms(pct(new_lat, 50))} ms p99={ms(pct(new_lat, 99))} ms; "
              f"CPU% {new_cpu}")
        peers = [peer for idx, peer, _ in new_items if idx in got]
        if len(peers) < customers:
            print(f"WARNING : only {len(peers)} customers got a session; the sweep uses those")
        if not peers:
            raise SystemExit("no sessions were assigned")

        # ---- phase 2: steady rates ------------------------------------------------------------
        receipts: dict[int, float] = {}
        counted: set[int] = set()  # ids counted as delivered by their step
        dup = 0
        next_id = 1
        results: list[dict] = []
        total_sent = total_ok = 0

        async def step(rate: int) -> dict:
            nonlocal next_id, dup, total_sent, total_ok
            count = max(1, int(rate * duration))
            first = next_id
            next_id += count
            spy = None
            if args.profile and rate == args.profile_rate and not any(r.get("profile") for r in results):
                out = Path(args.profile) / f"push-hub-{rate}.txt"
                spy = profile_hub(hub.pid, out, args, spies)
                await asyncio.sleep(1.0)
            cpu = CpuMeter(pids)
            res = await loadgen.call({"cmd": "run", "rate": rate, "first_id": first, "count": count, "peers": peers},
                                     timeout=duration * 10 + 120)
            cpu_pct = cpu.done()
            if spy is not None:
                await end_profile(spy, spies)
            ok = count - len(res["failed"])
            drain_s = await wait_for("msgs", ok, first, max(30.0, duration * 6))
            msgs, _ = await dump()
            for i, t in msgs:
                if i in receipts:
                    dup += 1
                else:
                    receipts[i] = t
            failed = set(res["failed"])
            lat = []
            lost = 0
            for i, s in zip(res["ids"], res["sched"]):
                if i in failed:
                    continue
                if i in receipts:
                    lat.append(receipts[i] - s)
                    counted.add(i)
                else:
                    lost += 1
            lat.sort()
            delivered = len(lat)
            full = lat + [math.inf] * lost
            total_sent += count
            total_ok += ok
            r = {"rate": rate, "sent": count, "acked": ok, "delivered": delivered,
                 "p50_ms": ms(pct(full, 50)), "p90_ms": ms(pct(full, 90)), "p99_ms": ms(pct(full, 99)),
                 "max_ms": ms(full[-1]) if full else None,
                 "achieved_rate": res["achieved_rate"], "send_lag_p99_ms": res["lag_p99_ms"],
                 "send_lag_max_ms": res["lag_max_ms"], "ack_p50_ms": res["ack_p50_ms"], "ack_p99_ms": res["ack_p99_ms"],
                 "drain_s": round(drain_s, 2), "cpu_pct": cpu_pct, "http": res["status"], "errors": res["errors"],
                 "prep_s": res["prep_s"]}
            r["ok"] = (delivered == count and r["p99_ms"] is not None and r["p99_ms"] <= TARGET_P99_MS)
            if spy is not None:
                r["profile"] = str(out)
            results.append(r)
            print(f"rate {rate:5d}/s: sent={count} acked={ok} delivered={delivered} p50={r['p50_ms']} ms "
                  f"p90={r['p90_ms']} ms p99={r['p99_ms']} ms max={r['max_ms']} ms -> {'PASS' if r['ok'] else 'FAIL'}; "
                  f"sender {res['achieved_rate']}/s (lag p99 {res['lag_p99_ms']} ms, max {res['lag_max_ms']} ms), "
                  f"ack p50/p99 {res['ack_p50_ms']}/{res['ack_p99_ms']} ms, drained in {drain_s:.1f} s; CPU% {cpu_pct}"
                  + (f"\n  profile: {out}" if spy is not None else ""))
            await asyncio.sleep(0.5 if quick else 1.0)
            return r

        # ascending; stop at the first failure once the target rate has been tested (quick: all rates)
        last_pass = first_fail = None
        for rate in rates:
            r = await step(rate)
            if r["ok"]:
                last_pass = rate if last_pass is None else max(last_pass, rate)
            else:
                first_fail = rate if first_fail is None else min(first_fail, rate)
                if not quick and rate >= TARGET_RATE:
                    break
        for _ in range(refine):  # bisect between the last pass and the first failure (or halve below a failure)
            if first_fail is None or (last_pass is not None and last_pass > first_fail):
                break
            lo = last_pass or 0
            mid = int(round((lo + first_fail) / 2 / 50) * 50) if last_pass else max(50, first_fail // 2 // 50 * 50)
            if mid in (lo, first_fail) or (last_pass and first_fail - last_pass <= 100) or mid < 50:
                break
            if (await step(mid))["ok"]:
                last_pass = mid
            else:
                first_fail = mid

        # ---- summary -------------------------------------------------------------------------
        end_counts = await counts()
        for i, _t in (await dump())[0]:  # stragglers that arrived after their step was accounted
            if i in receipts:
                dup += 1
            else:
                receipts[i] = _t
        late = len(receipts) - len(counted)
        for ch in list(children):
            await ch.close()
            children.remove(ch)
        hub_rc = stop(hub, 20)
        stop(standin)
        db = db_counts(db_path)
        hub_errors = [ln for ln in (tmp / "hub.log").read_text(errors="replace").splitlines()
                      if " ERROR " in ln or "Traceback" in ln]
        report(args, results, agents_n=agents_n, customers=customers, procs_n=procs_n, duration=duration,
               quick=quick, wall0=wall0, code=code, load0=load0, got=got, new_rate=new_rate, new_lat=new_lat,
               new_cpu=new_cpu, burst=burst, ack_span=ack_span, total_sent=total_sent, total_ok=total_ok,
               late=late, dup=dup, db=db, end_counts=end_counts, hub_rc=hub_rc, hub_errors=hub_errors)
    finally:
        for spy in spies:
            kill_group(spy)
        for ch in children:
            try:
                await asyncio.wait_for(ch.close(), 15)
            except Exception:  # noqa: BLE001
                kill_group(ch.proc)
        stop(hub, 10)
        stop(standin, 10)
        clean_tmp(tmp, args.keep)
