"""Helpers for Socket.IO tests: log in over HTTP, connect a real python-socketio client, collect events."""
from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

import socketio

from hub.users import add_user


async def make_user(hub, username: str, role: str = "agent", groups=("presales",), cap: int = 5,  # noqa: ANN001
                    display_name: str = "") -> Any:
    user = await add_user(hub.db, hub.clock, username=username, password=f"{username}-password", role=role,
                          groups=list(groups), cap=cap, display_name=display_name)
    await hub.sessions.load()
    return user


async def login(client, username: str) -> str:  # noqa: ANN001
    resp = await client.post("/api/login", json={"username": username, "password": f"{username}-password"})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["token"]


class Agent:
    """A connected agent: every event it receives is recorded in order."""

    def __init__(self, url: str, token: str):
        self.url = url
        self.token = token
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self.by_name: dict[str, list[Any]] = defaultdict(list)
        self._arrived = asyncio.Event()

        @self.sio.on("*")
        async def any_event(name: str, data: Any = None) -> None:
            self.events.append((name, data))
            self.by_name[name].append(data)
            self._arrived.set()

    async def connect(self, **auth: Any) -> "Agent":
        await self.sio.connect(self.url, auth={"token": self.token, **auth}, transports=["websocket"],
                               wait_timeout=5)
        return self

    async def call(self, event: str, data: dict | None = None) -> dict:
        return await self.sio.call(event, data or {}, timeout=5)

    async def wait(self, name: str, count: int = 1, timeout: float = 5.0, where=None) -> list[Any]:  # noqa: ANN001
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            got = [d for d in self.by_name[name] if where is None or where(d)]
            if len(got) >= count:
                return got
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise AssertionError(f"expected {count} {name!r} events, got {len(got)}: {self.events[-5:]}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    def seqs(self) -> list[int]:
        return [d["seq"] for _, d in self.events if isinstance(d, dict) and "seq" in d]

    async def close(self) -> None:
        if self.sio.connected:
            await self.sio.disconnect()


def server_url(client) -> str:  # noqa: ANN001
    return str(client.server.make_url("")).rstrip("/")
