"""The accounts admin API: add / edit WeCom corps and Official Accounts with field-level validation,
generated Token and EncodingAESKey, the callback URL, secrets only for admins and masked in the audit
log, and the live "does the platform reach us" status stamped by the callback path."""
from __future__ import annotations

import base64

from hub.account_status import tracker_of
from tests.conftest import WECOM, auth
from tests.helpers import post
from tests.rt_helpers import login, make_user
from tests.wechat_client import text_xml

NEW = {"id": "shop-oa", "platform": "oa", "name": "门店公众号", "receive_id": "wx00112233445566",
       "secret": "oa-app-secret"}


async def test_generate_create_edit_and_audit(client, hub):
    gen = await (await client.post("/api/accounts/generate", headers=auth())).json()
    assert len(gen["token"]) == 32 and gen["token"].isalnum()
    assert len(gen["encoding_aes_key"]) == 43 and len(base64.b64decode(gen["encoding_aes_key"] + "=")) == 32
    made = await client.post("/api/accounts", json={**NEW, **gen}, headers=auth())
    body = await made.json()
    assert made.status == 201, body
    assert body["callback_url"].endswith("/callbacks/oa/shop-oa") and body["callback_url"].startswith("http")
    assert body["token"] == gen["token"] and body["status"] is None
    assert await hub.accounts.get("shop-oa") is not None  # the registry has it at once (config bus)
    dup = await client.post("/api/accounts", json={**NEW, **gen}, headers=auth())
    assert dup.status == 409 and (await dup.json())["field"] == "id"
    edited = await client.put("/api/accounts/shop-oa", json={"name": "旗舰店公众号", "secret": ""}, headers=auth())
    assert edited.status == 200 and (await edited.json())["name"] == "旗舰店公众号"
    assert (await hub.accounts.get("shop-oa")).secret == "oa-app-secret"  # blank secret keeps the stored one
    listed = (await (await client.get("/api/accounts", headers=auth())).json())["accounts"]
    assert {a["id"] for a in listed} >= {"shop-oa", WECOM["id"]}
    entries = (await (await client.get("/api/audit", params={"target": "account:shop-oa"}, headers=auth())).json())["entries"]
    assert [e["action"] for e in entries] == ["account.update", "account.create"]
    update = entries[0]
    assert update["before"]["name"] == "门店公众号" and update["after"]["name"] == "旗舰店公众号"
    assert update["after"]["token"] == "***" and update["after"]["secret"] == "***"
    assert update["detail"] == {"changed": ["name"]}
    raw = await (await client.get("/api/audit", params={"format": "csv"}, headers=auth())).text()
    assert gen["token"] not in raw and gen["encoding_aes_key"] not in raw and "oa-app-secret" not in raw


async def test_field_errors(client, hub):
    good = {**NEW, "token": "abc123", "encoding_aes_key": "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"}
    cases = [({"id": ""}, "id"), ({"id": "bad id!"}, "id"), ({"platform": "line"}, "platform"),
             ({"token": "no spaces"}, "token"), ({"token": ""}, "token"), ({"encoding_aes_key": "short"}, "encoding_aes_key"),
             ({"encoding_aes_key": "!" * 43}, "encoding_aes_key"), ({"receive_id": ""}, "receive_id"),
             ({"receive_id": "wx 1"}, "receive_id"), ({"name": "x" * 65}, "name"), ({"secret": 5}, "secret")]
    for change, field in cases:
        resp = await client.post("/api/accounts", json={**good, **change}, headers=auth())
        assert resp.status == 400, (change, await resp.text())
        assert (await resp.json())["field"] == field, change
    fixed = await client.put(f"/api/accounts/{WECOM['id']}", json={"platform": "oa"}, headers=auth())
    assert fixed.status == 400 and (await fixed.json())["field"] == "platform"
    assert (await client.put("/api/accounts/nope", json={"name": "x"}, headers=auth())).status == 404
    assert (await client.post("/api/accounts", data="[]", headers=auth())).status == 400


async def test_roles(client, hub):
    for role in ("agent", "supervisor"):
        await make_user(hub, f"acct_{role}", role=role)
        h = {"Authorization": f"Bearer {await login(client, f'acct_{role}')}"}
        for method, path in [("GET", "/api/accounts"), ("POST", "/api/accounts"), ("GET", "/api/accounts/status"),
                             ("POST", "/api/accounts/generate"), ("PUT", f"/api/accounts/{WECOM['id']}")]:
            resp = await client.request(method, path, json={}, headers=h)
            assert resp.status == 403, (role, method, path)


async def test_live_status_from_callbacks(client, hub, wecom, clock):
    ok = await client.get(wecom.path, params=wecom.verify_query("hello", encrypted=True))
    assert ok.status == 200
    bad_query = wecom.verify_query("hello", encrypted=True)
    bad_query["msg_signature"] = "0" * 40
    assert (await client.get(wecom.path, params=bad_query)).status == 401
    resp = await post(client, wecom, text_xml(WECOM["receive_id"], "wmStatus", "你好", 7001))
    assert resp.status == 200
    assert (await client.get("/callbacks/wecom/nobody", params=bad_query)).status == 404
    status = (await (await client.get("/api/accounts/status", headers=auth())).json())["status"]
    mine = status[WECOM["id"]]
    assert mine["last_callback_at"] and mine["last_verify_at"] and mine["last_verify_ok"] is False
    assert "401" in mine["last_failure"] and "nobody" not in status  # unknown ids get no row
    tracker = tracker_of(client.server.app)
    await tracker.flush()  # what the background task does every few seconds
    tracker._stamps.clear()  # as another process would see it: from the table only
    again = (await (await client.get("/api/accounts", headers=auth())).json())["accounts"]
    stored = next(a for a in again if a["id"] == WECOM["id"])["status"]
    assert stored == mine


async def test_edit_with_blank_token_or_key_is_refused(client, hub):
    before = await hub.accounts.get(WECOM["id"])
    blanks = (({"token": "", "encoding_aes_key": ""}, "token"), ({"encoding_aes_key": " "}, "encoding_aes_key"))
    for blank, field in blanks:
        resp = await client.put(f"/api/accounts/{WECOM['id']}", json=blank, headers=auth())
        assert resp.status == 400 and (await resp.json())["field"] == field, await resp.text()
    await hub.accounts.reload()
    after = await hub.accounts.get(WECOM["id"])
    assert (after.token, after.encoding_aes_key) == (before.token, before.encoding_aes_key) == \
        (WECOM["token"], WECOM["encoding_aes_key"])
    kept = await client.put(f"/api/accounts/{WECOM['id']}", json={"name": "Acme 企业微信"}, headers=auth())
    assert kept.status == 200 and (await kept.json())["token"] == WECOM["token"]  # omitted: unchanged


async def test_an_official_account_in_safe_mode_refuses_unencrypted_posts(client, hub):
    """In plaintext the signature covers only token, timestamp and nonce: one signed query from a proxy's
    log carried any message as any follower for five minutes. Safe mode (as in the OA console) refuses it."""
    from tests.wechat_client import PlatformSim
    gen = await (await client.post("/api/accounts/generate", headers=auth())).json()
    made = await client.post("/api/accounts", json={**NEW, **gen, "message_mode": "safe"}, headers=auth())
    assert made.status == 201 and (await made.json())["message_mode"] == "safe"
    sim = PlatformSim("oa", "shop-oa", gen["token"], gen["encoding_aes_key"], NEW["receive_id"], hub.clock)
    assert (await post(client, sim, text_xml("gh", "oSafe", "加密的", 91001))).status == 200
    assert (await post(client, sim, text_xml("gh", "oVictim", "伪造的", 91002), encrypted=False)).status == 403
    edited = await client.put("/api/accounts/shop-oa", json={"message_mode": "compat"}, headers=auth())
    assert edited.status == 200 and (await edited.json())["message_mode"] == "compat"
    assert (await post(client, sim, text_xml("gh", "oPlain", "明文的", 91003), encrypted=False)).status == 200
    from tests.helpers import messages
    assert [m.text for m in await messages(hub, account_id="shop-oa")] == ["加密的", "明文的"]
    bad = await client.put("/api/accounts/shop-oa", json={"message_mode": "strict"}, headers=auth())
    assert bad.status == 400 and (await bad.json())["field"] == "message_mode"
    listed = (await (await client.get("/api/accounts", headers=auth())).json())["accounts"]
    assert {a["id"]: a["message_mode"] for a in listed}["shop-oa"] == "compat"
