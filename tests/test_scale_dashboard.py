"""The supervisor dashboard with two hub processes: one view (the database's) whichever process is
asked, and one ``dashboard.update`` per interval among them, not one per process."""
from __future__ import annotations

import asyncio

from hub.app import HUB
from hub.service.sessions import Handover
from hub.service.floor import summarize
from hub.supervisor.dashboard import DASHBOARD, QUEUE_LISTED
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.scale_helpers import private_redis, two_hubs  # noqa: F401 - fixtures
from tests.test_dashboard_api import new_conversation


async def test_a_session_queued_on_one_process_shows_at_once_on_the_other(two_hubs):
    a, b = two_hubs
    hub_b = b.server.app[HUB]
    await make_user(hub_b, "alice", groups=("presales",), cap=0)  # on the floor, no room: sessions wait
    for i, (group, vip) in enumerate([("presales", 0), ("aftersales", 3), ("presales", 5), ("presales", 0)]):
        cid = await new_conversation(hub_b, f"c-queued-{i}")
        await hub_b.sessions.route(Handover(cid, "acme-wecom", "在吗", [], group=group, vip_level=vip))
    snap = await a.server.app[DASHBOARD].snapshot()  # before process A's next resync
    assert snap["queue"]["total"] == 4 and snap["queue"]["per_group"] == {"presales": 3, "aftersales": 1}
    assert [(x["username"], x["load"], x["cap"]) for x in snap["agents"]] == [("alice", 0, 0)]
    # the database's queue, summed up there, is the queue of the process that routed them all
    expected = summarize(hub_b.sessions.dispatcher.queue_snapshot(), QUEUE_LISTED)
    assert [w["session_id"] for w in snap["queue"]["waiting"]] == [q.session_id for q in expected.head]
    assert snap["queue"]["oldest_enqueued_at"] == expected.oldest


async def test_one_update_per_interval_among_processes(two_hubs):
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    await make_user(hub_a, "sam", role="supervisor", groups=(), cap=0)
    await hub_b.sessions.load()
    sup = await Agent(server_url(a), await login(a, "sam")).connect()
    dashes = (a.server.app[DASHBOARD], b.server.app[DASHBOARD])
    try:
        await asyncio.sleep(1.2)  # any push of the connect is over and its slot has expired
        sup.by_name["dashboard.update"].clear()
        for i, hub in enumerate((hub_a, hub_b, hub_a, hub_b)):  # changes on both processes at once
            cid = await new_conversation(hub, f"c{i}")
            await hub.sessions.route(Handover(cid, "acme-wecom", "在吗", [], group="presales"))
        await sup.wait("dashboard.update", where=lambda d: d["queue"]["total"] == 4)
        await asyncio.sleep(2.5)  # every process's pending push has run
        updates = sup.by_name["dashboard.update"]
        times = sorted(u["now"] for u in updates)
        assert all(later - earlier >= 0.8 for earlier, later in zip(times, times[1:])), times
        assert updates[-1]["queue"]["total"] == 4  # whichever process pushed, the whole floor
        assert sum(d.pushes for d in dashes) >= len(updates) >= 1
    finally:
        await sup.close()


async def test_no_dashboard_work_while_no_supervisor_watches_on_any_process(two_hubs):
    a, b = two_hubs
    hub_a, hub_b = a.server.app[HUB], b.server.app[HUB]
    await make_user(hub_a, "sam", role="supervisor", groups=(), cap=0)
    await hub_b.sessions.load()
    dashes = (a.server.app[DASHBOARD], b.server.app[DASHBOARD])

    async def queue_one(i: int) -> None:
        cid = await new_conversation(hub_b, f"w{i}")
        await hub_b.sessions.route(Handover(cid, "acme-wecom", "在吗", [], group="presales"))

    looked = []
    ask = hub_b.presence.shared.supervisors_online

    async def counted() -> bool | None:
        looked.append(1)
        return await ask()

    hub_b.presence.shared.supervisors_online = counted
    for i in range(10):  # a burst of changes: Redis is asked once a push interval, not once a change
        await queue_one(i)
    await asyncio.sleep(0.5)
    assert sum(d.pushes for d in dashes) == 0  # nobody looking anywhere: no snapshot, no push
    assert 1 <= len(looked) <= 2

    sup = await Agent(server_url(a), await login(a, "sam")).connect()  # on process A
    try:
        await queue_one(10)  # a change on process B, which learns from Redis that A has a supervisor
        await sup.wait("dashboard.update", where=lambda d: d["queue"]["total"] == 11)
    finally:
        await sup.close()
    await asyncio.sleep(1.5)  # the disconnect is counted and any push already due has run
    pushed = sum(d.pushes for d in dashes)
    await queue_one(11)
    await asyncio.sleep(1.5)
    assert sum(d.pushes for d in dashes) == pushed
