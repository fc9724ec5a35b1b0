"""Security: secrets never reach the logs; CSRF on cookie-authenticated writes (hub/csrf.py); the
Socket.IO handshake needs a valid session and the hub's own origin, and an agent's socket cannot act
on another agent's session; login rate limits per user and per address."""
from __future__ import annotations

import logging

import pytest
import socketio
from sqlalchemy import select

from hub.accounts import upsert_account
from hub.csrf import CSRF_COOKIE, CSRF_HEADER, csrf_token
from hub.models import ServiceSession
from hub.realtime import COOKIE
from hub.users import add_user
from tests.conftest import API_TOKEN, OA, WECOM, auth
from tests.helpers import messages, post
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import text_xml


def cookies(client) -> dict[str, str]:  # noqa: ANN001
    return {c.key: c.value for c in client.session.cookie_jar}


# -- secrets in logs -------------------------------------------------------------------------------

async def test_no_secret_reaches_the_logs(client, hub, wecom, oa, standin, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, every level
    logging.getLogger("hub").setLevel(logging.DEBUG)
    password = "s3cret-pass-word"
    await make_user(hub, "sec_agent", role="agent")
    await add_user(hub.db, hub.clock, username="sec_admin", password=password, role="admin", display_name="",
                   groups=[], cap=5)
    added = await upsert_account(hub.db, hub.clock, id="sec-oa", platform="oa", name="", token=None,
                                 encoding_aes_key=None, receive_id="wxSECRET0001", secret="sec-app-secret-77")
    await hub.accounts.reload()
    # logins: a wrong password, then the right one
    assert (await client.post("/api/login", json={"username": "sec_admin", "password": password + "x"})).status == 401
    resp = await client.post("/api/login", json={"username": "sec_admin", "password": password})
    session_token = (await resp.json())["token"]
    # callbacks: good ones of both platforms, a tampered signature, a URL verification
    assert (await post(client, wecom, text_xml(WECOM["receive_id"], "wmSec", "你好", 9101))).status == 200
    assert (await post(client, oa, text_xml(OA["receive_id"], "oSec", "在吗", 9102))).status == 200
    assert (await post(client, oa, text_xml(OA["receive_id"], "oSec", "x", 9103), tamper_signature=True)).status == 401
    assert (await client.get(wecom.path, params=wecom.verify_query("echo-123", True))).status == 200
    await hub.pipeline.drain()
    # outbound through the platform API: an access token is fetched with the AppSecret and used
    conv_id = (await messages(hub, peer_id="oSec"))[0].conversation_id
    r = await client.post(f"/api/conversations/{conv_id}/messages", json={"text": "您好"}, headers=auth())
    assert r.status == 202, await r.text()
    await hub.outbound.drain()
    assert standin.tokens, "the outbound path fetched an access token"
    secrets = {
        "wecom token": WECOM["token"], "wecom aes key": WECOM["encoding_aes_key"], "wecom secret": WECOM["secret"],
        "oa token": OA["token"], "oa aes key": OA["encoding_aes_key"], "oa secret": OA["secret"],
        "added token": added.token, "added aes key": added.encoding_aes_key, "added secret": "sec-app-secret-77",
        "api token": API_TOKEN, "password": password, "session token": session_token,
        "csrf token": csrf_token(session_token), **{f"access token {i}": t for i, t in enumerate(standin.tokens)},
    }
    assert len(caplog.records) > 5  # the run did log (rejections, start, ...)
    # the stand-in platform API server runs in this process too: its access log (the platform's side,
    # /cgi-bin/... with ?access_token= and ?secret= as WeChat's API takes them) is not the hub's
    records = [r for r in caplog.records if not (r.name == "aiohttp.access" and "/cgi-bin/" in r.getMessage())]
    text = "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in records)
    leaked = [name for name, value in secrets.items() if value and value in text]
    assert leaked == [], f"secrets in the logs: {leaked}"


# -- CSRF -----------------------------------------------------------------------------------------

@pytest.fixture
async def admin_cookie(client, hub) -> str:
    await make_user(hub, "csrf_admin", role="admin")
    await login(client, "csrf_admin")  # the session cookie lands in the client's jar
    return cookies(client)[COOKIE]


async def test_login_hands_out_the_csrf_cookie(client, admin_cookie):
    assert cookies(client)[CSRF_COOKIE] == csrf_token(admin_cookie)


async def test_cookie_write_without_token_is_refused(client, admin_cookie):
    body = {"question": "跨站提交?", "answer": "不行"}
    r = await client.post("/api/faq", json=body)
    assert r.status == 403 and (await r.json())["error"] == "csrf_token"
    r = await client.post("/api/faq", json=body, headers={CSRF_HEADER: "0" * 64})
    assert r.status == 403 and (await r.json())["error"] == "csrf_token"
    r = await client.post("/api/faq", json=body, headers={CSRF_HEADER: "无效"})
    assert r.status == 403
    r = await client.post("/api/faq", json=body, headers={CSRF_HEADER: csrf_token(admin_cookie),
                                                          "Origin": "https://evil.example"})
    assert r.status == 403 and (await r.json())["error"] == "csrf_origin"
    r = await client.post("/api/faq", json=body, headers={CSRF_HEADER: csrf_token(admin_cookie),
                                                          "Referer": "https://evil.example/page"})
    assert r.status == 403
    r = await client.get("/api/faq")  # reading is not affected
    assert r.status == 200 and not any(f["question"] == "跨站提交?" for f in (await r.json()).get("items", []))


async def test_cookie_write_with_token_from_own_origin_works(client, admin_cookie):
    own = str(client.server.make_url("")).rstrip("/")
    r = await client.post("/api/faq", json={"question": "营业时间?", "answer": "9-18 点"},
                          headers={CSRF_HEADER: cookies(client)[CSRF_COOKIE], "Origin": own})
    assert r.status in (200, 201), await r.text()
    r = await client.post("/api/logout", headers={CSRF_HEADER: csrf_token(admin_cookie)})
    assert r.status == 200
    assert COOKIE not in cookies(client) and CSRF_COOKIE not in cookies(client)


async def test_x_forwarded_host_counts_only_from_a_trusted_proxy(client, hub, admin_cookie, monkeypatch):
    """Any client can send the header: from one that is not a trusted proxy it names no own host."""
    body = {"question": "代理?", "answer": "可信的才算"}
    headers = {CSRF_HEADER: csrf_token(admin_cookie), "Origin": "https://hub.example.com",
               "X-Forwarded-Host": "hub.example.com"}
    monkeypatch.delenv("HUB_TRUSTED_PROXIES", raising=False)
    r = await client.post("/api/faq", json=body, headers=headers)
    assert r.status == 403 and (await r.json())["error"] == "csrf_origin"
    monkeypatch.setenv("HUB_TRUSTED_PROXIES", "127.0.0.1")  # nginx on this host
    r = await client.post("/api/faq", json=body, headers=headers)
    assert r.status in (200, 201), await r.text()


async def test_bearer_clients_and_callbacks_are_exempt(client, wecom, admin_cookie):
    r = await client.post("/api/faq", json={"question": "脚本导入?", "answer": "可以"}, headers=auth())
    assert r.status in (200, 201), await r.text()
    r = await post(client, wecom, text_xml(WECOM["receive_id"], "wmCsrf", "你好", 9201))  # cookie in the jar
    assert r.status == 200


async def test_cross_site_login_is_refused(client, hub):
    await make_user(hub, "csrf_login", role="agent")
    creds = {"username": "csrf_login", "password": "csrf_login-password"}
    r = await client.post("/api/login", json=creds, headers={"Origin": "https://evil.example"})
    assert r.status == 403 and COOKIE not in cookies(client)
    r = await client.post("/api/login", json=creds, headers={"Origin": str(client.server.make_url("")).rstrip("/")})
    assert r.status == 200


async def test_existing_session_gets_its_csrf_cookie_on_the_next_page(client, admin_cookie):
    client.session.cookie_jar.clear()
    client.session.cookie_jar.update_cookies({COOKIE: admin_cookie})
    r = await client.get("/api/me")
    assert r.status == 200 and cookies(client)[CSRF_COOKIE] == csrf_token(admin_cookie)


# -- Socket.IO --------------------------------------------------------------------------------------

async def _connect(url: str, **kw) -> socketio.AsyncClient:  # noqa: ANN003
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(url, transports=["websocket"], wait_timeout=5, **kw)
    return sio


@pytest.mark.parametrize("how", ["nothing", "bogus token", "bogus cookie", "logged out"])
async def test_socket_without_a_valid_session_is_refused(client, hub, how):
    url = server_url(client)
    kw: dict = {}
    if how == "bogus token":
        kw["auth"] = {"token": "not-a-session"}
    elif how == "bogus cookie":
        kw["headers"] = {"Cookie": f"{COOKIE}=not-a-session"}
    elif how == "logged out":
        await make_user(hub, "sock_gone", role="agent")
        token = await login(client, "sock_gone")
        await client.post("/api/logout", headers={"Authorization": f"Bearer {token}"})
        kw["auth"] = {"token": token}
    with pytest.raises(socketio.exceptions.ConnectionError):
        await _connect(url, **kw)


async def test_socket_from_another_origin_is_refused(client, hub):
    await make_user(hub, "sock_origin", role="agent")
    token = await login(client, "sock_origin")
    url = server_url(client)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await _connect(url, auth={"token": token}, headers={"Origin": "https://evil.example"})
    sio = await _connect(url, auth={"token": token}, headers={"Origin": url})  # its own origin: fine
    await sio.disconnect()


async def test_agent_socket_cannot_act_on_another_agents_session(client, hub, wecom):
    """Agent B (another skill group) sends every session event for agent A's session: all refused."""
    await hub.settings.set("default_group", "presales")
    url = server_url(client)
    await make_user(hub, "sock_a", role="agent", groups=("presales",))
    await make_user(hub, "sock_b", role="agent", groups=("aftersales",))
    a = await Agent(url, await login(client, "sock_a")).connect()
    b = await Agent(url, await login(client, "sock_b")).connect()
    t = ServiceSession.__table__
    try:
        assert (await a.call("status", {"status": "online"}))["ok"]
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmOwn", "我要买", 9301))
        [bundle] = await a.wait("session.new")
        sid = bundle["session"]["id"]
        async with hub.db.read() as conn:
            before = (await conn.execute(select(t).where(t.c.id == sid))).one()
        refused = {}
        for event, data in [("reply", {"session_id": sid, "text": "不是我的", "client_id": "x1"}),
                            ("close", {"session_id": sid}), ("accept", {"session_id": sid}),
                            ("transfer", {"session_id": sid, "to_group": "aftersales"}),
                            ("tag", {"session_id": sid, "add": ["vip"]}),
                            ("session", {"session_id": sid}), ("history", {"session_id": sid})]:
            ack = await b.call(event, data)
            refused[event] = ack.get("ok") is False and ack.get("error") in ("forbidden", "not_found")
        assert all(refused.values()), refused
        async with hub.db.read() as conn:
            after = (await conn.execute(select(t).where(t.c.id == sid))).one()
        assert (after.agent_id, after.state) == (before.agent_id, before.state)
        assert not [m for m in await messages(hub, conversation_id=before.conversation_id) if m.direction == "out"]
    finally:
        await a.close()
        await b.close()


async def hub_user_id(hub, username: str) -> int:  # noqa: ANN001
    from hub.models import User
    u = User.__table__
    async with hub.db.read() as conn:
        return (await conn.execute(select(u.c.id).where(u.c.username == username))).scalar()


# -- login rate limits ------------------------------------------------------------------------------

async def test_login_is_rate_limited_per_user_and_per_address(client, hub):
    await make_user(hub, "rl_target", role="agent")
    await make_user(hub, "rl_other", role="agent")
    bad = {"username": "rl_target", "password": "wrong-password"}
    statuses = [(await client.post("/api/login", json=bad)).status for _ in range(hub.limiter.limit)]
    assert statuses == [401] * hub.limiter.limit
    r = await client.post("/api/login", json={"username": "rl_target", "password": "rl_target-password"})
    assert r.status == 429 and (await r.json())["error"] == "too_many_attempts"  # even the right password
    # the same address is now blocked for other users too (one address guessing many accounts)
    r = await client.post("/api/login", json={"username": "rl_other", "password": "rl_other-password"})
    assert r.status == 429
    # another address can still log the other user in, but not the attacked one (per-user limit)
    from hub.errors import HubError
    from hub.users import login as user_login
    _, user = await user_login(hub.db, hub.clock, hub.limiter, "rl_other", "rl_other-password", "10.0.0.9")
    assert user.username == "rl_other"
    with pytest.raises(HubError) as refused:
        await user_login(hub.db, hub.clock, hub.limiter, "rl_target", "rl_target-password", "10.0.0.9")
    assert refused.value.status == 429


async def test_parallel_guesses_all_count_and_clients_behind_the_proxy_are_told_apart(aiohttp_client, hub_config):
    """Twenty guesses sent at once: no more than the limit get an answer other than 429. Behind the
    trusted proxy (nginx), one client's failures do not lock out the others."""
    import asyncio
    import dataclasses

    from hub.app import HUB, create_app

    client = await aiohttp_client(create_app(dataclasses.replace(hub_config, trusted_proxies=("127.0.0.1",))))
    hub = client.server.app[HUB]
    await make_user(hub, "rl_par", role="agent")
    await make_user(hub, "rl_bystander", role="agent")
    attacker = {"X-Forwarded-For": "203.0.113.7"}
    bad = {"username": "rl_par", "password": "wrong-password"}
    statuses = await asyncio.gather(*(client.post("/api/login", json=bad, headers=attacker) for _ in range(20)))
    assert sorted(r.status for r in statuses).count(401) <= hub.limiter.limit
    assert 429 in [r.status for r in statuses]
    r = await client.post("/api/login", json={"username": "rl_bystander", "password": "rl_bystander-password"},
                          headers={"X-Forwarded-For": "198.51.100.20"})
    assert r.status == 200  # another person behind the same nginx


async def test_login_body_that_is_not_an_object_is_a_400(client):
    """A JSON body of [] or null was read with .get(): an AttributeError, a logged 500."""
    for body in (b"[]", b"null", b'"alice"', b"42"):
        r = await client.post("/api/login", data=body, headers={"Content-Type": "application/json"})
        assert r.status == 400, (body, r.status, await r.text())
        assert (await r.json())["error"] == "invalid_json"


async def test_an_authorization_header_that_is_not_a_bearer_token_does_not_skip_csrf(client, admin_cookie):
    """Only a Bearer token authenticates instead of the cookie (hub/auth_views.py request_token); any
    other Authorization header (HTTP Basic, which a browser adds by itself behind a proxy asking for
    it) skipped the CSRF check while the cookie still logged the request in."""
    body = {"question": "跨站 Basic?", "answer": "不行"}
    for header in ("Basic dXNlcjpwYXNz", "Digest username=x", "bearer-ish"):
        r = await client.post("/api/faq", json=body, headers={"Authorization": header,
                                                              "Origin": "https://evil.example"})
        assert r.status == 403 and (await r.json())["error"] == "csrf_origin", (header, r.status)
        r = await client.post("/api/faq", json=body, headers={"Authorization": header})
        assert r.status == 403 and (await r.json())["error"] == "csrf_token", (header, r.status)
    r = await client.get("/api/faq")
    assert not any(f["question"] == "跨站 Basic?" for f in (await r.json()).get("items", []))


async def test_an_unknown_username_costs_the_same_password_check(client, hub, monkeypatch):
    """A wrong password for a real user runs scrypt; an unknown (or disabled) name was answered at
    once, so the answer's time told which usernames exist. Each runs the password check once now."""
    import hub.users as users

    checked: list[str] = []
    real = users.verify_password
    monkeypatch.setattr(users, "verify_password", lambda password, stored: checked.append(password) or real(password, stored))
    await make_user(hub, "timing_known", role="agent")
    disabled = await make_user(hub, "timing_disabled", role="agent")
    r = await client.put(f"/api/users/{disabled.id}", json={"disabled": True}, headers=auth())
    assert r.status == 200
    for name in ("timing_known", "timing_nobody", "timing_disabled"):
        checked.clear()
        r = await client.post("/api/login", json={"username": name, "password": "wrong-password-1"})
        assert r.status == 401 and (await r.json())["error"] == "bad_credentials"
        assert checked == ["wrong-password-1"], name
    r = await client.post("/api/login", json={"username": "timing_disabled", "password": "timing_disabled-password"})
    assert r.status == 401  # the right password of a disabled user still does not log in


# -- where a login may lead ------------------------------------------------------------------------

async def test_the_login_page_leads_only_to_a_local_path(client, hub):
    """A browser drops tabs and newlines from a URL: "/\\t/evil.example" is "//evil.example", another site."""
    await make_user(hub, "next_agent", role="agent")
    await login(client, "next_agent")
    for nxt, where in [("/console?x=1", "/console?x=1"), ("/admin/faq", "/admin/faq"),
                       ("//evil.example", "/console"), ("/\\evil.example", "/console"),
                       ("/%09/evil.example", "/console"), ("/%0a/evil.example", "/console"),
                       ("/%0d%0a/evil.example", "/console"), ("https://evil.example", "/console"),
                       ("/ /evil.example", "/console")]:
        resp = await client.get(f"/login?next={nxt}", allow_redirects=False)
        assert (resp.status, resp.headers.get("Location")) == (302, where), nxt
