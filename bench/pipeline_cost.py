"""CPU cost of the work after the acknowledgement: one message through the pipeline to an agent.

One process runs a hub (python -m hub's app, on a fresh SQLite file, or --db URL), the platform
stand-in (tests/platform_standin.py) and the agents (python-socketio clients over WebSocket,
logged in over HTTP, online). Messages are handed to the archive writer directly (the callback's
HTTP, signature and decryption are bench/callbacks.py's subject), so what is measured is what
follows a callback's 200: the pipeline pass, identification, bots, routing or the open session,
the push to the agent's socket, the search indexer and the job's deletion. Between the phases it
measures the CPU the process spends idle (nothing coming in) with the agents connected.

Two phases, each timed by the process's CPU time (all threads: the agents' clients are in it too,
the same work in every run, so comparisons hold) and by wall time until every event arrived:

1. new sessions: ``--customers`` first messages (each opens a session, routed to an agent);
2. existing sessions: ``--messages`` follow-ups round robin over those customers, handed over in
   chunks of ``--chunk`` (each chunk waits for its pushes: a steady load, not a flood).

``--profile PREFIX`` writes a cProfile of each phase to PREFIX-new.prof and PREFIX-followup.prof
(call counts are exact; times are inflated).
Prints human-readable lines, then one JSON line last.

    python bench/pipeline_cost.py            # 20 agents, 100 customers, 3,000 follow-ups
    python bench/pipeline_cost.py --quick    # 10 agents, 50 customers, 1,000 follow-ups (< 45 s)
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import socketio  # noqa: E402
from aiohttp import web  # noqa: E402

from hub.app import HUB, create_app  # noqa: E402
from hub.archive.store import ToArchive  # noqa: E402
from hub.callbacks import xmlcodec  # noqa: E402
from hub.config import AccountConfig, HubConfig  # noqa: E402
from hub.messages import from_xml_fields  # noqa: E402
from hub.users import add_user  # noqa: E402
from tests.platform_standin import Standin  # noqa: E402
from tests.wechat_client import text_xml  # noqa: E402

ACCOUNT = AccountConfig(id="bench", platform="wecom", name="Bench Corp", token="benchToken",
                        encoding_aes_key="k3Xq9vB2mN7pR4tY8wZ1cF6hJ0lD5sG3aE2uI9oP7yT", receive_id="wwbench01",
                        secret="bench-secret")
TEXTS = ("这个面霜敏感肌能用吗", "我的快递到哪了", "可以开发票吗", "尺码偏大还是偏小", "好的谢谢", "在吗",
         "订单号 2024061812345 帮我看下", "什么时候发货呀", "赠品有哪些", "怎么退换货")


async def start_site(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


class Agents:
    """Connected agents; counts session.new / message.new arrivals."""

    def __init__(self) -> None:
        self.clients: list[socketio.AsyncClient] = []
        self.sessions = 0
        self.messages = 0
        self.arrived = asyncio.Event()

    async def connect(self, url: str, tokens: list[str]) -> None:
        for token in tokens:
            sio = socketio.AsyncClient(reconnection=False)

            async def on_session(_data: object) -> None:
                self.sessions += 1
                self.arrived.set()

            async def on_message(_data: object) -> None:
                self.messages += 1
                self.arrived.set()

            sio.on("session.new", on_session)
            sio.on("message.new", on_message)
            await sio.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
            assert (await sio.call("status", {"status": "online"}, timeout=10))["ok"]
            self.clients.append(sio)

    async def until(self, what: str, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while getattr(self, what) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {getattr(self, what)} of {count} {what} arrived in {timeout:.0f} s")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 1.0)
            except asyncio.TimeoutError:
                pass

    async def close(self) -> None:
        for sio in self.clients:
            await sio.disconnect()


def message(seq: int, customer: str, text: str) -> ToArchive:
    xml = text_xml(ACCOUNT.receive_id, customer, text, 8_100_000_000_000_000_000 + seq, create_time=int(time.time()))
    raw = xml if isinstance(xml, bytes) else xml.encode()
    return ToArchive(ACCOUNT.id, from_xml_fields("wecom", xmlcodec.parse(raw), raw.decode()))


async def run(args: argparse.Namespace, db_url: str) -> dict:
    standin = Standin()
    standin_runner, standin_url = await start_site(standin.app())
    config = HubConfig(database_url=db_url, wecom_api_base=standin_url, oa_api_base=standin_url,
                       accounts=(ACCOUNT,), settings=(("queue_notify", False), ("default_group", "g1"),
                                                      ("accept_timeout", 3600), ("unanswered_minutes", 0)))
    app = create_app(config)
    runner, url = await start_site(app)
    hub = app[HUB]
    agents = Agents()
    try:
        tokens = []
        async with aiohttp.ClientSession() as http:
            for i in range(args.agents):
                name = f"agent{i:03d}"
                await add_user(hub.db, hub.clock, username=name, password=f"{name}-pw", role="agent", groups=["g1"],
                               cap=min(100, args.customers))
                async with http.post(f"{url}/api/login", json={"username": name, "password": f"{name}-pw"}) as r:
                    tokens.append((await r.json())["token"])
        await hub.sessions.load()
        await agents.connect(url, tokens)
        customers = [f"wmCost{i:05d}" for i in range(args.customers)]
        seq = 0

        # phase 1: new sessions
        profiler = cProfile.Profile() if args.profile else None
        if profiler:
            profiler.enable()
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        for start in range(0, len(customers), args.chunk):
            batch = []
            for c in customers[start:start + args.chunk]:
                seq += 1
                batch.append(message(seq, c, f"你好，{TEXTS[seq % len(TEXTS)]}"))
            await asyncio.gather(*(hub.writer.save_one(m) for m in batch))
            await agents.until("sessions", start + len(batch))
        new_cpu, new_wall = time.process_time() - t_cpu, time.perf_counter() - t_wall
        if profiler:
            profiler.disable()
            profiler.dump_stats(f"{args.profile}-new.prof")

        # idle: what the hub spends with nothing coming in (timers, pings, background loops)
        await asyncio.sleep(1.0)  # let the first phase's stragglers (job deletes, indexer) settle
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        await asyncio.sleep(args.idle)
        idle_share = (time.process_time() - t_cpu) / (time.perf_counter() - t_wall)

        # phase 2: follow-ups in open sessions
        profiler = cProfile.Profile() if args.profile else None
        t_cpu, t_wall = time.process_time(), time.perf_counter()
        if profiler:
            profiler.enable()
        sent = 0
        while sent < args.messages:
            batch = []
            for _ in range(min(args.chunk, args.messages - sent)):
                seq += 1
                batch.append(message(seq, customers[sent % len(customers)], TEXTS[seq % len(TEXTS)]))
                sent += 1
            await asyncio.gather(*(hub.writer.save_one(m) for m in batch))
            await agents.until("messages", sent)
        if profiler:
            profiler.disable()
            profiler.dump_stats(f"{args.profile}-followup.prof")
        old_cpu, old_wall = time.process_time() - t_cpu, time.perf_counter() - t_wall
        return {"new_sessions": args.customers, "new_cpu_ms_per_session": round(new_cpu / args.customers * 1000, 3),
                "new_wall_per_s": round(args.customers / new_wall, 1),
                "messages": args.messages, "cpu_us_per_message": round(old_cpu / args.messages * 1e6, 1),
                "wall_messages_per_s": round(args.messages / old_wall, 1), "idle_cpu_share": round(idle_share, 4)}
    finally:
        await agents.close()
        await runner.cleanup()
        await standin_runner.cleanup()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 agents, 50 customers, 1,000 follow-ups")
    ap.add_argument("--agents", type=int)
    ap.add_argument("--customers", type=int)
    ap.add_argument("--messages", type=int)
    ap.add_argument("--chunk", type=int, default=50, help="messages handed over at once")
    ap.add_argument("--runs", type=int, help="repetitions (fresh database each; medians reported)")
    ap.add_argument("--idle", type=float, default=3.0, help="seconds of idle measured between the phases")
    ap.add_argument("--db", help="database URL (default: a fresh SQLite file per run)")
    ap.add_argument("--profile", metavar="PREFIX", help="cProfile of each phase (last run): PREFIX-new.prof, "
                    "PREFIX-followup.prof")
    args = ap.parse_args()
    args.agents = args.agents or (10 if args.quick else 20)
    args.customers = args.customers or (50 if args.quick else 100)
    args.messages = args.messages or (1000 if args.quick else 3000)
    runs = args.runs or (1 if args.quick else 3)
    os.environ.setdefault("HUB_LOG_LEVEL", "WARNING")
    results = []
    for r in range(runs):
        with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
            db_url = args.db or f"sqlite+aiosqlite:///{tmp}/hub.db"
            res = asyncio.run(run(args, db_url))
        results.append(res)
        print(f"run {r + 1}/{runs}: new session {res['new_cpu_ms_per_session']:.2f} ms CPU "
              f"({res['new_wall_per_s']:.0f}/s); follow-up {res['cpu_us_per_message']:.0f} us CPU "
              f"({res['wall_messages_per_s']:.0f}/s); idle {res['idle_cpu_share']:.1%} of a core")
    med = lambda k: sorted(r[k] for r in results)[len(results) // 2]  # noqa: E731
    out = {k: med(k) for k in ("new_cpu_ms_per_session", "new_wall_per_s", "cpu_us_per_message",
                               "wall_messages_per_s", "idle_cpu_share")}
    out.update(runs=runs, agents=args.agents, customers=args.customers, messages=args.messages,
               quick=args.quick, runs_cpu_us_per_message=[r["cpu_us_per_message"] for r in results])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
