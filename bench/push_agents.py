"""The push bench's agents process (``python bench/push.py --role agents --port P --users a,b,c``):
python-socketio clients that log in over HTTP, connect over WebSocket, go online and record the
receive time of every ``session.new`` and inbound ``message.new`` by bench id; the orchestrator
reads them with the ``counts`` / ``dump`` commands on stdin."""
from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter

from bench.push_procs import jline, stdin_lines
from bench.push_scenario import ID_RE


async def agents_main(args: argparse.Namespace) -> None:
    import aiohttp
    import socketio

    base = f"http://127.0.0.1:{args.port}"
    users = args.users.split(",")
    msgs: list[tuple[int, float]] = []  # (bench id, receive time) of inbound message.new
    sess: list[tuple[int, float]] = []  # (bench id of the first message, receive time) of session.new
    other: Counter = Counter()
    clients: list = []

    def attach(sio) -> None:  # noqa: ANN001
        @sio.on("message.new")
        async def on_message(data) -> None:  # noqa: ANN001
            t = time.time()
            m = (data or {}).get("message") or {}
            hit = ID_RE.match(m.get("text") or "")
            if m.get("direction") == "in" and hit and hit.group(1) == "b":
                msgs.append((int(hit.group(2)), t))
            else:
                other["message.new(other)"] += 1

        @sio.on("session.new")
        async def on_session(data) -> None:  # noqa: ANN001
            t = time.time()
            hit = ID_RE.match(((data or {}).get("session") or {}).get("first_message") or "")
            if hit and hit.group(1) == "n":
                sess.append((int(hit.group(2)), t))
            else:
                other["session.new(other)"] += 1

        @sio.on("disconnect")
        async def on_disconnect(*_a) -> None:  # noqa: ANN002
            other["disconnect"] += 1

        @sio.on("*")
        async def on_any(event, *_a) -> None:  # noqa: ANN001, ANN002
            other[event] += 1

    t0 = time.perf_counter()
    tokens: dict[str, str] = {}
    async with aiohttp.ClientSession() as http:
        for u in users:
            async with http.post(f"{base}/api/login", json={"username": u, "password": args.password}) as r:
                body = await r.json()
                if r.status != 200:
                    raise SystemExit(f"login {u}: {r.status} {body}")
                tokens[u] = body["token"]
    login_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    gate = asyncio.Semaphore(16)

    async def connect(u: str):  # noqa: ANN202
        sio = socketio.AsyncClient(reconnection=False)
        attach(sio)
        async with gate:
            await sio.connect(base, auth={"token": tokens[u]}, transports=["websocket"], wait_timeout=20)
        return sio

    clients = list(await asyncio.gather(*(connect(u) for u in users)))
    connect_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for sio in clients:
        ack = await sio.call("status", {"status": "online"}, timeout=30)
        if not ack.get("ok"):
            raise SystemExit(f"status online refused: {ack}")
    online_s = time.perf_counter() - t0
    jline({"ready": len(clients), "login_s": round(login_s, 3), "connect_s": round(connect_s, 3),
           "online_s": round(online_s, 3), "pid": os.getpid()})

    async for cmd in stdin_lines():
        c = cmd.get("cmd")
        if c == "counts":
            lo = cmd.get("min_id", 0)
            jline({"msgs": sum(1 for i, _ in msgs if i >= lo), "sess": len(sess), "buffered": len(msgs),
                   "connected": sum(1 for s in clients if s.connected), "other": dict(other)})
        elif c == "dump":
            jline({"msgs": msgs, "sess": sess, "other": dict(other)})
            msgs.clear()
            sess.clear()
        elif c == "quit":
            break
    for sio in clients:
        try:
            await asyncio.wait_for(sio.disconnect(), 2)
        except Exception:  # noqa: BLE001
            pass
    jline({"bye": True})
