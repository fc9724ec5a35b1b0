"""The agent probe of bench/scale.py: an agent (python-socketio) and a customer of its own.

``python bench/scale_probe.py PORT SECONDS DRAIN`` logs in as the probe agent, goes online, opens a
session as its own customer (a routing rule, ``probe_route``, sends it to the probe's group), prints
``{"ready": true}``, then runs one phase per ``go [SECONDS [DRAIN]]`` line on stdin: a callback every
50 ms carrying its send time, each answered like an agent when it arrives as ``message.new``; after
the phase (and up to DRAIN seconds for the last ones) one JSON line: sent, delivered, acked, push
latency p50/p99. ``end`` stops it.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import ACCOUNT, AES_KEY, CORP_ID, TOKEN  # noqa: E402

PROBE_USER, PROBE_PASSWORD = "probe", "probe-password"
ADMIN_USER, ADMIN_PASSWORD = "bench-admin", "bench-admin-password"
PROBE_WORD = "探针"  # in the probe customer's first message: the routing rule sends it to the probe's group


def probe_route(port: int) -> None:
    """A routing rule (through the admin API) that sends the probe's customer to the probe agent's own
    group: its session must not queue behind the thousands the load opens in the default group."""
    import urllib.request
    base = f"http://127.0.0.1:{port}"

    def call(path: str, body: dict, token: str | None = None) -> dict:
        req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"{}")

    token = call("/api/login", {"username": ADMIN_USER, "password": ADMIN_PASSWORD})["token"]
    call("/api/routing/rules", {"name": "bench probe", "conditions": [{"kind": "keywords_any", "value": [PROBE_WORD]}],
                                "actions": {"group": "probe"}}, token)



async def probe_main(port: int, seconds: float, drain: float) -> None:
    import aiohttp
    import socketio

    from tests.wechat_client import PlatformSim, text_xml
    base = f"http://127.0.0.1:{port}"
    sim = PlatformSim("wecom", ACCOUNT, TOKEN, AES_KEY, CORP_ID)
    sent: dict[str, float] = {}
    got: dict[str, float] = {}
    acked = 0
    opened = asyncio.Event()
    sio = socketio.AsyncClient(reconnection=True)

    background: set[asyncio.Task] = set()

    disconnects = 0
    closing = False

    def done(task: asyncio.Task) -> None:
        background.discard(task)
        if not task.cancelled() and task.exception() is not None:  # e.g. a reply while reconnecting
            print(f"probe: {type(task.exception()).__name__}: {task.exception()}", file=sys.stderr)

    def later(coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        background.add(task)
        task.add_done_callback(done)

    @sio.event
    async def disconnect(*why: Any) -> None:
        nonlocal disconnects
        if closing:
            return
        disconnects += 1
        print(f"probe: the agent's socket dropped ({', '.join(map(str, why)) or 'no reason given'}; reconnecting), "
              f"{disconnects} so far, at {time.time():.3f}", file=sys.stderr)

    @sio.on("message.new")
    async def on_message(data: dict) -> None:
        text = data["message"]["text"]
        if text in sent and text not in got:
            got[text] = time.time()
            # answer like an agent, so the session is not reassigned as unanswered during the run
            later(sio.call("reply", {"session_id": data["session_id"], "text": "收到"}, timeout=30))

    @sio.on("session.new")
    async def on_session(data: dict) -> None:
        later(sio.call("accept", {"session_id": data["session"]["id"]}, timeout=30))  # not requeued as unaccepted
        opened.set()

    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/api/login", json={"username": PROBE_USER, "password": PROBE_PASSWORD}) as r:
            token = (await r.json())["token"]
        await sio.connect(base, auth={"token": token}, transports=["websocket"], wait_timeout=10)
        await sio.call("status", {"status": "online"}, timeout=10)

        async def send(i: int, text: str) -> None:
            nonlocal acked
            query, body = sim.encrypted(text_xml(CORP_ID, "wmProbeCustomer", text, 9_100_000_000 + i))
            async with http.post(base + sim.path, params=query, data=body) as r:
                acked += r.status == 200 and await r.text() == "success"

        await send(0, f"你好，我想咨询一下订单（{PROBE_WORD}）")  # opens the probe's session (its own group)
        await asyncio.wait_for(opened.wait(), 30)
        print(json.dumps({"ready": True}), flush=True)
        loop = asyncio.get_running_loop()
        i = 0
        # one phase per "go" line from the driver (the flood, then the steady load); "end" stops
        while (command := (await loop.run_in_executor(None, sys.stdin.readline)).split())[:1] == ["go"]:
            phase_seconds = float(command[1]) if len(command) > 1 else seconds
            phase_drain = float(command[2]) if len(command) > 2 else drain
            sent.clear()
            got.clear()
            t0, tasks = loop.time(), []
            while loop.time() - t0 < phase_seconds:
                i += 1
                text = f"[p{i}] 还在吗"
                sent[text] = time.time()
                tasks.append(asyncio.create_task(send(i, text)))
                await asyncio.sleep(0.05)
            await asyncio.gather(*tasks, return_exceptions=True)
            deadline = loop.time() + phase_drain
            while len(got) < len(sent) and loop.time() < deadline:
                await asyncio.sleep(0.1)
            lat = sorted((got[t] - sent[t]) * 1000 for t in got)
            print(json.dumps({"sent": len(sent), "delivered": len(got), "acked": acked, "p50_ms": pct(lat, 0.5),
                              "p99_ms": pct(lat, 0.99) if len(got) == len(sent) else None}), flush=True)
    closing = True
    await sio.disconnect()


def pct(vals: list[float], q: float) -> float | None:
    if not vals:
        return None
    return round(vals[min(len(vals) - 1, int(q * len(vals)))], 1)


if __name__ == "__main__":
    asyncio.run(probe_main(int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])))
