"""Retention purge with a controlled clock: messages, media and orders past their time go (search
index included), legal holds exempt, recent data stays, each run recorded without contents."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from hub.archive.search.wiring import INDEXER
from hub.clock import FakeClock
from hub.models import Conversation, Message
from hub.models.orders import OrderRow
from hub.privacy.retention import DAY, FOREVER, Policy, purge_plan
from tests.conftest import auth
from tests.helpers import post
from hub.callbacks import xmlcodec
from tests.wechat_client import text_xml

T0 = 1_732_261_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


def image_xml(frm: str, msg_id: int, at: int) -> str:
    return xmlcodec.render({"ToUserName": "gh", "FromUserName": frm, "CreateTime": at, "MsgType": "image",
                            "PicUrl": "http://img.example/1.jpg", "MediaId": "MEDIA-1", "MsgId": str(msg_id)})


async def texts(hub) -> set[str]:  # noqa: ANN001
    t = Message.__table__
    async with hub.db.read() as conn:
        return {r.text or r.kind for r in (await conn.execute(select(t.c.text, t.c.kind))).all()}


async def searched(client, q: str) -> int:  # noqa: ANN001
    resp = await client.get("/api/search", params={"q": q}, headers=auth())
    return len((await resp.json())["results"])


def test_purge_plan_is_pure_policy():
    now = 1000 * DAY
    plan = purge_plan([Policy("*", 180, 30, 365), Policy("acme-oa", 90, None, None), Policy("vip", FOREVER, 7)],
                      ["acme-oa", "acme-wecom", "vip"], now)
    got = {(p.what, p.account_id): p.before for p in plan}
    assert got == {("messages", "acme-oa"): now - 90 * DAY, ("media", "acme-oa"): now - 30 * DAY,
                   ("messages", "acme-wecom"): now - 180 * DAY, ("media", "acme-wecom"): now - 30 * DAY,
                   ("media", "vip"): now - 7 * DAY, ("orders", "*"): now - 365 * DAY}  # vip messages: forever
    assert purge_plan([], ["acme-oa"], now) == []  # no policy: kept forever


async def test_purge_respects_retention_holds_and_index(client, hub, oa, clock):
    t = int(clock.now())
    await post(client, oa, text_xml("gh", "oOld", "旧消息 退货地址在哪", 1, t))
    await post(client, oa, image_xml("oOld", 2, t))
    await post(client, oa, text_xml("gh", "oHeld", "诉讼中 退货纠纷", 3, t))
    await hub.pipeline.drain()
    await client.server.app[INDEXER].catch_up()
    assert await searched(client, "退货地址") == 1
    async with hub.db.read() as conn:
        held_conv = (await conn.execute(select(Conversation.__table__.c.id).where(
            Conversation.__table__.c.peer_id == "oHeld"))).scalar()
        held_customer = (await conn.execute(select(Conversation.__table__.c.customer_id).where(
            Conversation.__table__.c.peer_id == "oOld"))).scalar()
    r = await client.post("/api/holds", json={"kind": "conversation", "target_id": held_conv, "reason": "仲裁"},
                          headers=auth())
    assert r.status == 201
    async with hub.db.write() as conn:  # an old order of a held customer and one of nobody held
        for oid, cust in (("OLD-1", None), ("OLD-HELD", held_customer)):
            await conn.execute(OrderRow.__table__.insert().values(
                platform="custom", order_id=oid, customer_id=cust, status="completed", created_at=T0,
                modified_at=T0, synced_at=T0))
    r = await client.post("/api/holds", json={"kind": "customer", "target_id": held_customer, "reason": "争议订单"},
                          headers=auth())
    assert r.status == 201

    clock.advance(200 * DAY)  # 200 days later a new message arrives; policy: text 180 d, media 30 d, orders 90 d
    await post(client, oa, text_xml("gh", "oNew", "新消息 退货地址", 4, int(clock.now())))
    await hub.pipeline.drain()
    for body in ({"account_id": "*", "messages_days": 180, "media_days": 30, "orders_days": 90},):
        r = await client.put("/api/privacy/retention", json=body, headers=auth())
        assert r.status == 200, await r.text()
    bad = await client.put("/api/privacy/retention", json={"account_id": "*", "messages_days": 0}, headers=auth())
    assert bad.status == 400 and (await bad.json())["field"] == "messages_days"

    dry = await (await client.post("/api/privacy/purges", json={"dry_run": True}, headers=auth())).json()
    assert dry["dry_run"] and dry["counts"]["messages"] == 0 and dry["counts"]["media"] == 0  # the held customer's
    assert dry["counts"]["orders"] == 1                                  # conversation: oOld is the held customer

    # the hold on oOld's customer exempts it: lift it, keep the conversation hold on oHeld
    holds = (await (await client.get("/api/holds", headers=auth())).json())["holds"]
    cust_hold = next(h for h in holds if h["kind"] == "customer")
    assert (await client.delete(f"/api/holds/{cust_hold['id']}", headers=auth())).status == 200
    before = await texts(hub)
    run = await (await client.post("/api/privacy/purges", json={}, headers=auth())).json()
    assert run["status"] == "done" and not run["dry_run"]
    assert run["counts"]["messages"] == 1 and run["counts"]["media"] == 1 and run["counts"]["orders"] == 2
    after = await texts(hub)
    assert before - after == {"旧消息 退货地址在哪", "image"}
    assert "诉讼中 退货纠纷" in after and "新消息 退货地址" in after  # held, and recent
    await client.server.app[INDEXER].catch_up()
    assert await searched(client, "退货地址在哪") == 0 and await searched(client, "退货纠纷") == 1
    # the record: counts and ranges, never contents
    runs = (await (await client.get("/api/privacy/purges", headers=auth())).json())["runs"]
    record = json.dumps(runs[0], ensure_ascii=False)
    assert "退货" not in record and "oOld" not in record
    span = runs[0]["ranges"]["messages:acme-oa"]
    assert span["count"] == 1 and span["oldest_at"] == T0 and span["first_id"] == span["last_id"]
    async with hub.db.read() as conn:
        left = set((await conn.execute(select(OrderRow.__table__.c.order_id))).scalars())
    assert left == set()  # both old orders went once no hold covered them


async def test_retention_api_validation_and_roles(client, hub):
    r = await client.put("/api/privacy/retention", json={"account_id": "nope", "messages_days": 30}, headers=auth())
    assert r.status == 404
    r = await client.put("/api/privacy/retention", json={"account_id": "acme-oa", "orders_days": 30}, headers=auth())
    assert r.status == 400 and (await r.json())["field"] == "orders_days"
    r = await client.put("/api/privacy/retention", json={"account_id": "acme-oa", "messages_days": "forever"},
                         headers=auth())
    assert r.status == 200
    got = await (await client.get("/api/privacy/retention", headers=auth())).json()
    assert {"account_id": "acme-oa", "messages_days": "forever", "media_days": None, "orders_days": None} in got["policies"]
    assert {"account_id": "acme-oa", "messages_days": None, "media_days": None, "orders_days": None} in got["effective"]
    assert (await client.get("/api/privacy/retention")).status == 401
    r = await client.post("/api/holds", json={"kind": "planet", "target_id": 1, "reason": "x"}, headers=auth())
    assert r.status == 400 and (await r.json())["field"] == "kind"
    r = await client.post("/api/holds", json={"kind": "customer", "target_id": 999, "reason": "x"}, headers=auth())
    assert r.status == 404


async def test_a_hold_follows_the_customer_into_a_merge(client, hub, oa, clock):
    """A held customer merged into another: their conversations and orders now belong to the merge
    target, and the hold still covers them (it named the customer they came from)."""
    t = int(clock.now())
    await post(client, oa, text_xml("gh", "oHeldA", "诉讼证据 第一条", 11, t))
    await post(client, oa, text_xml("gh", "oOtherB", "同一个人的另一个号", 12, t))
    await hub.pipeline.drain()
    async with hub.db.read() as conn:
        conv = Conversation.__table__
        a, b = [(await conn.execute(select(conv.c.customer_id).where(conv.c.peer_id == p))).scalar()
                for p in ("oHeldA", "oOtherB")]
    async with hub.db.write() as conn:
        await conn.execute(OrderRow.__table__.insert().values(
            platform="custom", order_id="HELD-A-1", customer_id=a, status="completed", created_at=T0,
            modified_at=T0, synced_at=T0))
    r = await client.post("/api/holds", json={"kind": "customer", "target_id": a, "reason": "诉讼"}, headers=auth())
    assert r.status == 201
    r = await client.post("/api/customers/merge", json={"source": a, "target": b, "why": "同一人"}, headers=auth())
    assert r.status == 200, await r.text()
    clock.advance(400 * DAY)
    r = await client.put("/api/privacy/retention", headers=auth(),
                         json={"account_id": "*", "messages_days": 180, "media_days": 30, "orders_days": 90})
    assert r.status == 200
    run = await (await client.post("/api/privacy/purges", json={}, headers=auth())).json()
    assert run["status"] == "done"
    assert "诉讼证据 第一条" in await texts(hub)
    async with hub.db.read() as conn:
        assert "HELD-A-1" in set((await conn.execute(select(OrderRow.__table__.c.order_id))).scalars())


async def test_the_profile_shows_the_legal_hold(client, hub, oa):
    """docs/privacy.md: ``customers.legal_hold`` shows the hold on the profile; the profile
    (GET /api/customers/{id}) did not carry it. It does now, also for a hold that followed a merge."""
    await post(client, oa, text_xml("gh", "oShowHoldA", "你好", 21))
    await post(client, oa, text_xml("gh", "oShowHoldB", "你好", 22))
    await hub.pipeline.drain()
    async with hub.db.read() as conn:
        conv = Conversation.__table__
        a, b = [(await conn.execute(select(conv.c.customer_id).where(conv.c.peer_id == p))).scalar()
                for p in ("oShowHoldA", "oShowHoldB")]

    async def held(cid: int) -> bool:
        r = await client.get(f"/api/customers/{cid}", headers=auth())
        assert r.status == 200, await r.text()
        return (await r.json())["legal_hold"]

    assert await held(a) is False
    hold = await (await client.post("/api/holds", json={"kind": "customer", "target_id": a, "reason": "诉讼"},
                                    headers=auth())).json()
    assert await held(a) is True and await held(b) is False
    r = await client.post("/api/customers/merge", json={"source": a, "target": b, "why": "同一人"}, headers=auth())
    assert r.status == 200 and (await r.json())["customer"]["legal_hold"] is True
    assert await held(b) is True
    assert (await client.delete(f"/api/holds/{hold['id']}", headers=auth())).status == 200
    assert await held(b) is False


async def test_a_purge_from_the_command_line_is_in_the_audit_log(client, hub, db_url):
    import subprocess
    import sys

    from tests.conftest import ROOT
    out = subprocess.run([sys.executable, "-m", "hub", "privacy", "purge", "--db", db_url, "--dry-run"],
                         cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"PATH": "/usr/bin:/bin", "HUB_SECRET_KEY_FILE": str(ROOT / "artifacts" / "t.key")})
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)
    page = await (await client.get("/api/audit", params={"action": "retention.purge"}, headers=auth())).json()
    [entry] = page["entries"]
    assert entry["actor_name"] == "cli" and entry["target"] == f"purge:{run['id']}", entry
    assert entry["after"] == {"dry_run": True, "counts": run["counts"]}
