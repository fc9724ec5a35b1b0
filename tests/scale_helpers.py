"""Fixtures for the several-process tests (tests/test_scale_*.py): PostgreSQL and a private Redis.

These tests need PostgreSQL (HUB_TEST_DATABASE=postgres) and ``redis-server``. On a SQLite run they
are skipped with that reason; with ``CI`` set, a missing service on a PostgreSQL run is a failure.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, replace

import pytest

from tests.conftest import ON_POSTGRES

REDIS_SERVER = shutil.which("redis-server")


def require_services() -> None:
    if not ON_POSTGRES:
        pytest.skip("several hub processes need PostgreSQL: run with HUB_TEST_DATABASE=postgres")
    if REDIS_SERVER is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (CI is set: the scale tests must run)")
        pytest.skip("redis-server is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PrivateRedis:
    """A redis-server of the test's own (no persistence), so it can be stopped and started at will."""

    port: int
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


@pytest.fixture
def private_redis():
    require_services()
    redis = PrivateRedis(free_port())
    redis.start()
    yield redis
    redis.kill()


@pytest.fixture
async def two_hubs(aiohttp_client, hub_config, private_redis):
    """Two hub apps (two 'processes' in one test process: separate Socket.IO servers, dispatchers,
    pipelines, timers) on one PostgreSQL schema and one Redis."""
    from hub.app import create_app
    a = await aiohttp_client(create_app(replace(hub_config, redis_url=private_redis.url, worker_id="test:a")))
    b = await aiohttp_client(create_app(replace(hub_config, redis_url=private_redis.url, worker_id="test:b")))
    yield a, b
    # stopped before their Redis and their schema go (fixtures end in reverse order of their start)
    await b.close()
    await a.close()
