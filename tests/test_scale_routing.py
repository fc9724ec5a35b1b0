"""Routing across hub processes (PostgreSQL): many sessions routed at once by two processes never
put an agent over cap nor assign a session twice; a slot freed on one process picks up a session
queued on the other; agent status set on one process counts on the other; timers fire once, and
still fire when the process that armed them is gone."""
from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from sqlalchemy import func, select

from hub.app import HUB
from hub.models import Conversation, ServiceSession, SessionEvent
from hub.service.sessions import Handover
from hub.users import UserInfo
from tests.conftest import WECOM
from tests.helpers import wait_for
from tests.scale_helpers import private_redis, two_hubs  # noqa: F401 - fixtures
from tests.rt_helpers import make_user

sessions_t = ServiceSession.__table__
events_t = SessionEvent.__table__


async def conversations(hub, n: int) -> list[int]:  # noqa: ANN001
    t = Conversation.__table__
    ids = []
    async with hub.db.write() as conn:
        for i in range(n):
            res = await conn.execute(t.insert().values(account_id=WECOM["id"], channel="wecom", thread="",
                                                       peer_id=f"wmScale{i}", created_at=hub.clock.now() + i))
            ids.append(res.inserted_primary_key[0])
    return ids


async def open_counts(hub) -> tuple[Counter, int]:  # noqa: ANN001
    async with hub.db.read() as conn:
        rows = (await conn.execute(select(sessions_t.c.state, sessions_t.c.agent_id)
                                   .where(sessions_t.c.state != "closed"))).all()
    load = Counter(r.agent_id for r in rows if r.state in ("assigned", "active"))
    return load, sum(1 for r in rows if r.state == "queued")


async def online(hub, user: UserInfo) -> None:  # noqa: ANN001
    await hub.sessions.set_status(user, "online")


async def test_concurrent_routing_on_two_processes_respects_caps(two_hubs):
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    for hub in (hub_a, hub_b):
        await hub.settings.set("default_group", "presales")
    agents = [await make_user(hub_a, f"agent{i}", cap=2) for i in range(3)]
    for i, user in enumerate(agents):  # set online on either process: both route to them
        await online(hub_a if i % 2 else hub_b, user)
    await hub_b.sessions.resync()
    await hub_a.sessions.resync()
    convs = await conversations(hub_a, 20)

    async def route(i: int, conv: int) -> None:
        hub = hub_a if i % 2 else hub_b
        await hub.sessions.route(Handover(conv, WECOM["id"], f"要人工{i}", []))

    await asyncio.gather(*(route(i, c) for i, c in enumerate(convs)))
    await asyncio.sleep(2.5)  # resyncs of both processes have run: nothing changes any more
    load, queued = await open_counts(hub_a)
    assert sorted(load.values()) == [2, 2, 2], load  # full, and nobody over cap
    assert queued == 14
    async with hub_a.db.read() as conn:
        assigned = Counter(r[0] for r in (await conn.execute(
            select(events_t.c.session_id).where(events_t.c.kind == "assigned"))).all())
    assert all(n == 1 for n in assigned.values()) and len(assigned) == 6  # no session assigned twice

    # a slot freed on process A takes the oldest session waiting, whichever process queued it
    async with hub_a.db.read() as conn:
        oldest = (await conn.execute(select(sessions_t.c.id).where(sessions_t.c.state == "queued")
                                     .order_by(sessions_t.c.handover_at, sessions_t.c.id).limit(1))).scalar()
        some_assigned = (await conn.execute(select(sessions_t.c.id, sessions_t.c.agent_id)
                                            .where(sessions_t.c.state == "assigned").limit(1))).first()
    await hub_a.sessions.close(None, some_assigned.id)

    async def taken() -> bool:
        async with hub_a.db.read() as conn:
            return (await conn.execute(select(sessions_t.c.state).where(sessions_t.c.id == oldest))).scalar() == "assigned"

    await wait_for(taken, timeout=5)
    await asyncio.sleep(1.5)
    load, queued = await open_counts(hub_a)
    assert sorted(load.values()) == [2, 2, 2] and queued == 13

    # an agent going offline on process B frees their sessions for the others (process A routes too)
    await hub_b.sessions.set_status(agents[0], "offline")
    await asyncio.sleep(2.5)
    load, queued = await open_counts(hub_a)
    assert load[agents[0].id] == 0 and load[agents[1].id] == 2 and load[agents[2].id] == 2 and queued == 15


async def test_timer_fires_once_across_processes(two_hubs):
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    ran: list[str] = []
    when = hub_a.clock.now() + 0.3

    def action(name: str):  # noqa: ANN202
        async def fire() -> None:
            ran.append(name)
        return fire

    for hub, name in ((hub_a, "a"), (hub_b, "b")):
        hub.timers.set("probe:1", when, action(name))
        hub.timers.set("probe:1", when, action(name))  # re-armed (a resync): still one timer
    await asyncio.sleep(0.8)
    assert len(ran) == 1
    hub_b.timers.set("probe:1", when, action("late"))  # armed again after it fired: a no-op
    await asyncio.sleep(0.2)
    assert len(ran) == 1


async def test_a_firing_whose_runner_died_is_taken_over_and_one_that_ran_is_not(two_hubs):
    """A process that won a firing's claim and died before running it left the firing claimed for
    good: the process that lost the claim never looked again, and a restarted one lost it too."""
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    for hub in (hub_a, hub_b):
        hub.timers.claims.lease = 0.5
    ran: list[str] = []

    def action(name: str):  # noqa: ANN202
        async def fire() -> None:
            ran.append(name)
        return fire

    when = hub_a.clock.now() + 0.1
    assert await hub_a.timers.claims.claim("probe:dead", when) is True  # A wins it, then "dies"
    hub_b.timers.set("probe:dead", when, action("b"))
    await asyncio.sleep(0.3)
    assert ran == []  # A's lease still runs
    await wait_for(lambda: ran == ["b"], timeout=3)  # ran out: B took it over
    # a firing whose runner finished in time is not run again by the one that looked again
    when = hub_a.clock.now() + 0.1
    assert await hub_a.timers.claims.claim("probe:alive", when) is True
    hub_b.timers.set("probe:alive", when, action("b2"))
    await asyncio.sleep(0.2)
    await hub_a.timers.claims.finish("probe:alive", when)
    await asyncio.sleep(1.0)
    assert ran == ["b"]


async def test_accept_timer_of_a_dead_process_fires_on_the_other(two_hubs):
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    for hub in (hub_a, hub_b):
        await hub.settings.set("accept_timeout", 1)
        await hub.settings.set("default_group", "presales")
    alice = await make_user(hub_a, "alice", cap=3)
    await online(hub_a, alice)
    await online(hub_a, await make_user(hub_a, "bob", cap=3))  # someone else could take it: the timer requeues
    [conv] = await conversations(hub_a, 1)
    session = await hub_a.sessions.route(Handover(conv, WECOM["id"], "在吗", []))
    assert session["state"] == "assigned"
    await hub_a.timers.stop()  # process A "dies": its timers are gone
    assert not hub_a.timers.pending()

    async def requeued() -> int:
        async with hub_a.db.read() as conn:
            return (await conn.execute(select(func.count()).select_from(events_t).where(
                events_t.c.session_id == session["id"]).where(events_t.c.kind == "requeued"))).scalar()

    await wait_for(requeued, timeout=5)  # B rebuilt the timer from the database and fired it


@pytest.mark.parametrize("freed_by", ["close", "reassign", "accept_timeout"])
async def test_a_freed_slot_takes_the_oldest_session_queued_on_the_other_process(two_hubs, freed_by):
    """With every agent full, a process does not re-read the queue each second: its copy lacked what
    the other process queued meanwhile, so a slot freed on it (a session closed, reassigned for want of
    an answer, or not accepted in time) went to its own later session."""
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    for hub in (hub_a, hub_b):
        await hub.settings.set("default_group", "presales")
    agent = await make_user(hub_a, "solo", cap=1)
    await online(hub_a, agent)
    await hub_b.sessions.resync()
    held, older, newer = await conversations(hub_a, 3)
    await hub_a.sessions.route(Handover(held, WECOM["id"], "要人工", []))
    await wait_for(lambda: hub_b.sessions.dispatcher.agents()[0].load == 1, timeout=3)  # B knows they are full
    await hub_b.sessions.route(Handover(older, WECOM["id"], "要人工", []))  # queued by B first
    await asyncio.sleep(0.05)
    await hub_a.sessions.route(Handover(newer, WECOM["id"], "要人工", []))  # then by A
    async with hub_a.db.read() as conn:
        by_conv = dict((await conn.execute(select(sessions_t.c.conversation_id, sessions_t.c.id))).all())
    if freed_by == "close":
        await hub_a.sessions.close(None, by_conv[held])
    elif freed_by == "reassign":
        assert await hub_a.sessions.reassign(by_conv[held], "unanswered")
    else:
        await hub_a.sessions._accept_timeout(by_conv[held])
    await asyncio.sleep(0.3)
    async with hub_a.db.read() as conn:
        state = dict((await conn.execute(select(sessions_t.c.conversation_id, sessions_t.c.state))).all())
    assert state[older] == "assigned" and state[newer] == "queued", state
