"""微信客服 sessions handled in the WeCom app: a staff member's reply from there (origin 5) answers the
hub's session (shown to its holder, no unanswered escalation), and a session a servicer ended there
(session_status_change, change_type 3) is closed in the hub without calling the platform back."""
from __future__ import annotations

from sqlalchemy import select

from hub.clock import FakeClock
from hub.models import ServiceSession, SessionEvent
from tests.helpers import post
from tests.rt_helpers import make_user
from tests.test_kf import KFID, signal, start

T0 = 1_732_500_000.0


def said(msgid: str, peer: str, text: str, at: int, origin: int = 3, **extra) -> dict:  # noqa: ANN003
    return {"msgid": msgid, "open_kfid": KFID, "external_userid": peer, "send_time": at, "origin": origin,
            "msgtype": "text", "text": {"content": text}, **extra}


async def session_of(hub) -> object:  # noqa: ANN001
    async with hub.db.read() as conn:
        [row] = (await conn.execute(select(ServiceSession.__table__))).all()
    return row


async def test_a_reply_from_the_wecom_app_answers_the_session(aiohttp_client, hub_config, standin):
    clock = FakeClock(T0)
    client, hub, sim = await start(aiohttp_client, hub_config, clock)
    await hub.settings.set("default_group", "presales")
    await hub.settings.set("unanswered_minutes", 5)
    lisi = await make_user(hub, "lisi")
    await hub.sessions.set_status(lisi, "online")
    pushed: list[tuple[int, str, dict]] = []
    real = hub.push.to_user

    async def spy(user_id, name, payload):  # noqa: ANN001, ANN202
        pushed.append((user_id, name, payload))
        return await real(user_id, name, payload)

    hub.push.to_user = spy
    now = int(clock.now())
    standin.add_kf_message(KFID, said("p-1", "wmApp", "转人工", now))
    assert (await post(client, sim, signal("T-1", now))).status == 200
    await hub.pipeline.drain()
    sess = await session_of(hub)
    await hub.sessions.accept(lisi, sess.id)
    clock.advance(30)
    standin.add_kf_message(KFID, said("p-2", "wmApp", "您好，我是客服李四", now + 30, origin=5, servicer_userid="lisi"))
    pushed.clear()
    assert (await post(client, sim, signal("T-2", now + 30))).status == 200
    await hub.pipeline.drain()
    sess = await session_of(hub)
    assert sess.first_reply_at is not None and sess.last_agent_at is not None
    [(to, _, payload)] = [p for p in pushed if p[1] == "message.new"]
    assert to == lisi.id and payload["message"]["sender"] == "staff:lisi"
    clock.advance(301)
    await hub.timers.fire_due()
    async with hub.db.read() as conn:
        kinds = [r.kind for r in await conn.execute(select(SessionEvent.__table__.c.kind))]
    assert "unanswered" not in kinds, kinds


async def test_a_session_a_servicer_ended_in_the_wecom_app_is_closed(aiohttp_client, hub_config, standin):
    clock = FakeClock(T0)
    client, hub, sim = await start(aiohttp_client, hub_config, clock)
    await hub.settings.set("default_group", "presales")
    now = int(clock.now())
    standin.add_kf_message(KFID, said("c-1", "wmEnd", "转人工", now))
    assert (await post(client, sim, signal("C-1", now))).status == 200
    await hub.pipeline.drain()
    assert (await session_of(hub)).state == "queued"
    calls = len(standin.state_changes)
    for n, ct in enumerate((1, 3)):  # a servicer took it from the pool in the app, then ended it there
        event = {"event_type": "session_status_change", "open_kfid": KFID, "external_userid": "wmEnd",
                 "change_type": ct, "msg_code": f"MC{n}"}
        standin.add_kf_message(KFID, {"msgid": f"c-e{n}", "send_time": now + 10 + n, "origin": 4,
                                      "msgtype": "event", "event": event})
    assert (await post(client, sim, signal("C-2", now + 12))).status == 200
    await hub.pipeline.drain()
    sess = await session_of(hub)
    assert sess.state == "closed" and sess.close_reason == "ended_on_platform"
    assert len(standin.state_changes) == calls  # the platform ended it: not told again
    alice = await make_user(hub, "alice")
    await hub.sessions.set_status(alice, "online")
    assert (await session_of(hub)).agent_id is None  # nobody is handed a session that is over


async def test_a_follower_who_unsubscribed_or_a_deleted_contact_ends_the_session(client, hub, oa, wecom):  # noqa: ANN001
    """An Official Account follower who unsubscribed while queued (or a WeCom contact deleted) kept the
    session: it went to an agent whose replies the platform refuses (43004 "require subscribe")."""
    from tests.conftest import WECOM
    from tests.wechat_client import event_xml, text_xml
    await hub.settings.set("default_group", "presales")
    await post(client, oa, text_xml("gh", "oLeft", "转人工", 53001))
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmLeft", "转人工", 53002))
    await hub.pipeline.drain()
    await post(client, oa, event_xml("gh", "oLeft", "unsubscribe"))
    await post(client, wecom, event_xml(WECOM["receive_id"], "sys", "change_external_contact",
                                        ChangeType="del_external_contact", UserID="zhangsan",
                                        ExternalUserID="wmLeft"))
    await hub.pipeline.drain()
    async with hub.db.read() as conn:
        rows = (await conn.execute(select(ServiceSession.__table__))).all()
    assert sorted((r.state, r.close_reason) for r in rows) == [("closed", "contact_deleted"),
                                                                ("closed", "unsubscribed")]
    alice = await make_user(hub, "alice")
    await hub.sessions.set_status(alice, "online")
    async with hub.db.read() as conn:
        assert all(r.agent_id is None for r in (await conn.execute(select(ServiceSession.__table__))).all())
