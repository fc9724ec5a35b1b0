"""Benchmark SLA alert latency: a deadline passes -> ``alert.raised`` arrives at a supervisor's Socket.IO client.

One hub process (``python -m hub serve``) on a fresh SQLite file with three first-response SLA rules
(``--offset`` + 1, 2 and 3 s) and no agents online, so every session stays unanswered and each one has
three staggered deadlines. The platform APIs are the stand-in of bench/harness.py in its own process.
The bench process logs in a supervisor, connects a real python-socketio client, then sends
``--sessions`` encrypted WeCom text callbacks from new customers (paced over ``--spread`` seconds,
each asks for a human). With ``--offset 0`` the deadlines fall while the burst of new sessions is still
being handled (bots, routing: the hub's writer and CPU are busy); by default (``--offset 5``) they fall
after it, ~200-300 alerts/s for about ``spread + 2`` seconds. For every ``alert.raised`` it records ``time.time()`` on arrival;

    lateness = arrival - alert.deadline      (same machine, same clock)

is what a supervisor sees: the timer's own lateness plus storing the alert and the push. It also
reports the hub-side part (``raised_at - deadline``) and checks that every alert arrived once and
was stored (GET /api/alerts). The target is lateness p99 < 1000 ms.

    python bench/alerts.py               # 200 sessions over 2 s -> 600 alerts
    python bench/alerts.py --offset 0    # ... with the deadlines inside the burst of new sessions
    python bench/alerts.py --quick       # 100 sessions over 1 s -> 300 alerts (< 45 s)

Prints human-readable lines, then one JSON line last.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    ACCOUNT, AES_KEY, CORP_ID, TOKEN, clean_tmp, cpu_seconds, free_port, standin_server, start, stop, wait_healthy)

RULE_SECONDS = (1, 2, 3)
TARGET_MS = 1000.0
PASSWORD = "bench-supervisor-2026"


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))]


def ms(x: float | None) -> float | None:
    return None if x is None else round(x * 1000, 1)




def write_config(path: Path) -> None:
    path.write_text(f"""# bench/alerts.py
[settings]
default_group = "bench"
queue_notify = false
accept_timeout = 3600
unanswered_minutes = 0

[[accounts]]
id = "{ACCOUNT}"
platform = "wecom"
name = "Alert Bench Corp"
token = "{TOKEN}"
encoding_aes_key = "{AES_KEY}"
receive_id = "{CORP_ID}"
secret = "bench-corp-secret"
""", encoding="utf-8")


async def prepare_db(db_url: str, offset: float) -> None:
    """The supervisor and the SLA rules, written before the hub starts (the hub derives its timers at start)."""
    from hub.clock import Clock
    from hub.db import Database
    from hub.models import SlaRuleRow
    from hub.supervisor import sla_rules
    from hub.users import add_user

    db = Database(db_url)
    await db.create_schema()
    clock = Clock()
    await add_user(db, clock, username="sup", password=PASSWORD, role="supervisor", groups=["bench"], cap=0)
    async with db.write() as conn:
        for s in RULE_SECONDS:
            rule = sla_rules.parse_rule({"kind": "first_reply", "seconds": offset + s, "name": f"首响 {offset + s:g} 秒"})
            await conn.execute(SlaRuleRow.__table__.insert().values(
                name=rule.name, enabled=True, updated_at=clock.now(),
                data=json.dumps(sla_rules.storable(rule), ensure_ascii=False)))
    await db.dispose()


async def run(args: argparse.Namespace) -> None:
    import aiohttp
    import socketio

    from tests.wechat_client import PlatformSim, text_xml

    wall0 = time.perf_counter()
    sessions = args.sessions or (100 if args.quick else 200)
    spread = args.spread or (1.0 if args.quick else 2.0)
    tmp = Path(tempfile.mkdtemp(prefix="bench-alerts-"))
    db_url = f"sqlite+aiosqlite:///{tmp / 'hub.db'}"
    config = tmp / "hub.toml"
    write_config(config)
    env = dict(os.environ, HUB_CONFIG=str(config), HUB_LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1",
               HUB_CALLBACK_MAX_SKEW="86400")
    env.pop("HUB_DATABASE_URL", None)
    py, me = sys.executable, str(Path(__file__).resolve())
    hub = standin = None
    load0 = os.getloadavg()[0]
    try:
        standin_port, hub_port = free_port(), free_port()
        standin = start([py, me, "--role", "standin", "--port", str(standin_port)], tmp / "standin.log", env)
        await prepare_db(db_url, args.offset)
        api = f"http://127.0.0.1:{standin_port}"
        hub = start([py, "-m", "hub", "serve", "--db", db_url, "--port", str(hub_port), "--wecom-api-base", api,
                     "--oa-api-base", api], tmp / "hub.log", env)
        await asyncio.to_thread(wait_healthy, hub_port, hub, tmp / "hub.log")
        await asyncio.to_thread(wait_healthy, standin_port, standin, tmp / "standin.log", "/cgi-bin/gettoken")
        base = f"http://127.0.0.1:{hub_port}"
        arrivals: dict[int, tuple[float, dict]] = {}
        duplicates = 0
        async with aiohttp.ClientSession() as http:
            async with http.post(base + "/api/login", json={"username": "sup", "password": PASSWORD}) as resp:
                token = (await resp.json())["token"]
            sio = socketio.AsyncClient(reconnection=False)

            @sio.on("alert.raised")
            async def raised(alert: dict) -> None:
                nonlocal duplicates
                now = time.time()
                if alert["id"] in arrivals:
                    duplicates += 1
                else:
                    arrivals[alert["id"]] = (now, alert)

            await sio.connect(base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
            sim = PlatformSim("wecom", ACCOUNT, TOKEN, AES_KEY, CORP_ID)
            bodies = []
            for i in range(sessions):  # encrypted ahead of time: not measured
                xml = text_xml(CORP_ID, f"wmAlert{i:05d}", f"转人工，订单{i:05d}有问题", 50_000 + i, int(time.time()))
                bodies.append(sim.encrypted(xml))
            t0 = time.time()
            cpu0 = cpu_seconds(hub.pid)

            async def send(i: int, query: dict, body: bytes) -> bool:  # on schedule, not after the previous ack
                await asyncio.sleep(max(0.0, t0 + spread * i / sessions - time.time()))
                async with http.post(base + sim.path, params=query, data=body) as resp:
                    return resp.status == 200

            acked = sum(await asyncio.gather(*(send(i, q, b) for i, (q, b) in enumerate(bodies))))
            sent_s = time.time() - t0
            want = sessions * len(RULE_SECONDS)
            limit = time.time() + spread + args.offset + max(RULE_SECONDS) + 20
            while len(arrivals) < want and time.time() < limit:
                await asyncio.sleep(0.1)
            window_s = time.time() - t0
            hub_cpu_pct = round(100 * (cpu_seconds(hub.pid) - cpu0) / window_s, 1)
            load_mid = os.getloadavg()[0]
            await asyncio.sleep(0.5)  # would-be duplicates
            async with http.get(base + "/api/alerts?state=open&limit=1000",
                                headers={"Authorization": f"Bearer {token}"}) as resp:
                stored = len((await resp.json())["alerts"])
            await sio.disconnect()
        stop(hub, 20)
        stop(standin, 10)
        late = [t - a["deadline"] for t, a in arrivals.values()]
        hub_side = [a["raised_at"] - a["deadline"] for _, a in arrivals.values()]
        per_rule = {}
        for s in RULE_SECONDS:
            vals = [t - a["deadline"] for t, a in arrivals.values() if a["detail"].get("seconds") == args.offset + s]
            per_rule[f"{s}s"] = {"alerts": len(vals), "p50_ms": ms(pct(vals, 50)), "p99_ms": ms(pct(vals, 99))}
        early = sum(1 for x in late if x < 0)
        p99 = pct(late, 99)
        ok = len(arrivals) == want and stored == want and duplicates == 0 and p99 is not None and p99 * 1000 < TARGET_MS
        hub_errors = [ln for ln in (tmp / "hub.log").read_text(errors="replace").splitlines()
                      if " ERROR " in ln or "Traceback" in ln]
        print(f"setup   : {sessions} sessions sent over {sent_s:.2f} s ({acked} acked), rules offset {args.offset:g} + "
              f"{RULE_SECONDS} s "
              f"-> {want} deadlines; load average {load0:.2f}, {os.cpu_count()} CPUs")
        print(f"arrived : {len(arrivals)}/{want} alert.raised, stored open {stored}, duplicates {duplicates}, "
              f"before the deadline {early}")
        print(f"lateness: deadline -> received p50 {ms(pct(late, 50))} ms, p90 {ms(pct(late, 90))} ms, "
              f"p99 {ms(p99)} ms, max {ms(max(late) if late else None)} ms; hub side (raised_at - deadline) "
              f"p50 {ms(pct(hub_side, 50))} ms, p99 {ms(pct(hub_side, 99))} ms")
        print(f"per rule: {per_rule}")
        print(f"hub CPU : {hub_cpu_pct}% of one core over the {window_s:.1f} s run (load average then {load_mid:.2f} "
              f"on {os.cpu_count()} CPUs: other processes share the machine)")
        print(f"target  : p99 < {TARGET_MS:g} ms, every alert once and stored: {'yes' if ok else 'NO'}")
        if hub_errors:
            print(f"hub log : {len(hub_errors)} error lines, first: {hub_errors[0]}")
        print(json.dumps({
            "sessions": sessions, "alerts_expected": want, "alerts_received": len(arrivals), "alerts_stored": stored,
            "duplicates": duplicates, "early": early, "lateness_p50_ms": ms(pct(late, 50)),
            "lateness_p90_ms": ms(pct(late, 90)), "lateness_p99_ms": ms(p99),
            "lateness_max_ms": ms(max(late) if late else None), "hub_side_p50_ms": ms(pct(hub_side, 50)),
            "hub_side_p99_ms": ms(pct(hub_side, 99)), "per_rule": per_rule, "target_p99_ms": TARGET_MS,
            "target_met": ok, "spread_s": spread, "offset_s": args.offset, "hub_error_lines": len(hub_errors), "quick": args.quick,
            "hub_cpu_pct": hub_cpu_pct, "run_s": round(window_s, 1), "loadavg_mid": round(load_mid, 2),
            "loadavg_start": round(load0, 2), "loadavg_end": round(os.getloadavg()[0], 2),
            "wall_s": round(time.perf_counter() - wall0, 1)}, ensure_ascii=False))
    finally:
        stop(hub, 10)
        stop(standin, 10)
        clean_tmp(tmp, args.keep)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100 sessions over 1 s (< 45 s)")
    ap.add_argument("--sessions", type=int, help="new sessions (default 200, quick 100)")
    ap.add_argument("--spread", type=float, help="seconds the sessions are sent over (default 2, quick 1)")
    ap.add_argument("--offset", type=float, default=5.0,
                    help="seconds added to the 1/2/3 s rules (default 5: after the burst; 0: inside it)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (DB, config, logs)")
    ap.add_argument("--role", choices=["standin"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "standin":
        standin_server(args.port)
    else:
        asyncio.run(run(args))


if __name__ == "__main__":
    main()
