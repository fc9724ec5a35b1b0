"""Faults with several hub processes on PostgreSQL + Redis (``serve --workers 2``, real processes):
kill -9 of one worker mid-stream, PostgreSQL connections terminated mid-stream. Every acknowledged
callback is archived exactly once, its jobs run, and it reaches the agent."""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import asyncpg
import pytest
import socketio

from tests.conftest import PG_URL, ROOT, WECOM
from tests.scale_helpers import free_port, private_redis  # noqa: F401 - fixture
from tests.wechat_client import PlatformSim, text_xml

CUSTOMERS = 20


def pg_dsn() -> str:
    return PG_URL.replace("postgresql+asyncpg://", "postgresql://")


class Cluster:
    """``python -m hub serve --workers 2`` on one port, its supervisor in its own process group."""

    def __init__(self, tmp: Path, db_url: str, redis_url: str):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.db_url, self.redis_url = db_url, redis_url
        self.schema = db_url.split("schema=")[1]
        self.config = tmp / "hub.toml"
        self.config.write_text("[settings]\nqueue_notify = false\ndefault_group = \"presales\"\noffline_grace = 600\n\n"
                               "[[accounts]]\n" + "\n".join(f'{k} = "{v}"' for k, v in WECOM.items()) + "\n")
        self.env = dict(os.environ, HUB_CONFIG=str(self.config), HUB_LOG_LEVEL="WARNING", HUB_JOB_LEASE="3")
        self.log = open(tmp / "cluster.log", "wb")
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str) -> None:
        subprocess.run([sys.executable, "-m", "hub", *args, "--db", self.db_url], cwd=ROOT, env=self.env, check=True,
                       capture_output=True)

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "hub", "serve", "--workers", "2", "--db", self.db_url,
                                      "--redis", self.redis_url, "--port", str(self.port)], cwd=ROOT, env=self.env,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def workers(self) -> list[int]:
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    async def wait_healthy(self, session: aiohttp.ClientSession, workers: int = 2, timeout: float = 150) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            ready = 0
            if len(self.workers()) == workers:
                for _ in range(6):  # SO_REUSEPORT spreads connections: ask several times
                    try:
                        async with aiohttp.ClientSession() as fresh, fresh.get(self.base + "/healthz") as resp:
                            ready += resp.status == 200
                    except aiohttp.ClientError:
                        pass
            if ready == 6:
                await asyncio.sleep(1.0)  # the other worker finishes starting too
                return
            await asyncio.sleep(0.2)
        raise AssertionError("cluster did not become healthy:\n" + Path(self.log.name).read_text()[-3000:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


class ResilientAgent:
    """An agent console stand-in: reconnects (to whichever worker), resumes with (epoch, last_seq),
    reloads its sessions when told to resync; remembers every message text it was shown."""

    def __init__(self, base: str, token: str):
        self.base, self.token = base, token
        self.epoch: str | None = None
        self.seq = 0
        self.seen: set[str] = set()
        self.resyncs = 0
        self.sio = socketio.AsyncClient(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1)

        @self.sio.on("*")
        async def any_event(name: str, data=None) -> None:  # noqa: ANN001
            if isinstance(data, dict) and isinstance(data.get("seq"), int):
                if data.get("epoch") != self.epoch:
                    self.epoch = data.get("epoch")
                self.seq = max(self.seq, data["seq"])
            if name == "message.new":
                self.seen.add(data["message"]["text"])
            elif name == "session.new":
                self.seen.update(m["text"] for m in data["history"])
            elif name == "resync":
                self.epoch, self.seq = data["epoch"], data.get("seq") or 0
                self.resyncs += 1

    def auth(self) -> dict:
        return {"token": self.token, **({"epoch": self.epoch, "last_seq": self.seq} if self.epoch else {})}

    async def connect(self) -> None:
        await self.sio.connect(self.base, auth=self.auth, transports=["websocket"], wait_timeout=5)
        assert (await self.sio.call("status", {"status": "online"}, timeout=5))["ok"]

    async def reload(self) -> None:
        """What the console does on resync: list sessions, open each."""
        listed = await self.sio.call("sessions", {}, timeout=10)
        for s in listed["sessions"]:
            bundle = await self.sio.call("session", {"session_id": s["id"]}, timeout=10)
            self.seen.update(m["text"] for m in bundle.get("history", []))


async def login(session: aiohttp.ClientSession, base: str) -> str:
    async with session.post(base + "/api/login", json={"username": "alice", "password": "alice-password"}) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["token"]


async def stream(base: str, sim: PlatformSim, count: int, on_ack, concurrency: int = 16) -> set[str]:  # noqa: ANN001
    """Post ``count`` distinct callbacks (each in its own connection, so SO_REUSEPORT spreads them);
    returns the texts acknowledged with 200 success."""
    acked: set[str] = set()
    sem = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        async def one(i: int) -> None:
            text = f"消息{i}"
            query, body = sim.encrypted(text_xml(WECOM["receive_id"], f"wmScale{i % CUSTOMERS}", text, 800000 + i))
            async with sem:
                try:
                    async with session.post(base + sim.path, params=query, data=body) as resp:
                        if resp.status == 200 and await resp.text() == "success":
                            acked.add(text)
                            await on_ack(len(acked))
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    return

        await asyncio.gather(*(one(i) for i in range(count)))
    return acked


async def archived(schema: str) -> dict[str, int]:
    conn = await asyncpg.connect(pg_dsn())
    try:
        rows = await conn.fetch(f"SELECT text, count(*) AS n FROM {schema}.messages WHERE direction = 'in' GROUP BY text")
        return {r["text"]: r["n"] for r in rows}
    finally:
        await conn.close()


async def settled(schema: str, timeout: float = 90) -> None:
    """Every job ran (deleted) and every customer who wrote has a session."""
    conn = await asyncpg.connect(pg_dsn())
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            jobs = await conn.fetchval(f"SELECT count(*) FROM {schema}.jobs")
            unrouted = await conn.fetchval(
                f"SELECT count(DISTINCT m.conversation_id) FROM {schema}.messages m LEFT JOIN {schema}.service_sessions s "
                "ON s.conversation_id = m.conversation_id WHERE m.direction = 'in' AND s.id IS NULL")
            if jobs == 0 and unrouted == 0:
                return
            if asyncio.get_running_loop().time() > deadline:
                states = await conn.fetch(f"SELECT state, attempts, run_after, last_error FROM {schema}.jobs LIMIT 5")
                raise AssertionError(f"{jobs} jobs left, {unrouted} conversations not routed: {states}")
            await asyncio.sleep(0.2)
    finally:
        await conn.close()


@pytest.fixture
async def cluster(tmp_path, db_url, private_redis):
    c = Cluster(tmp_path, db_url, private_redis.url)
    c.cli("users", "add", "--username", "alice", "--password", "alice-password", "--groups", "presales", "--cap", "100")
    c.start()
    yield c
    c.stop()


def check(acked: set[str], stored: dict[str, int], agent: ResilientAgent) -> None:
    assert acked, "nothing was acknowledged"
    lost = acked - set(stored)
    assert not lost, f"lost {len(lost)} acknowledged messages"
    assert all(n == 1 for n in stored.values()), "a message was archived twice"
    unseen = acked - agent.seen
    assert not unseen, f"{len(unseen)} acknowledged messages never reached the agent"


async def test_kill_9_one_of_two_workers_mid_stream(cluster):
    sim = PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"])
    async with aiohttp.ClientSession() as session:
        await cluster.wait_healthy(session)
        agent = ResilientAgent(cluster.base, await login(session, cluster.base))
    await agent.connect()
    try:
        victims: list[int] = []

        async def on_ack(n: int) -> None:
            if n >= 80 and not victims:
                victims.append(cluster.workers()[0])
                os.kill(victims[0], signal.SIGKILL)  # mid-stream, right after acknowledgements

        acked = await stream(cluster.base, sim, 300, on_ack)
        assert victims and len(acked) >= 80
        await settled(cluster.schema)
        async with aiohttp.ClientSession() as session:
            await cluster.wait_healthy(session)  # the supervisor restarted the worker
        assert victims[0] not in cluster.workers()
        for _ in range(50):  # the agent's socket may have been on the killed worker: it reconnects
            if agent.sio.connected:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)
        if agent.resyncs or not acked <= agent.seen:
            await agent.reload()
        check(acked, await archived(cluster.schema), agent)
    finally:
        await agent.sio.disconnect()


async def test_postgres_connections_terminated_mid_stream(cluster):
    sim = PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"])
    async with aiohttp.ClientSession() as session:
        await cluster.wait_healthy(session)
        agent = ResilientAgent(cluster.base, await login(session, cluster.base))
    await agent.connect()
    terminated: list[int] = []

    async def terminate() -> None:
        conn = await asyncpg.connect(pg_dsn())
        try:
            rows = await conn.fetch("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1",
                                    f"hub:{cluster.schema}")
            terminated.append(len(rows))
        finally:
            await conn.close()

    try:
        async def on_ack(n: int) -> None:
            if n in (60, 160):
                await terminate()  # every connection of both workers, twice

        acked = await stream(cluster.base, sim, 300, on_ack)
        assert len(terminated) == 2 and sum(terminated) > 0
        await settled(cluster.schema)
        await asyncio.sleep(1.0)
        if not acked <= agent.seen:
            await agent.reload()
        check(acked, await archived(cluster.schema), agent)
        assert len(acked) >= 250, f"only {len(acked)} of 300 acknowledged: the hub did not reconnect quickly"
    finally:
        await agent.sio.disconnect()
