"""Admin changes take effect at once in every hub process: in-process subscribers reload before the
API answers, and with a Redis URL two hub processes (two apps on one database) tell each other."""
from __future__ import annotations

import dataclasses

import pytest

from hub.app import HUB, create_app
from hub.config_bus import CONFIG_BUS, ConfigBus
from tests.conftest import auth
from tests.helpers import make_groups, wait_for

REDIS = "redis://127.0.0.1:6379/0"


async def test_in_process_publish_runs_subscribers_and_survives_a_failing_one():
    bus = ConfigBus()
    seen: list[str] = []

    async def broken() -> None:
        raise RuntimeError("db down")

    async def ok() -> None:
        seen.append("ok")

    bus.subscribe("settings", broken)
    bus.subscribe("settings", ok)
    await bus.publish("settings")
    await bus.publish("nobody-listens")
    assert seen == ["ok"]


def _redis_up() -> bool:
    import socket
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
async def test_two_processes_share_changes_through_redis(aiohttp_client, hub_config, clock):
    config = dataclasses.replace(hub_config, redis_url=REDIS)
    first = await aiohttp_client(create_app(config, clock))
    second = await aiohttp_client(create_app(config, clock))
    hub2 = second.server.app[HUB]
    bus2 = second.server.app[CONFIG_BUS]
    await hub2.sessions.load_rules()
    assert hub2.sessions.rules == []
    await make_groups(first.server.app[HUB], "vip")
    made = await first.post("/api/routing/rules", json={"name": "VIP", "conditions": [{"kind": "vip_min", "value": 2}],
                                                        "actions": {"group": "vip"}}, headers=auth())
    assert made.status == 201
    # the second process's routing rules (no TTL of their own) follow within moments, not after a restart
    await wait_for(lambda: [r.name for r in hub2.sessions.rules] == ["VIP"], timeout=5)
    put = await first.put("/api/settings", json={"welcome_text": "欢迎光临旗舰店"}, headers=auth())
    assert put.status == 200
    await wait_for(lambda: hub2.settings.cached("welcome_text") == "欢迎光临旗舰店", timeout=5)
    assert bus2.received >= 2


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
async def test_a_change_published_while_a_process_starts_is_not_missed():
    """A process that loaded its caches but did not listen yet (a second worker still starting while
    the first, ready, takes an admin's change) reloads them once its subscription holds."""
    import uuid
    channel = f"scrm-hub:test-config:{uuid.uuid4().hex}"
    ready, starting = ConfigBus(REDIS, channel=channel), ConfigBus(REDIS, channel=channel)
    reloads: list[str] = []

    async def rules() -> None:
        reloads.append("routing_rules")

    starting.subscribe("routing_rules", rules)
    await ready.start()
    try:
        await ready.publish("routing_rules")  # nobody listens on the other side yet
        await starting.start()
        assert reloads == ["routing_rules"]  # caught up at start
        await ready.publish("routing_rules")
        await wait_for(lambda: len(reloads) == 2, timeout=5)  # and listening from then on
    finally:
        await ready.stop()
        await starting.stop()


async def test_a_process_starts_while_redis_is_down_and_subscribes_when_it_is_back():
    """Redis unreachable at start: the hub still starts (callbacks need no Redis), and the bus
    subscribes in the background, reloading every cache once it is up."""
    import asyncio

    from tests.scale_helpers import PrivateRedis, free_port, require_services

    require_services()
    port = free_port()
    bus, reloads = ConfigBus(f"redis://127.0.0.1:{port}/0", channel="test-bus-down"), []

    async def reload() -> None:
        reloads.append(1)

    bus.subscribe("routing", reload)
    await asyncio.wait_for(bus.start(), 10)  # raised (and so stopped the hub from starting) before
    redis = PrivateRedis(port)
    redis.start()
    try:
        await wait_for(lambda: reloads, timeout=10)
        other = ConfigBus(f"redis://127.0.0.1:{port}/0", channel="test-bus-down")
        await other.start()
        before = len(reloads)
        await other.publish("routing")
        await wait_for(lambda: len(reloads) > before, timeout=5)
        await other.stop()
    finally:
        await bus.stop()
        redis.kill()
