"""Masking by role (API answers, search results, exports, orders), explicit audited reveals, and the
access audit trail of exports and searches."""
from __future__ import annotations

import csv
import json
import io

from sqlalchemy import select

from hub.archive.search.wiring import INDEXER
from hub.models import Conversation
from hub.models.orders import OrderRow
from hub.privacy.masking import can_see_pii, mask_address, mask_order, mask_text
from hub.users import UserInfo
from tests.conftest import auth
from tests.helpers import post
from tests.rt_helpers import login, make_user
from tests.wechat_client import text_xml

PII = "电话13812345678 身份证11010519491231002X 卡6222021234567890128 邮箱zhang.san@example.com"
ADMIN = UserInfo(1, "root", "root", "admin", (), 0)
AGENT = UserInfo(2, "a", "a", "agent", (), 5)


def test_mask_text_formats():
    assert mask_text("手机13812345678") == "手机138****5678"
    assert mask_text("+86 138-1234-5678") == "+86 138****5678"
    assert mask_text("座机010-62345678") == "座机010-****5678"
    assert mask_text("11010519491231002X") == "1101**********002X"
    assert mask_text("6222021234567890128") == "6222***********0128"
    assert mask_text("z.s@example.com") == "z***@example.com"
    assert mask_text("文三路90号3栋2单元501室") == "文三路**号**栋**单元**室"
    # order numbers, tracking numbers, dates and amounts are not personal data: left alone
    for keep in ("订单 3556789012345678901", "订单202401011234567890", "SF1234567890123", "2024-01-01 12:30",
                 "¥1380.00", "第2件"):
        assert mask_text(keep) == keep
    assert mask_address("浙江省杭州市西湖区文三路90号") == "浙江省杭州市西湖区****"
    assert can_see_pii(ADMIN) and not can_see_pii(AGENT) and not can_see_pii(None)
    order = {"receiver_name": "张三", "receiver_phone": "13812345678", "receiver_address": "北京市朝阳区建国路88号",
             "order_id": "TB-1"}
    masked = mask_order(AGENT, order)
    assert masked == {"receiver_name": "张*", "receiver_phone": "138****5678", "receiver_address": "北京市朝阳区****",
                      "order_id": "TB-1", "masked": True}
    assert mask_order(ADMIN, order) is order


async def _conversation(hub, peer: str) -> tuple[int, int]:  # noqa: ANN001
    t = Conversation.__table__
    async with hub.db.read() as conn:
        row = (await conn.execute(select(t.c.id, t.c.customer_id).where(t.c.peer_id == peer))).first()
    return row.id, row.customer_id


async def test_masked_for_supervisor_plain_for_admin_reveal_audited(client, hub, oa):
    await post(client, oa, text_xml("gh", "oPii", PII, 901))
    await hub.pipeline.drain()
    conv_id, customer_id = await _conversation(hub, "oPii")
    await make_user(hub, "sup1", role="supervisor")
    sup = {"Authorization": f"Bearer {await login(client, 'sup1')}"}

    admin_page = await (await client.get(f"/api/conversations/{conv_id}/messages", headers=auth())).json()
    assert admin_page["messages"][0]["text"] == PII
    page = await (await client.get(f"/api/conversations/{conv_id}/messages", headers=sup)).json()
    msg = page["messages"][0]
    assert msg["masked"] and "13812345678" not in msg["text"] and "138****5678" in msg["text"]
    assert "11010519491231002X" not in msg["text"] and "zhang.san" not in msg["text"]

    await client.server.app[INDEXER].catch_up()
    hits = await (await client.get("/api/search", params={"q": "身份证"}, headers=sup)).json()
    assert hits["results"] and all("13812345678" not in h["text"] + h["highlight"] for h in hits["results"])
    admin_hits = await (await client.get("/api/search", params={"q": "身份证"}, headers=auth())).json()
    assert "13812345678" in admin_hits["results"][0]["text"]

    export = await client.get(f"/api/conversations/{conv_id}/export", params={"format": "csv"}, headers=sup)
    assert export.status == 200
    body = await export.text()
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert rows and "138****5678" in rows[0]["text"] and "13812345678" not in body

    reveal = await client.post("/api/reveal", json={"message_id": msg["id"]}, headers=sup)
    assert reveal.status == 200 and (await reveal.json())["value"] == PII

    async with hub.db.write() as conn:
        now = hub.clock.now()
        await conn.execute(OrderRow.__table__.insert().values(
            platform="taobao", order_id="TB-M1", customer_id=customer_id, status="paid", receiver_name="张三",
            receiver_phone="13812345678", receiver_address="浙江省杭州市西湖区文三路90号", created_at=now,
            modified_at=now, synced_at=now))
    orders = (await (await client.get("/api/orders", params={"customer_id": customer_id}, headers=sup)).json())["orders"]
    assert orders[0]["receiver_phone"] == "138****5678" and orders[0]["receiver_address"] == "浙江省杭州市西湖区****"
    plain = (await (await client.get("/api/orders", params={"customer_id": customer_id}, headers=auth())).json())
    assert plain["orders"][0]["receiver_phone"] == "13812345678"
    profile = await (await client.get(f"/api/customers/{customer_id}", headers=sup)).json()
    assert all("13812345678" not in str(o) for o in profile["orders"])
    rv = await client.post("/api/reveal", json={"platform": "taobao", "order_id": "TB-M1", "field": "receiver_phone"},
                           headers=sup)
    assert (await rv.json())["value"] == "13812345678"
    bad = await client.post("/api/reveal", json={"platform": "taobao", "order_id": "TB-M1", "field": "raw"},
                            headers=sup)
    assert bad.status == 400 and (await bad.json())["field"] == "field"

    # the access audit: who searched, exported, revealed what, from where — never the values
    audit = await (await client.get("/api/audit", params={"kind": "access"}, headers=auth())).json()
    by_action = {}
    for e in audit["entries"]:
        by_action.setdefault(e["action"], []).append(e)
    assert {"search", "export.conversation", "pii.reveal", "conversation.view"} <= set(by_action)
    exp = by_action["export.conversation"][0]
    assert exp["actor_name"] == "sup1" and exp["target"] == f"conversation:{conv_id}" and exp["ip"]
    assert exp["detail"] == {"format": "csv", "messages": 1}
    reveals = {e["target"] for e in by_action["pii.reveal"]}
    assert reveals == {f"message:{msg['id']}", "order:taobao:TB-M1"}
    assert "13812345678" not in str(audit) and "11010519491231002X" not in str(audit)
    csv_audit = await client.get("/api/audit", params={"kind": "access", "action": "export.conversation",
                                                       "format": "csv"}, headers=auth())
    assert csv_audit.status == 200 and "export.conversation" in await csv_audit.text()


async def test_agent_cannot_reveal_outside_their_conversations(client, hub, oa):
    await post(client, oa, text_xml("gh", "oPii2", PII, 902))
    await hub.pipeline.drain()
    conv_id, _ = await _conversation(hub, "oPii2")
    await make_user(hub, "agent9", role="agent", groups=("nobody",))
    agent = {"Authorization": f"Bearer {await login(client, 'agent9')}"}
    async with hub.db.read() as conn:
        from hub.models import Message
        mid = (await conn.execute(select(Message.__table__.c.id).where(
            Message.__table__.c.conversation_id == conv_id))).scalar()
    r = await client.post("/api/reveal", json={"message_id": mid}, headers=agent)
    assert r.status == 403
    r = await client.post("/api/reveal", json={"message_id": "x"}, headers=agent)
    assert r.status == 400 and (await r.json())["field"] == "message_id"
    r = await client.post("/api/reveal", json={"message_id": 10 ** 9}, headers=agent)
    assert r.status == 404
    client.session.cookie_jar.clear()  # the login above set the console cookie
    assert (await client.post("/api/reveal", json={"message_id": mid})).status == 401


async def test_cli_archive_export_is_audited(client, hub, oa, db_url):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT
    await post(client, oa, text_xml("gh", "oCli", "导出测试", 903))
    await hub.pipeline.drain()
    out = subprocess.run([sys.executable, "-m", "hub", "archive", "export", "--db", db_url], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HUB_SECRET_KEY_FILE": str(ROOT / "artifacts" / "t.key")})
    assert out.returncode == 0, out.stderr
    audit = await (await client.get("/api/audit", params={"action": "export.archive"}, headers=auth())).json()
    [entry] = audit["entries"]
    assert entry["kind"] == "access" and entry["actor_name"].startswith("cli:") and entry["detail"]["messages"] == 1


async def test_the_supervisors_views_quote_customers_masked(client, hub, oa):
    """The dashboard's waiting list, keyword-watch hits, alerts and quality hits quoted the customer's words
    with their phone number in full (pushed to the whole supervisors room, and in the APIs)."""
    await hub.settings.set("default_group", "presales")
    alice = await make_user(hub, "alice")
    await hub.sessions.set_status(alice, "online")
    await make_user(hub, "sup2", role="supervisor")
    sup = {"Authorization": f"Bearer {await login(client, 'sup2')}"}
    assert (await client.post("/api/watches", json={"word": "手机"}, headers=sup)).status == 201
    rule = {"kind": "anxiety_words", "name": "焦虑", "params": {"words": ["投诉"]}}
    assert (await client.post("/api/quality/rules", json=rule, headers=auth())).status == 201
    await post(client, oa, text_xml("gh", "oPhone", "转人工，我手机13712345678，再不处理就投诉", 902))
    await hub.pipeline.drain()
    seen = []
    dashboard = await (await client.get("/api/supervisor/dashboard", params={"fresh": "1"}, headers=sup)).json()
    seen += [w["first_message"] for w in dashboard["awaiting_first_reply"]]
    seen += [h["text"] for h in (await (await client.get("/api/watch-hits", headers=sup)).json())["hits"]]
    alerts = (await (await client.get("/api/alerts", headers=sup)).json())["alerts"]
    results = (await (await client.get("/api/quality/results", headers=sup)).json())["results"]
    await post(client, oa, text_xml("gh", "oPhone", "再说一次，我要投诉，电话13712345678", 903))  # joins the open alert
    await hub.pipeline.drain()
    alerts = (await (await client.get("/api/alerts", headers=sup)).json())["alerts"]
    seen += [json.dumps(a["detail"], ensure_ascii=False) for a in alerts + results]
    seen += [json.dumps(e["data"], ensure_ascii=False) for a in alerts for e in a.get("timeline", []) if e["data"]]
    assert len(seen) >= 5 and any("137****5678" in s for s in seen), seen
    assert not [s for s in seen if "13712345678" in s]
