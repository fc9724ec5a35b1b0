"""kill -9 the hub right after 200 responses; every acknowledged message is there exactly once
after a restart, and its pending job runs."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sqlite3
import subprocess
import sys

import aiohttp

from tests.conftest import ROOT, WECOM
from tests.wechat_client import PlatformSim, text_xml


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_hub(db_path: str, port: int, config_path: str) -> subprocess.Popen:
    env = dict(os.environ, HUB_CONFIG=config_path, HUB_LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "hub", "serve", "--db", f"sqlite+aiosqlite:///{db_path}",
                             "--port", str(port)], cwd=ROOT, env=env, start_new_session=True)


async def wait_healthy(session: aiohttp.ClientSession, base: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            async with session.get(base + "/healthz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("hub did not become healthy")
        await asyncio.sleep(0.1)


async def test_kill_9_after_acks_loses_nothing(tmp_path):
    config = tmp_path / "hub.toml"
    config.write_text(
        "[settings]\nqueue_notify = false\n\n[[accounts]]\n" + "\n".join(f'{k} = "{v}"' for k, v in WECOM.items()) + "\n")
    db = str(tmp_path / "crash.db")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sim = PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"])
    proc = start_hub(db, port, str(config))
    acked: set[str] = set()
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, base)
            sem = asyncio.Semaphore(32)
            killed = asyncio.Event()

            async def one(i: int) -> None:
                query, body = sim.encrypted(text_xml(WECOM["receive_id"], f"wmCrash{i % 20}", f"消息{i}", 900000 + i))
                async with sem:
                    if killed.is_set():
                        return
                    try:
                        async with session.post(base + sim.path, params=query, data=body) as resp:
                            if resp.status == 200 and await resp.text() == "success":
                                acked.add(str(900000 + i))
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        return
                if len(acked) >= 300 and not killed.is_set():
                    killed.set()
                    os.killpg(proc.pid, signal.SIGKILL)  # right after 200 responses, mid-stream

            await asyncio.gather(*(one(i) for i in range(3000)))
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        assert len(acked) >= 300

        # every acknowledged message is on disk, exactly once, before any restart
        con = sqlite3.connect(db)
        rows = con.execute("SELECT dedup_key, COUNT(*) FROM messages GROUP BY dedup_key").fetchall()
        stored = {k[2:]: n for k, n in rows}
        assert acked <= set(stored), f"lost {len(acked - set(stored))} acknowledged messages"
        assert all(n == 1 for n in stored.values())
        con.close()

        # restart: the jobs left pending run
        proc = start_hub(db, port, str(config))
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, base)
            for _ in range(100):
                con = sqlite3.connect(db)
                pending = con.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
                # a job is deleted only after its work is done; and that work shows: every customer who
                # wrote has a service session (the routing step ran for them)
                unprocessed = con.execute(
                    "SELECT COUNT(DISTINCT m.conversation_id) FROM messages m LEFT JOIN service_sessions s "
                    "ON s.conversation_id = m.conversation_id WHERE m.direction = 'in' AND s.id IS NULL").fetchone()[0]
                con.close()
                if pending == 0 and unprocessed == 0:
                    break
                await asyncio.sleep(0.1)
            assert pending == 0 and unprocessed == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
