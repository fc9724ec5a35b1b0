"""The audit log: record() masks secrets and keeps who/what/when/where; GET /api/audit filters,
pages and exports CSV, for admins only; X-Forwarded-For is believed only from trusted proxies."""
from __future__ import annotations

import csv
import io

from hub import audit
from hub.users import UserInfo
from tests.conftest import auth
from tests.rt_helpers import login, make_user

ADMIN = UserInfo(7, "ops", "运营", "admin", (), 0)


def test_mask_secrets_at_any_depth():
    value = {"name": "A", "token": "t0k", "encoding_aes_key": "k" * 43, "nested": [{"secret": "s", "ok": 1}],
             "password_hash": "scrypt$...", "empty_token": ""}
    masked = audit.mask_secrets(value)
    assert masked["token"] == masked["encoding_aes_key"] == masked["password_hash"] == "***"
    assert masked["nested"] == [{"secret": "***", "ok": 1}] and masked["name"] == "A"
    assert masked["empty_token"] == ""  # an empty value says "not set", which is not a secret


def test_client_ip_trusts_forwarded_for_only_from_trusted_proxies():
    assert audit.client_ip("203.0.113.9", "1.2.3.4", ["10.0.0.0/8"]) == "203.0.113.9"
    assert audit.client_ip("10.0.0.2", "1.2.3.4, 10.0.0.5", ["10.0.0.0/8"]) == "1.2.3.4"
    assert audit.client_ip("10.0.0.2", "", ["10.0.0.0/8"]) == "10.0.0.2"
    assert audit.client_ip("127.0.0.1", "6.6.6.6", []) == "127.0.0.1"


async def test_record_filter_page_and_csv(client, hub, clock):
    await audit.record(hub.db, hub.clock, actor=ADMIN, action="faq.create", target="faq:1",
                       after={"question": "运费", "answer": "包邮"})
    await audit.record(hub.db, hub.clock, actor=ADMIN, action="account.update", target="account:acme",
                       before={"name": "A", "token": "old"}, after={"name": "B", "token": "new"},
                       detail={"changed": ["name", "token"]})
    await audit.record(hub.db, hub.clock, actor=None, kind="access", action="customer.view", target="customer:3")
    resp = await client.get("/api/audit", headers=auth())
    body = await resp.json()
    assert resp.status == 200 and body["total"] == 3
    newest = body["entries"][0]
    assert newest["kind"] == "access" and newest["actor_name"] == "system" and newest["actor_id"] is None
    acct = next(e for e in body["entries"] if e["action"] == "account.update")
    assert acct["before"] == {"name": "A", "token": "***"} and acct["after"]["token"] == "***"
    assert acct["actor_name"] == "ops" and acct["actor_role"] == "admin"
    only = await (await client.get("/api/audit", params={"action": "faq"}, headers=auth())).json()
    assert [e["target"] for e in only["entries"]] == ["faq:1"]
    changes = await (await client.get("/api/audit", params={"kind": "change", "actor": "ops",
                                                             "target": "account"}, headers=auth())).json()
    assert [e["action"] for e in changes["entries"]] == ["account.update"]
    none = await (await client.get("/api/audit", params={"since": str(clock.now() + 60)}, headers=auth())).json()
    assert none["total"] == 0 and none["entries"] == []
    dated = await (await client.get("/api/audit", params={"since": "2000-01-01", "page": "2"}, headers=auth())).json()
    assert dated["total"] == 3 and dated["entries"] == [] and dated["page"] == 2
    exported = await client.get("/api/audit", params={"format": "csv", "kind": "change"}, headers=auth())
    assert exported.status == 200 and exported.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO((await exported.text()).lstrip("\ufeff"))))
    assert {r["action"] for r in rows} == {"faq.create", "account.update"}
    assert "old" not in await exported.text()


async def test_audit_query_validation_and_roles(client, hub):
    for params, field in [({"kind": "nope"}, "kind"), ({"page": "x"}, "page"), ({"page": "0"}, "page"),
                          ({"since": "yesterday"}, "since"), ({"since": "2024-02-02", "until": "2024-01-01"}, "until"),
                          ({"format": "xml"}, "format")]:
        resp = await client.get("/api/audit", params=params, headers=auth())
        assert resp.status == 400 and (await resp.json())["field"] == field, params
    assert (await client.get("/api/audit")).status == 401
    for role in ("agent", "supervisor"):
        await make_user(hub, f"r_{role}", role=role)
        token = await login(client, f"r_{role}")
        assert (await client.get("/api/audit", headers={"Authorization": f"Bearer {token}"})).status == 403
