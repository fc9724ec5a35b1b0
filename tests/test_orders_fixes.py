"""Order fixes: receiver data masked in live order.updated pushes, partial refunds in spend, several
shops under one Douyin/Youzan app, shop-scoped custom order ids, out-of-range values refused."""
from __future__ import annotations

from tests.conftest import WECOM
from tests.helpers import post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.test_orders_sync import custom_order, env, hook  # noqa: F401 - env is a fixture
from tests.wechat_client import text_xml

RECEIVER = {"name": "张三", "phone": "13912345678", "address": "北京市朝阳区建国路88号"}
RECEIVER_KEYS = ("receiver_name", "receiver_phone", "receiver_address")


async def _order_update_seen_by(env, standin, wecom, role):  # noqa: ANN001, ANN202
    client, hub, *_ = env
    await hub.settings.set("default_group", "presales")
    await make_user(hub, "alice", role=role)
    alice = await Agent(server_url(client), await login(client, "alice")).connect()
    try:
        assert (await alice.call("status", {"status": "online"}))["ok"]
        await hook(client, custom_order("S1", buyer_id="yz-buyer", platform="youzan", unionid="UNION-ORD",
                                        receiver=RECEIVER))
        standin.profiles["wmBuyer"] = {"unionid": "UNION-ORD", "name": "王小姐"}
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmBuyer", "我的面霜发货了吗", 30001))
        [bundle] = await alice.wait("session.new")
        await hook(client, custom_order("S1", "shipped", 1716180000, buyer_id="yz-buyer", platform="youzan",
                                        receiver=RECEIVER))
        [event] = await alice.wait("order.updated")
        return bundle["customer"]["orders"][0], event["order"]
    finally:
        await alice.close()


async def test_order_updated_masks_the_receiver_for_an_agent(env, wecom, standin):
    in_bundle, pushed = await _order_update_seen_by(env, standin, wecom, "agent")
    assert [pushed[k] for k in RECEIVER_KEYS] == ["张*", "139****5678", "北京市朝阳区****"]
    assert [pushed[k] for k in RECEIVER_KEYS] == [in_bundle[k] for k in RECEIVER_KEYS]
    assert pushed["status"] == "shipped" and pushed["masked"] is True


async def test_order_updated_shows_the_receiver_to_an_admin(env, wecom, standin):
    _, pushed = await _order_update_seen_by(env, standin, wecom, "admin")
    assert [pushed[k] for k in RECEIVER_KEYS] == ["张三", "13912345678", "北京市朝阳区建国路88号"]
