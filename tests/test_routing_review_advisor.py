"""Review of routing: a customer's own advisor (a channel code's staff member, a rule's exclusive agent)
going offline, on a clock the test moves."""
from __future__ import annotations

import pytest

from hub.clock import FakeClock
from hub.service.sessions import Handover
from tests.helpers import wait_for
from tests.rt_helpers import make_user
from tests.test_dashboard_api import new_conversation

T0 = 1_732_500_000.0


@pytest.fixture
def clock():
    return FakeClock(T0)


async def advised_session(hub, peer: str, text: str):  # noqa: ANN001, ANN201
    """Alice and Carol online in presales; ``peer``'s session routed to Alice, their advisor."""
    await hub.settings.set("default_group", "presales")
    alice = await make_user(hub, "alice")
    carol = await make_user(hub, "carol")
    await hub.sessions.set_status(alice, "online")
    await hub.sessions.set_status(carol, "online")
    session = await hub.sessions.route(Handover(await new_conversation(hub, peer), "acme-wecom", text, [],
                                                advisor_id=alice.id))
    return alice, carol, session


async def test_an_advisors_session_goes_to_the_group_when_the_advisor_goes_offline(client, hub):  # noqa: ANN001
    """Alice is the customer's advisor and serves them; ten minutes later she goes offline and the
    session is queued again. It had waited past advisor_wait (300 s) long ago, so her group should
    take it at once; but the dispatcher only learns the time from the advisor-fallback timer, which
    was never armed for a session requeued this way: it waited for Alice, offline, with Carol idle."""
    alice, carol, session = await advised_session(hub, "wmAdvised", "上次买的面霜")
    assert session["agent_id"] == alice.id
    hub.clock.advance(600)
    await hub.sessions.set_status(alice, "offline")
    await hub.timers.fire_due()
    # (on PostgreSQL, where several processes may share the database, a rebuild of the dispatcher may
    # be under way meanwhile: give it a moment)
    await wait_for(lambda: hub.sessions.dispatcher.agent_of(session["id"]) == carol.id)
    listed = await wait_for(lambda: hub.sessions.list_for(carol))
    assert [(s["id"], s["state"]) for s in listed] == [(session["id"], "assigned")]


async def test_a_requeued_advisors_session_falls_back_when_its_wait_ends(client, hub):  # noqa: ANN001
    """The same, the advisor going offline before advisor_wait has passed: the session waits for her
    until then, and then goes to her group."""
    alice, carol, session = await advised_session(hub, "wmAdvised2", "在吗")
    hub.clock.advance(60)
    await hub.sessions.set_status(alice, "offline")
    await hub.timers.fire_due()
    assert hub.sessions.dispatcher.agent_of(session["id"]) is None  # waits for Alice
    hub.clock.advance(241)
    await hub.timers.fire_due()
    await wait_for(lambda: hub.sessions.dispatcher.agent_of(session["id"]) == carol.id)
