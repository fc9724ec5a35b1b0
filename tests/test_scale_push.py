"""Live push across hub processes (Redis): an agent connected to one process gets events another
process emits, resumes on another process without loss, and Redis going away costs no callback:
they are archived and acknowledged, and push resumes (with a resync) when Redis is back."""
from __future__ import annotations

import asyncio

import pytest

from hub.app import HUB
from hub.models import User
from tests.conftest import WECOM
from tests.helpers import count_messages, post, wait_for
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.scale_helpers import private_redis, two_hubs  # noqa: F401 - fixtures
from tests.wechat_client import text_xml


async def status_of(hub, user_id: int) -> str:  # noqa: ANN001
    users = User.__table__
    async with hub.db.read() as conn:
        return (await conn.execute(users.select().where(users.c.id == user_id))).first().status


async def agent_on(client, username: str, **auth) -> Agent:  # noqa: ANN001, ANN003
    return await Agent(server_url(client), await login(client, username)).connect(**auth)


async def test_every_process_listens_to_redis_before_it_is_ready(two_hubs, private_redis):
    """Subscribed at start-up, not at the first socket's connect: an event published for a process's
    first agent just after its connect (its first session.new) must not fall in between."""
    import redis.asyncio as aioredis

    client = aioredis.from_url(private_redis.url)
    try:
        [(_, listeners)] = await client.pubsub_numsub("hub-socketio")
    finally:
        await client.aclose()
    assert listeners == 2  # both processes, and no socket has connected to either


async def test_event_from_one_process_reaches_agent_on_the_other(two_hubs):
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    alice = await make_user(hub_a, "alice")
    await hub_b.sessions.load()
    agent = await agent_on(a, "alice")
    try:
        assert hub_a.push.streams.epoch == hub_b.push.streams.epoch  # one stream store
        for i in range(5):
            await (hub_a if i % 2 else hub_b).push.to_user(alice.id, "note.test", {"i": i})
        got = await agent.wait("note.test", count=5)
        assert [d["i"] for d in got] == [0, 1, 2, 3, 4]
        assert [d["seq"] for d in got] == [1, 2, 3, 4, 5]  # one sequence whichever process emitted
        epoch = got[-1]["epoch"]
        await agent.close()

        # missed while away, emitted by process A; the agent comes back on process B and resumes
        for i in range(5, 8):
            await hub_a.push.to_user(alice.id, "note.test", {"i": i})
        back = await agent_on(b, "alice", epoch=epoch, last_seq=5)
        try:
            got = await back.wait("note.test", count=3)
            assert [d["seq"] for d in got] == [6, 7, 8] and [d["i"] for d in got] == [5, 6, 7]
            assert not back.by_name["resync"]
        finally:
            await back.close()
    finally:
        await agent.close()


async def test_redis_down_callbacks_still_archived_then_push_resumes(two_hubs, private_redis, wecom):
    a, b = two_hubs
    hub_a = a.server.app[HUB]
    alice = await make_user(hub_a, "alice")
    agent = await agent_on(a, "alice")
    try:
        await hub_a.push.to_user(alice.id, "note.test", {"i": 0})
        await agent.wait("note.test")

        private_redis.kill()
        loop = asyncio.get_running_loop()
        started = loop.time()
        for i in range(10):  # callbacks through both processes: archived and acknowledged
            resp = await post(a if i % 2 else b, wecom, text_xml(WECOM["receive_id"], f"wmRedisDown{i}", f"在吗{i}", 61000 + i))
            assert resp.status == 200 and await resp.text() == "success"
        assert await count_messages(hub_a, direction="in") == 10
        await hub_a.push.to_user(alice.id, "note.test", {"i": 1})  # not recorded: Redis is down
        assert loop.time() - started < 8, "callbacks waited on Redis"
        assert hub_a.push.lost >= 1 and alice.id in hub_a.push.streams.broken

        private_redis.start()  # same port, empty: a new epoch
        [resync] = await agent.wait("resync", timeout=15)
        assert resync["epoch"] != agent.by_name["note.test"][0]["epoch"]
        await wait_for(lambda: not hub_a.push.streams.broken, timeout=5)

        await hub_a.push.to_user(alice.id, "note.test", {"i": 2})
        got = await agent.wait("note.test", count=2, where=lambda d: d["i"] in (0, 2))
        assert got[-1]["epoch"] == resync["epoch"]
    finally:
        await agent.close()


async def test_agent_reconnected_to_another_process_stays_online(two_hubs):
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    alice = await make_user(hub_a, "alice")
    for hub in (hub_a, hub_b):
        hub.presence.grace = 0.3
    first = await agent_on(a, "alice")
    assert (await first.call("status", {"status": "online"}))["ok"]
    second = await agent_on(b, "alice")  # the reconnect landed on process B
    try:
        await first.close()  # ... and process A saw the old socket go
        await asyncio.sleep(1.0)  # A's grace period is over
        assert await status_of(hub_a, alice.id) == "online"
        await second.close()  # now the agent is really gone: process B takes them offline

        async def offline() -> bool:
            return await status_of(hub_b, alice.id) == "offline"

        await wait_for(offline, timeout=5)
    finally:
        await first.close()
        await second.close()


async def test_a_worker_restarted_under_its_name_does_not_revive_its_dead_runs_sockets(private_redis):
    """Worker w0 dies with alice's socket counted; it is restarted under the same name. Once the
    dead run's heartbeat has expired, alice is not 'connected elsewhere' (she went offline for good
    when she closed her laptop later, instead of staying online for ever)."""
    import redis.asyncio as aioredis

    from hub.scale.redis_presence import RedisPresence

    client = aioredis.from_url(private_redis.url)
    try:
        dead = RedisPresence(client, "host:w0")
        await dead.changed(7, 1)  # alice's socket on w0, which is then killed (no stop, no update)
        await client.delete(f"hub:worker:{dead.worker}")  # its heartbeat expires
        restarted, other = RedisPresence(client, "host:w0"), RedisPresence(client, "host:w1")
        restarted.start()
        other.start()
        try:
            await asyncio.sleep(0.1)
            assert await other.connected_elsewhere(7) is False
            await restarted.changed(7, 1)  # a live socket on the restarted worker does count
            assert await other.connected_elsewhere(7) is True
            assert len(await client.hgetall("hub:presence:7")) == 1  # the dead run's field is gone
        finally:
            await restarted.stop()
            await other.stop()
    finally:
        await client.aclose()


async def test_a_users_sequence_counter_does_not_expire(private_redis):
    """Stream buffers expire after a day; the counter must not (restarting at 1 under the same
    epoch, a console open for a day with nothing new dropped every new event as already seen)."""
    import redis.asyncio as aioredis

    from hub.scale.redis_streams import RedisStreams

    client = aioredis.from_url(private_redis.url)
    try:
        streams = RedisStreams(client, ttl=60)
        await streams.start()
        try:
            first = await streams.append(9, "note.test", {"i": 1})
            await client.expire("hub:streams:seq:9", 60)  # as an older hub left it
            second = await streams.append(9, "note.test", {"i": 2})
            assert second.seq == first.seq + 1
            assert await client.ttl("hub:streams:seq:9") == -1 and 0 < await client.ttl("hub:streams:buf:9") <= 60
        finally:
            await streams.stop()
    finally:
        await client.aclose()


async def test_a_hung_redis_does_not_hold_pushes(two_hubs, private_redis):
    """Redis paused (a network partition looks the same): a push gives up on it within about a
    second (the stream store's client had a read timeout, the Socket.IO publish had none, and a
    room's push, such as the supervisors' queue.changed, waited until TCP gave up)."""
    import os
    import signal
    a, _b = two_hubs
    hub_a = a.server.app[HUB]
    alice = await make_user(hub_a, "alice")
    os.kill(private_redis.proc.pid, signal.SIGSTOP)
    try:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.wait_for(hub_a.push.to_user(alice.id, "note.test", {"i": 1}), 8)
        await asyncio.wait_for(hub_a.push.to_room("supervisors", "note.test", {"i": 2}), 8)
        await asyncio.wait_for(hub_a.push.to_room("supervisors", "note.test", {"i": 3}), 8)  # Redis skipped a second
        assert loop.time() - started < 4
    finally:
        os.kill(private_redis.proc.pid, signal.SIGCONT)


@pytest.fixture
def fast_heartbeat(monkeypatch):  # noqa: ANN001, ANN201 - before two_hubs in a test's arguments
    from hub.scale import redis_presence
    monkeypatch.setattr(redis_presence, "HEARTBEAT_EVERY", 0.3)
    monkeypatch.setattr(redis_presence, "HEARTBEAT_TTL", 2)


async def test_a_redis_restarted_empty_learns_every_processs_sockets_again(fast_heartbeat, two_hubs, private_redis):
    """Redis restarted without its data (no persistence, as docs/deploy.md advises) forgot alice's tab
    on B: closing her tab on A took her offline although she was still connected to B."""
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    alice = await make_user(hub_a, "alice")
    await hub_b.sessions.load()
    for hub in (hub_a, hub_b):
        hub.presence.grace = 0.5
    tab_a, tab_b = await agent_on(a, "alice"), await agent_on(b, "alice")
    try:
        assert (await tab_a.call("status", {"status": "online"}))["ok"]
        private_redis.kill()
        private_redis.start()  # back, empty
        await asyncio.sleep(1.5)  # a few heartbeats
        await tab_a.close()
        await asyncio.sleep(1.5)  # past A's grace period
        assert tab_b.sio.connected and await status_of(hub_a, alice.id) == "online"
    finally:
        await tab_a.close()
        await tab_b.close()


async def test_a_lost_update_is_repaired_at_the_next_heartbeat(private_redis):
    """Counts were increments, and one refused while Redis was down was lost for good: a socket closed
    then stayed counted, and the process's own heartbeat kept the count alive (online for ever)."""
    import redis.asyncio as aioredis

    from hub.scale.redis_presence import RedisPresence

    client = aioredis.from_url(private_redis.url)
    try:
        run = RedisPresence(client, "host:w0")
        local = {7: 1}
        run.local = lambda: dict(local)
        await run.changed(7, 1)
        local[7] = 0  # the socket closed while Redis was down: its update never arrived
        await run.publish_all()
        assert await client.hgetall("hub:presence:7") == {}
        local[7] = 2  # and a count Redis lost (restarted empty) comes back
        await client.flushall()
        await run.publish_all()
        assert await client.hgetall("hub:presence:7") == {run.worker.encode(): b"2"}
    finally:
        await client.aclose()


async def test_an_agent_whose_only_process_died_goes_offline(fast_heartbeat, two_hubs, private_redis):
    """Alice's only socket was on a process that died for good (a lost host, a scale-down): nobody
    watched her, and she stayed online for ever, assigned customers she never saw. The surviving
    processes' sweep gives her the grace period; a colleague connected to a live process stays."""
    import redis.asyncio as aioredis

    from hub.scale.redis_presence import RedisPresence

    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    alice, bob = await make_user(hub_a, "alice"), await make_user(hub_a, "bob")
    for hub in (hub_a, hub_b):
        hub.presence.grace = 0.3
    bob_tab = await agent_on(a, "bob")
    client = aioredis.from_url(private_redis.url)
    try:
        assert (await bob_tab.call("status", {"status": "online"}))["ok"]
        dead = RedisPresence(client, "host:gone")
        await dead.changed(alice.id, +1)  # her socket on a third process ...
        await hub_a.sessions.set_status(alice, "online")
        for hub in (hub_a, hub_b):
            await hub.sessions.load()
        await client.delete(f"hub:worker:{dead.worker}")  # ... which died: its heartbeat is gone

        async def offline() -> bool:
            return await status_of(hub_b, alice.id) == "offline"

        await wait_for(offline, timeout=6)
        assert await status_of(hub_b, bob.id) == "online"
    finally:
        await bob_tab.close()
        await client.aclose()
