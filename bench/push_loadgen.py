"""The push bench's load generator process (``python bench/push.py --role loadgen --port P``): on each
``run`` command it pre-encrypts signed WeCom text callbacks (not measured), sends them on a fixed
schedule (request i at t0 + i/rate) or as a burst, and answers with the scheduled send times and how
well it kept the schedule (send lag, ack latency, achieved rate)."""
from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import time
from collections import Counter
from urllib.parse import urlencode

from bench.harness import ACCOUNT, AES_KEY, CORP_ID, TOKEN
from bench.push_procs import jline, stdin_lines
from bench.push_report import ms, pct
from bench.push_scenario import ID_RE, MSGID_BASE, question


async def loadgen_main(args: argparse.Namespace) -> None:
    import aiohttp
    from yarl import URL

    from tests.wechat_client import PlatformSim, text_xml

    sim = PlatformSim("wecom", ACCOUNT, TOKEN, AES_KEY, CORP_ID)
    rng = random.Random(23)
    loop = asyncio.get_running_loop()
    headers = {"Content-Type": "text/xml"}
    base = f"http://127.0.0.1:{args.port}{sim.path}?"
    connector = aiohttp.TCPConnector(limit=args.conns, limit_per_host=args.conns)
    http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120))
    jline({"ready": True, "pid": os.getpid()})

    async def run(cmd: dict) -> dict:
        t = time.perf_counter()
        if cmd.get("items"):
            items = cmd["items"]
        else:
            peers, first = cmd["peers"], cmd["first_id"]
            items = [(i, peers[i % len(peers)], f"[b{i}] {question(rng)}") for i in range(first, first + cmd["count"])]
        ts = str(int(time.time()))
        reqs = []
        for mid, peer, text in items:
            xml = text_xml(CORP_ID, peer, text, MSGID_BASE[ID_RE.match(text).group(1)] + mid, create_time=int(ts))
            query, body = sim.encrypted(xml, timestamp=ts, nonce=f"{mid:08x}{rng.randrange(1 << 24):06x}")
            reqs.append((URL(base + urlencode(query), encoded=True), body))
        prep_s = time.perf_counter() - t
        n = len(reqs)
        rate = float(cmd.get("rate") or 0)
        due = [0.0] * n  # loop time the request was scheduled for
        started = [0.0] * n
        acked = [math.inf] * n
        status = [0] * n
        errors: Counter = Counter()

        async def send(i: int, when: float) -> None:
            due[i] = when
            started[i] = loop.time()
            url, body = reqs[i]
            try:
                async with http.post(url, data=body, headers=headers) as resp:
                    await resp.read()
                    status[i] = resp.status
            except Exception as exc:  # noqa: BLE001
                status[i] = -1
                errors[type(exc).__name__] += 1
            acked[i] = loop.time()

        # wall clock = loop clock + offset (the agents stamp time.time(); same machine)
        offset = time.time() - loop.time()
        if rate > 0:
            t0 = loop.time() + 0.2
            tasks = []
            for i in range(n):
                when = t0 + i / rate
                delay = when - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(loop.create_task(send(i, when)))
            await asyncio.gather(*tasks)
        else:  # burst: as fast as the connections allow
            pending = iter(range(n))

            async def worker() -> None:
                for i in pending:
                    await send(i, loop.time())

            await asyncio.gather(*(worker() for _ in range(args.conns)))
        offset = (offset + time.time() - loop.time()) / 2
        lag = sorted(s - d for s, d in zip(started, due))
        ack_ms = sorted(a - d for a, d in zip(acked, due))
        span = max(started) - min(started) if n > 1 else 0.0
        return {"n": n, "prep_s": round(prep_s, 3), "ids": [item[0] for item in items],
                "sched": [round(d + offset, 6) for d in due], "failed": [items[i][0] for i in range(n) if status[i] != 200],
                "status": dict(Counter(str(s) for s in status)), "errors": dict(errors),
                "achieved_rate": round((n - 1) / span, 1) if span > 0 else None,
                "first_send": min(started) + offset, "last_ack": max(a for a in acked if math.isfinite(a)) + offset
                if any(math.isfinite(a) for a in acked) else None,
                "lag_p50_ms": ms(pct(lag, 50)), "lag_p99_ms": ms(pct(lag, 99)), "lag_max_ms": ms(lag[-1]),
                "ack_p50_ms": ms(pct(ack_ms, 50)), "ack_p99_ms": ms(pct(ack_ms, 99)), "ack_max_ms": ms(ack_ms[-1])}

    async for cmd in stdin_lines():
        if cmd.get("cmd") == "run":
            jline(await run(cmd))
        elif cmd.get("cmd") == "quit":
            break
    await http.close()
    jline({"bye": True})
