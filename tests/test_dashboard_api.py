"""The supervisor dashboard: the snapshot over HTTP (roles, figures, queue, agents, waiting sessions) and
``dashboard.update`` pushed live over a real Socket.IO client when sessions change (coalesced)."""
from __future__ import annotations

import asyncio

import pytest

from hub.clock import FakeClock
from hub.models import Conversation
from hub.service.sessions import Handover
from hub.supervisor.dashboard import DASHBOARD
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.test_stats import T0, seed_archive


@pytest.fixture
def clock():
    return FakeClock(T0)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_conversation(hub, peer: str) -> int:  # noqa: ANN001
    async with hub.db.write() as conn:
        return (await conn.execute(Conversation.__table__.insert().values(
            account_id="acme-wecom", channel="wecom", thread="", peer_id=peer, created_at=T0))).inserted_primary_key[0]


async def test_snapshot_roles_and_figures(client, hub):  # noqa: ANN001
    alice = await make_user(hub, "alice", groups=("presales",), cap=3)
    await make_user(hub, "sam", role="supervisor", groups=())
    agent_h, sup_h = bearer(await login(client, "alice")), bearer(await login(client, "sam"))
    client.session.cookie_jar.clear()
    assert (await client.get("/api/supervisor/dashboard")).status == 401
    r = await client.get("/api/supervisor/dashboard", headers=agent_h)
    assert r.status == 403 and (await r.json())["error"] == "forbidden"
    assert (await client.get("/api/supervisor/health", headers=agent_h)).status == 403

    await seed_archive(hub, agent_a=alice.id, agent_b=alice.id + 100)
    r = await client.get("/api/supervisor/dashboard?fresh=1", headers=sup_h)
    assert r.status == 200, await r.text()
    snap = await r.json()
    assert snap["now"] == T0 and snap["sla"]["first_reply"] == 120
    assert snap["today"]["total"]["sessions"] == 3 and snap["today"]["total"]["avg_reply"] == 80
    assert snap["health"]["answered_48h"]["share"] == round(6 / 7, 4)
    assert snap["health"]["linked_orders"]["share"] == 0.75
    assert [a["username"] for a in snap["agents"]] == ["alice", "sam"]  # a supervisor who takes sessions too
    waiting = snap["awaiting_first_reply"]
    assert [(w["agent_id"], w["waiting"], w["over_sla"]) for w in waiting] == [(alice.id, 100, False)]
    hub.clock.advance(30)
    snap = await (await client.get("/api/supervisor/dashboard", headers=sup_h)).json()
    assert snap["awaiting_first_reply"][0]["over_sla"] is True  # 130 s > 120 s
    await hub.settings.set("dashboard_first_reply_sla", 300)
    snap = await (await client.get("/api/supervisor/dashboard", headers=sup_h)).json()
    assert snap["sla"]["first_reply"] == 300 and snap["awaiting_first_reply"][0]["over_sla"] is False

    assert (await client.get("/api/supervisor/dashboard?fresh=yes", headers=sup_h)).status == 400
    r = await client.get("/api/supervisor/health?days=1", headers=sup_h)
    assert (await r.json())["days"] == 1
    for bad in ("0", "91", "x"):
        r = await client.get(f"/api/supervisor/health?days={bad}", headers=sup_h)
        assert r.status == 400 and (await r.json())["field"] == "days"


async def test_live_updates_follow_session_changes(client, hub):  # noqa: ANN001
    await make_user(hub, "sam", role="supervisor", groups=(), cap=0)
    await make_user(hub, "alice", groups=("presales",), cap=2)
    sup = await Agent(server_url(client), await login(client, "sam")).connect()
    alice = await Agent(server_url(client), await login(client, "alice")).connect()
    dash = client.server.app[DASHBOARD]
    try:
        cids = [await new_conversation(hub, f"c{i}") for i in range(3)]
        before = dash.pushes
        for cid in cids:  # a burst: three handovers, nobody online -> three queued
            await hub.sessions.route(Handover(cid, "acme-wecom", "在吗", [], group="presales"))
        update = (await sup.wait("dashboard.update", where=lambda d: d["queue"]["total"] == 3))[-1]
        assert update["queue"]["per_group"] == {"presales": 3}
        assert update["queue"]["longest_wait"] == 0 and update["queue"]["oldest_enqueued_at"] == T0
        assert [a["username"] for a in update["agents"]] == ["alice"]  # the supervisor with cap 0 is not listed
        assert dash.pushes > before
        assert "dashboard.update" not in alice.by_name  # supervisors only

        hub.clock.advance(45)
        await alice.call("status", {"status": "online"})  # takes two (cap 2); one stays queued
        update = (await sup.wait("dashboard.update", where=lambda d: d["queue"]["total"] == 1 and d["now"] == T0 + 45))[-1]
        assert update["queue"]["longest_wait"] == 45, update["queue"]
        me = update["agents"][0]
        assert me["status"] == "online" and me["load"] == 2 and me["cap"] == 2
        assert len(update["awaiting_first_reply"]) == 2
        assert all(w["waiting"] == 45 for w in update["awaiting_first_reply"])

        # a burst of changes makes one push (at most one per second), not one per change
        await asyncio.sleep(1.1)
        before, seen = dash.pushes, len(sup.by_name["dashboard.update"])
        for _ in range(20):
            await dash.on_session_change(None)
        await sup.wait("dashboard.update", count=seen + 1)
        await asyncio.sleep(0.3)
        assert dash.pushes == before + 1 and len(sup.by_name["dashboard.update"]) == seen + 1
    finally:
        await sup.close()
        await alice.close()


async def test_supervisor_online_follows_connections_and_roles():
    """The dashboard computes and pushes only while a supervisor or admin has a socket here."""
    from hub.presence import Presence
    from hub.push import MemoryStreams, Push
    from hub.users import UserInfo

    presence = Presence(Push(None, MemoryStreams()), grace=60)
    agent = UserInfo(1, "alice", "Alice", "agent", ("售前",), 5)
    boss = UserInfo(2, "sam", "Sam", "supervisor", (), 0)
    await presence.connected(agent, "a1")
    assert not presence.supervisor_online()
    await presence.connected(boss, "s1")
    await presence.connected(boss, "s2")
    assert presence.supervisor_online()
    await presence.disconnected(boss, "s1")
    assert presence.supervisor_online()  # still one tab open
    await presence.disconnected(boss, "s2")
    assert not presence.supervisor_online()
    await presence.connected(UserInfo(2, "sam", "Sam", "agent", (), 5), "s3")  # demoted since
    assert not presence.supervisor_online()
    for timer in presence._offline_timers.values():
        timer.cancel()
