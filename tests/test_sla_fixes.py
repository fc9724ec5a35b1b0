"""SLA alerts raised by another hub process are cleared once their condition is met."""
from __future__ import annotations

from hub.supervisor.api import SUPERVISION
from tests.test_sla import desk, start_session  # noqa: F401 - the fixture


async def test_an_alert_raised_by_another_process_clears_when_met(desk):  # noqa: F811
    """With several processes the one that sees the reply may not know the alert another one raised
    after its last resync: the next resync clears it (it is not left open for good)."""
    await desk.rule(kind="first_reply", seconds=60)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await desk.advance(60)
    [alert] = await sam.wait("alert.raised")
    engine = desk.client.server.app[SUPERVISION].alerts
    engine.open.clear()  # as if another process had raised it since this one's last resync
    assert (await alice.call("reply", {"session_id": session["id"], "text": "您好"}))["ok"]
    await engine.resync()
    assert await desk.alerts() == []
    [done] = await desk.alerts("all")
    assert done["id"] == alert["id"] and done["clear_reason"] == "replied"
    [cleared] = await sam.wait("alert.cleared")
    assert cleared["id"] == alert["id"]


async def test_an_alert_of_a_session_closed_in_another_process_clears(desk):  # noqa: F811
    await desk.rule(kind="first_reply", seconds=60)
    alice, sam = await desk.connect("alice"), await desk.connect("sam")
    await alice.call("status", {"status": "online"})
    session = await start_session(desk, alice)
    await desk.advance(60)
    [alert] = await sam.wait("alert.raised")
    engine = desk.client.server.app[SUPERVISION].alerts
    engine.open.clear()
    assert (await alice.call("close", {"session_id": session["id"]}))["ok"]
    await engine.resync()
    assert await desk.alerts() == []
    [done] = await desk.alerts("all")
    assert done["clear_reason"] == "closed"
