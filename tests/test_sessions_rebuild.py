"""The routing rebuild (``SessionService.resync``: at start, and every second with several processes):
what waits in the database is queued at once and assigned in queue order, VIP priority first."""
from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from hub.clock import FakeClock
from hub.models import Conversation, ServiceSession
from hub.service.sessions import Handover
from hub.users import set_status
from tests.rt_helpers import make_user

sessions_t = ServiceSession.__table__


@pytest.fixture
def clock():
    return FakeClock(1_767_000_000.0)


async def new_conversation(hub, peer: str) -> int:  # noqa: ANN001
    async with hub.db.write() as conn:
        return (await conn.execute(Conversation.__table__.insert().values(
            account_id="acme-wecom", channel="wecom", thread="", peer_id=peer,
            created_at=hub.clock.now()))).inserted_primary_key[0]


async def states(hub) -> dict[int, tuple[str, int | None]]:  # noqa: ANN001
    async with hub.db.read() as conn:
        rows = (await conn.execute(select(sessions_t.c.conversation_id, sessions_t.c.state, sessions_t.c.agent_id))).all()
    return {r.conversation_id: (r.state, r.agent_id) for r in rows}


async def test_rebuild_assigns_what_waits_in_queue_order_vip_first(client, hub):  # noqa: ANN001
    alice = await make_user(hub, "alice", groups=("presales",), cap=1)
    bob = await make_user(hub, "bob", groups=("aftersales",), cap=3)
    for user in (alice, bob):
        await set_status(hub.db, user.id, "offline")
    await hub.sessions.resync()
    plain = [await new_conversation(hub, f"wmPlain{i}") for i in range(3)]
    vip = await new_conversation(hub, "wmVip")
    for conv in plain:  # nobody online: all wait, the plain ones first
        await hub.sessions.route(Handover(conv, "acme-wecom", "在吗", [], group="presales"))
        hub.clock.advance(5)
    await hub.sessions.route(Handover(vip, "acme-wecom", "在吗", [], group="presales", vip_level=3))
    assert {s for s, _ in (await states(hub)).values()} == {"queued"}

    # both come online behind the dispatcher's back (another process, say): the rebuild routes
    for user in (alice, bob):
        await set_status(hub.db, user.id, "online")
    await hub.sessions.resync()
    got = await states(hub)
    assert got[vip] == ("assigned", alice.id)  # the VIP, though it came last, takes alice's one slot
    assert [got[c] for c in plain] == [("queued", None)] * 3  # bob has room, but not their group
    assert [q.session_id for q in hub.sessions.dispatcher.queue_snapshot()] == sorted(
        q.session_id for q in hub.sessions.dispatcher.queue_snapshot())  # oldest first behind it

    await hub.sessions.resync()  # a second rebuild changes nothing
    assert await states(hub) == got


async def test_an_agent_online_when_the_hub_stopped_who_does_not_come_back_goes_offline(aiohttp_client, hub_config):
    """The hub restarts while alice is online; she closed her browser meanwhile. After the grace
    period without a connection she is offline, and waiting customers are not assigned to her."""
    import asyncio

    from hub.app import HUB, create_app
    from hub.models import User

    first = await aiohttp_client(create_app(hub_config, FakeClock(1_767_000_000.0)))
    hub = first.server.app[HUB]
    alice = await make_user(hub, "alice", groups=("presales",))
    await set_status(hub.db, alice.id, "online")
    await hub.settings.set("offline_grace", 0.3)
    await first.close()

    again = await aiohttp_client(create_app(hub_config, FakeClock(1_767_000_100.0)))
    hub = again.server.app[HUB]
    await asyncio.sleep(1.0)
    async with hub.db.read() as conn:
        status = (await conn.execute(select(User.__table__.c.status).where(User.__table__.c.id == alice.id))).scalar()
    assert status == "offline"
    assert all(a.status == "offline" for a in hub.sessions.dispatcher.agents() if a.id == alice.id)


async def test_a_session_for_an_absent_advisor_falls_back_to_the_group(client, hub):  # noqa: ANN001
    """A customer of alice's (her QR code) writes while she is off: after ``advisor_wait`` any agent
    of the group may take the session; it waited for her for ever."""
    alice = await make_user(hub, "alice", groups=("presales",))
    bob = await make_user(hub, "bob", groups=("presales",))
    await set_status(hub.db, alice.id, "offline")
    await hub.settings.set("advisor_wait", 60)
    await hub.sessions.resync()
    await hub.sessions.set_status(bob, "online")
    conv = await new_conversation(hub, "wmAdvised")
    await hub.sessions.route(Handover(conversation_id=conv, account_id="acme-wecom", first_message="在吗",
                                      suggestions=[], advisor_id=alice.id, group="presales"))
    assert (await states(hub))[conv] == ("queued", None)
    hub.clock.advance(30)
    await hub.timers.fire_due()
    assert (await states(hub))[conv] == ("queued", None)  # still hers for a while
    hub.clock.advance(31)
    await hub.timers.fire_due()
    assert (await states(hub))[conv] == ("assigned", bob.id)


async def test_an_agent_online_while_a_rebuild_reads_stays_online(client, hub, monkeypatch):  # noqa: ANN001
    """A rebuild's read of the database that started before an agent came online (on this process)
    must not replace the dispatcher with the older picture: the agent stays online and takes what
    waits. (With several processes a rebuild runs every second; this lost the CI run a routing test.)"""
    from hub.service import dispatcher_sync
    alice = await make_user(hub, "alice", groups=("presales",), cap=2)
    await set_status(hub.db, alice.id, "offline")
    await hub.sessions.resync()
    reading, go_on = asyncio.Event(), asyncio.Event()
    real_read = dispatcher_sync.read_floor

    async def slow_read(db, queue=True):  # noqa: ANN001, ANN202
        floor = await real_read(db, queue)
        if not reading.is_set():  # the first read only: it sees alice offline, then waits
            reading.set()
            await go_on.wait()
        return floor

    monkeypatch.setattr(dispatcher_sync, "read_floor", slow_read)
    rebuild = asyncio.ensure_future(hub.sessions.resync())
    await reading.wait()
    await hub.sessions.set_status(hub.sessions.agents[alice.id], "online")
    go_on.set()
    await rebuild
    assert [a.status for a in hub.sessions.dispatcher.agents() if a.id == alice.id] == ["online"]
    conv = await new_conversation(hub, "wmRace")
    await hub.sessions.route(Handover(conv, "acme-wecom", "在吗", [], group="presales"))
    assert (await states(hub))[conv] == ("assigned", alice.id)
