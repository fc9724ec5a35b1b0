"""Shared fixtures: a stand-in platform API server, a hub app on a real SQLite file, and
platform simulators that sign and encrypt callbacks like WeCom and the Official Account."""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import uuid

import pytest

from hub.app import HUB, create_app
from hub.clock import Clock
from hub.config import AccountConfig, HubConfig
from tests.platform_standin import Standin
from tests.wechat_client import PlatformSim

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS_PATH = ROOT.parent / "shared" / "vectors" / "wechat-callback-vectors.json"
API_TOKEN = "test-api-token"

WECOM = dict(id="acme-wecom", platform="wecom", name="Acme WeCom", token="QDG6eK",
             encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", receive_id="wx5823bf96d3bd56c7",
             secret="corp-secret")
OA = dict(id="acme-oa", platform="oa", name="Acme OA", token="scrmhubtoken",
          encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", receive_id="wx1234567890abcdef",
          secret="app-secret")


@pytest.fixture(scope="session")
def vectors() -> dict:
    return json.loads(VECTORS_PATH.read_text())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def standin(aiohttp_server):
    """(state, base_url) of a running stand-in platform API."""
    state = Standin()
    server = await aiohttp_server(state.app())
    state.base_url = str(server.make_url("")).rstrip("/")
    return state


PG_URL = os.environ.get("HUB_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
ON_POSTGRES = os.environ.get("HUB_TEST_DATABASE", "sqlite") == "postgres"


@pytest.fixture
def db_url(tmp_path) -> str:
    """A fresh database per test: a SQLite file, or (HUB_TEST_DATABASE=postgres) a fresh schema in
    the PostgreSQL database at HUB_TEST_POSTGRES_URL, dropped afterwards."""
    if not ON_POSTGRES:
        yield f"sqlite+aiosqlite:///{tmp_path}/hub.db"
        return
    schema = "t_" + uuid.uuid4().hex[:12]
    dsn = PG_URL.replace("postgresql+asyncpg://", "postgresql://")
    asyncio.run(_pg(dsn, f"CREATE SCHEMA {schema}"))
    yield f"{PG_URL}?schema={schema}"
    # a hub the test ran as a process of its own may still hold connections: end them, then drop
    asyncio.run(_pg(dsn, f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'hub:{schema}'"))
    asyncio.run(_pg(dsn, f"DROP SCHEMA {schema} CASCADE"))


@pytest.fixture
async def aiohttp_client(db_url, aiohttp_client):  # noqa: F811 - pytest-aiohttp's, started after the database
    """pytest-aiohttp's client factory, set up after ``db_url`` so that it ends first: every app a test
    started stops before its database goes (the schema dropped under a running app cost each such
    test's teardown 10 s of failing jobs on PostgreSQL)."""
    return aiohttp_client


async def _pg(dsn: str, sql: str) -> None:
    import asyncpg
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def hub_config(db_url, standin) -> HubConfig:
    return HubConfig(database_url=db_url, wecom_api_base=standin.base_url, oa_api_base=standin.base_url,
                     api_token=API_TOKEN, accounts=(AccountConfig(**WECOM), AccountConfig(**OA)),
                     settings=(("queue_notify", False),))  # tests of queue notices turn them on


@pytest.fixture
async def client(aiohttp_client, hub_config, clock):
    """An HTTP client against a running hub app (workers started)."""
    return await aiohttp_client(create_app(hub_config, clock))


@pytest.fixture
def hub(client):
    return client.server.app[HUB]


@pytest.fixture
def wecom(clock) -> PlatformSim:
    return PlatformSim("wecom", WECOM["id"], WECOM["token"], WECOM["encoding_aes_key"], WECOM["receive_id"], clock)


@pytest.fixture
def oa(clock) -> PlatformSim:
    return PlatformSim("oa", OA["id"], OA["token"], OA["encoding_aes_key"], OA["receive_id"], clock)


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_TOKEN}"}


async def start_burst(hub):  # noqa: ANN001, ANN201
    """Make the hub's pipeline see a burst of callbacks (pressure, a loop with no time to spare) and
    wait one CPU window, until it yields: background work then trickles. Returns the pipeline."""
    pipe = hub.pipeline
    pipe.pressure = lambda: True
    pipe.saturated_share = 0.0  # the loop counts as having no time to spare
    await asyncio.sleep(0.15)  # one CPU window has passed: the pipeline yields
    assert pipe._yielding()
    return pipe


# headless Chromium from Debian's package, driven by Playwright (its own browser download cannot work here)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = ROOT / "artifacts"


@pytest.fixture
async def browser():
    """A headless Chromium; skipped only when it is not installed and CI is not set."""
    if not os.path.exists(CHROMIUM) and not os.environ.get("CI"):
        pytest.skip(f"{CHROMIUM} is not installed (set CI=1 to make this a failure)")
    from playwright.async_api import async_playwright
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()
