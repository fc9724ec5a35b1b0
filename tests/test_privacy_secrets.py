"""Secrets at rest: account Tokens, EncodingAESKeys and API secrets are stored encrypted, never in
logs or in answers to non-admins; key rotation keeps every account working; Secure cookies behind TLS."""
from __future__ import annotations

import logging
import os
import subprocess
import sys

from sqlalchemy import select, text

from hub.app import HUB, create_app
from hub.models import Account, AccountSecret
from hub.privacy.secrets import KeyRing, SecretKeyError, key_id
from tests.conftest import OA, ROOT, WECOM, auth
from tests.helpers import count_messages, post
from tests.rt_helpers import login, make_user
from tests.wechat_client import text_xml

K1 = "first-secret-key-0123456789abcdef"
K2 = "second-secret-key-fedcba9876543210"
SECRETS = [WECOM["token"], WECOM["encoding_aes_key"], WECOM["secret"], OA["token"], OA["encoding_aes_key"],
           OA["secret"]]


def test_keyring_names_its_keys():
    sealed = KeyRing.of(K1).seal("hello")
    assert sealed.startswith(f"v1:{key_id(K1)}:") and "hello" not in sealed
    assert KeyRing.of(K2, K1).open(sealed) == "hello"  # old keys still decrypt during a rollover
    try:
        KeyRing.of(K2).open(sealed)
    except SecretKeyError as exc:
        assert key_id(K1) in str(exc) and K1 not in str(exc)
    else:
        raise AssertionError("a missing key must be named")


async def _dump(hub) -> str:  # noqa: ANN001
    """Everything in the accounts tables, as text."""
    async with hub.db.read() as conn:
        rows = [*(await conn.execute(select(Account.__table__))).all(),
                *(await conn.execute(select(AccountSecret.__table__))).all()]
    return "\n".join(" ".join(str(v) for v in r) for r in rows)


async def test_stored_encrypted_absent_from_logs_and_rotation_keeps_accounts(
        aiohttp_client, hub_config, clock, oa, wecom, monkeypatch, caplog, db_url):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HUB_SECRET_KEY", K1)
    client = await aiohttp_client(create_app(hub_config, clock))
    hub = client.server.app[HUB]
    stored = await _dump(hub)
    assert not [s for s in SECRETS if s in stored]
    assert f"v1:{key_id(K1)}:" in stored
    assert (await post(client, oa, text_xml("gh", "oSecret", "你好", 1))).status == 200
    assert (await post(client, wecom, text_xml(WECOM["receive_id"], "wmSecret", "在吗", 2))).status == 200
    await hub.pipeline.drain()
    assert await count_messages(hub) == 2

    # answers to non-admins carry no secret; admins see what they paste into the platform console
    await make_user(hub, "agent1", role="agent")
    await make_user(hub, "sup1", role="supervisor")
    for name in ("agent1", "sup1"):
        headers = {"Authorization": f"Bearer {await login(client, name)}"}
        for path in ("/api/accounts", "/api/accounts/status", "/api/me", "/api/audit"):
            resp = await client.get(path, headers=headers)
            body = await resp.text()
            assert not [s for s in SECRETS if s in body], (name, path)
    admin = await (await client.get("/api/accounts", headers=auth())).text()
    assert WECOM["token"] in admin
    # a failing callback and an error are logged without any secret
    await client.post(oa.path, params={"signature": "bad", "timestamp": "1", "nonce": "n"}, data=b"<xml/>")
    await client.close()

    # rotate with the command line, then the hub runs on the new key alone
    out = subprocess.run([sys.executable, "-m", "hub", "secrets", "rotate", "--db", db_url], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HUB_SECRET_KEY_OLD": K1,
                              "HUB_SECRET_KEY_NEW": K2})
    assert out.returncode == 0, out.stderr
    assert "2 account(s)" in out.stdout and not [s for s in SECRETS if s in out.stdout + out.stderr]
    monkeypatch.setenv("HUB_SECRET_KEY", K2)
    hub_config_rotated = hub_config.__class__(**{**hub_config.__dict__, "accounts": ()})  # nothing re-upserted
    client = await aiohttp_client(create_app(hub_config_rotated, clock))
    hub = client.server.app[HUB]
    stored = await _dump(hub)
    assert f"v1:{key_id(K2)}:" in stored and f"v1:{key_id(K1)}:" not in stored
    page = await (await client.get("/api/audit", params={"action": "secrets.rotate"}, headers=auth())).json()
    [entry] = page["entries"]  # the rotation is in the audit log, by the command line
    assert entry["actor_name"] == "cli" and entry["target"] == f"key:{key_id(K2)}" and entry["after"]["accounts"] == 2
    assert (await post(client, oa, text_xml("gh", "oSecret", "还在", 3))).status == 200
    assert (await post(client, wecom, text_xml(WECOM["receive_id"], "wmSecret", "好的", 4))).status == 200
    await hub.pipeline.drain()
    assert await count_messages(hub) == 4
    await client.close()

    # the old key alone no longer opens them: the accounts are not served, the log says which key is missing
    monkeypatch.setenv("HUB_SECRET_KEY", K1)
    client = await aiohttp_client(create_app(hub_config_rotated, clock))
    resp = await post(client, oa, text_xml("gh", "oSecret", "再试", 5))
    assert resp.status != 200
    assert any(key_id(K2) in r.getMessage() for r in caplog.records)
    await client.close()
    # the platform stand-in (the fake WeChat API server in this test) logs the URLs the platform's own
    # API asks secrets in (gettoken?corpsecret=); that is WeChat's side, not the hub's logs
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records
                       if not (r.name == "aiohttp.access" and "/cgi-bin/" in r.getMessage()))
    assert logged and not [s for s in SECRETS if s in logged]
    assert K1 not in logged and K2 not in logged


async def test_plaintext_rows_are_sealed_at_start(aiohttp_client, hub_config, clock, oa, monkeypatch):
    monkeypatch.setenv("HUB_SECRET_KEY", K1)
    client = await aiohttp_client(create_app(hub_config, clock))
    hub = client.server.app[HUB]
    async with hub.db.write() as conn:  # as an older hub left it
        await conn.execute(text("DELETE FROM account_secrets"))
        await conn.execute(Account.__table__.update().where(Account.__table__.c.id == OA["id"]).values(
            token=OA["token"], encoding_aes_key=OA["encoding_aes_key"], secret=OA["secret"]))
    await client.close()
    plain = hub_config.__class__(**{**hub_config.__dict__, "accounts": ()})
    client = await aiohttp_client(create_app(plain, clock))
    hub = client.server.app[HUB]
    assert not [s for s in SECRETS if s in await _dump(hub)]
    assert (await post(client, oa, text_xml("gh", "oLegacy", "你好", 7))).status == 200


async def test_cookie_secure_behind_trusted_tls_proxy(client, hub, monkeypatch):
    await make_user(hub, "cookie1", role="agent")
    body = {"username": "cookie1", "password": "cookie1-password"}
    plain = await client.post("/api/login", json=body)
    cookie = plain.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    spoofed = await client.post("/api/login", json=body, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" not in spoofed.headers["Set-Cookie"]  # not from a trusted proxy
    monkeypatch.setenv("HUB_TRUSTED_PROXIES", "127.0.0.1/32,::1")
    proxied = await client.post("/api/login", json=body, headers={"X-Forwarded-Proto": "https"})
    cookies = {name: proxied.cookies[name] for name in ("hub_session", "hub_csrf")}
    assert all(c["secure"] for c in cookies.values()), cookies  # the readable CSRF cookie too
    # refreshed on a later request through the proxy: still Secure
    client.session.cookie_jar.clear()
    token = cookies["hub_session"].value
    again = await client.get("/api/me", headers={"X-Forwarded-Proto": "https", "Cookie": f"hub_session={token}"})
    assert again.status == 200 and again.cookies["hub_csrf"]["secure"]
