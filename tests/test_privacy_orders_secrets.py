"""Order-platform secrets at rest (the ``order_sources`` setting): sealed in the database, sealed
when written in clear (config preset at start, ``settings.set`` at run time), still working for the
webhook, pushes and pollers, re-sealed by ``python -m hub secrets rotate``, and absent from logs and
answers. Network errors of the platform clients (WeCom gettoken, Youzan re-fetch) carry no
``corpsecret`` / ``access_token`` from their URLs."""
from __future__ import annotations

import json
import logging
import os
import pathlib
import re
import subprocess
import sys

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from hub.accounts import AccountInfo
from hub.app import HUB, create_app
from hub.clock import Clock
from hub.models import Setting
from hub.orders.api import ORDERS
from hub.outbound.api import PlatformApi, PlatformError, token_key
from hub.outbound.shared_tokens import Token
from hub.privacy import order_secrets
from hub.privacy.redact import redact_text
from hub.privacy.secrets import KeyRing, key_id
from tests.conftest import ROOT, auth
from tests.helpers import wait_for
from tests.order_standin import TB_SECRET, TB_SESSION, YZ_ID, YZ_SECRET, YZ_TOKEN, OrderStandin
from tests.rt_helpers import login, make_user
from tests.test_orders_sync import custom_order, hook

FIX = pathlib.Path(__file__).resolve().parent / "fixtures" / "orders"
K1 = "orders-first-key-0123456789abcdef"
K2 = "orders-second-key-fedcba98765432"
HOOK_SECRET = "hub-webhook-secret"
STANDIN_PATHS = re.compile(r'"(POST|GET) /(api/youzan\.trade\.get|router/rest|routerjson|order/orderDetail|cgi-bin/)')
ORDER_SECRETS = [HOOK_SECRET, YZ_SECRET, YZ_TOKEN, TB_SECRET, TB_SESSION, "dy-app-secret", "jd-secret", "jd-token"]


async def stored(hub) -> str:  # noqa: ANN001
    t = Setting.__table__
    async with hub.db.read() as conn:
        return " ".join(r.value for r in (await conn.execute(select(t).where(t.c.key == "order_sources"))).all())


@pytest.fixture
async def shops(aiohttp_server):
    standin = OrderStandin()
    server = await aiohttp_server(standin.app())
    standin.base_url = str(server.make_url("")).rstrip("/")
    return standin


def test_seal_open_redact_are_inverse_and_touch_only_secrets():
    ring = KeyRing.of(K1)
    cfg = {"webhook_secrets": ["a-secret", "old"], "youzan": [{"client_id": "id1", "client_secret": "yz-secret-1"}],
           "taobao": {"app_key": "k", "app_secret": "tb-secret-2", "session": "tb-session-3", "api_base": "http://x"},
           "poll_interval": 0, "trust_order_phone": True}
    sealed = order_secrets.seal_config(ring, cfg)
    assert sealed["youzan"][0]["client_id"] == "id1" and sealed["taobao"]["api_base"] == "http://x"
    assert sealed["poll_interval"] == 0 and sealed["taobao"]["app_key"] == "k"
    assert all(order_secrets.is_sealed(v) for v in order_secrets.secrets_of(sealed))
    assert not [s for s in ("a-secret", "yz-secret-1", "tb-secret-2", "tb-session-3") if s in json.dumps(sealed)]
    assert order_secrets.seal_config(ring, sealed) == sealed  # sealing twice changes nothing
    assert order_secrets.open_config(ring, sealed) == cfg
    assert order_secrets.plaintext_count(cfg) == 5 and order_secrets.plaintext_count(sealed) == 0
    assert set(order_secrets.secrets_of(order_secrets.redacted(cfg))) == {"***"}
    other = KeyRing.of(K2)
    assert order_secrets.open_config(other, sealed)["taobao"]["app_secret"] == ""  # unknown key: no secret
    resealed = order_secrets.reseal_config(ring, other, sealed)
    assert order_secrets.open_config(other, resealed) == cfg


async def test_order_secrets_sealed_working_rotated_and_never_shown(
        aiohttp_client, hub_config, clock, shops, monkeypatch, caplog, db_url):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HUB_SECRET_KEY", K1)
    sources = shops.sources()
    # the config file's [settings] preset writes them in clear; the hub seals them at start
    config = hub_config.__class__(**{**hub_config.__dict__, "settings": (("order_sources", sources),)})
    client = await aiohttp_client(create_app(config, clock))
    hub = client.server.app[HUB]
    at_rest = await stored(hub)
    assert not [s for s in ORDER_SECRETS if s in at_rest], at_rest
    assert f"v1:{key_id(K1)}:" in at_rest and shops.base_url in at_rest  # ids and URLs stay readable
    # every way in still works with the sealed secrets: generic webhook, Youzan push (+ re-fetch), pollers
    assert (await hook(client, custom_order("SEALED-1"))).status == 200
    full = json.loads((FIX / "youzan_order.json").read_text(encoding="utf-8"))["response"]["full_order_info"]
    shops.youzan[full["order_info"]["tid"]] = full
    assert (await client.post("/webhooks/orders/youzan", data=(FIX / "youzan_push.json").read_bytes())).status == 200
    assert any(c[0] == "youzan.trade.get" for c in shops.calls)
    polled = await client.server.app[ORDERS].poll_once()
    assert polled and not [p for p in polled if "error" in p], polled

    # written in clear at run time: used at once, sealed in the background
    await hub.settings.set("order_sources", {**sources, "webhook_secrets": ["runtime-secret"]})
    assert (await hook(client, custom_order("SEALED-2"), secret="runtime-secret")).status == 200

    async def sealed_again() -> bool:
        text = await stored(hub)
        return "runtime-secret" not in text and f"v1:{key_id(K1)}:" in text
    await wait_for(sealed_again)

    # no answer carries them: not to agents, supervisors, nor in the admin's settings and audit
    await make_user(hub, "ord_agent", role="agent")
    await make_user(hub, "ord_sup", role="supervisor")
    heads = [{"Authorization": f"Bearer {await login(client, n)}"} for n in ("ord_agent", "ord_sup")] + [auth()]
    for headers in heads:
        for path in ("/api/settings", "/api/audit", "/api/orders", "/api/me", "/api/accounts"):
            body = await (await client.get(path, headers=headers)).text()
            assert not [s for s in ORDER_SECRETS + ["runtime-secret"] if s in body], (path, headers)
    await client.close()

    # rotate with the command line: the order sources move to the new key with the accounts
    out = subprocess.run([sys.executable, "-m", "hub", "secrets", "rotate", "--db", db_url], cwd=ROOT,
                         capture_output=True, text=True, timeout=120,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HUB_SECRET_KEY_OLD": K1,
                              "HUB_SECRET_KEY_NEW": K2})
    assert out.returncode == 0, out.stderr
    assert "order-source secret(s)" in out.stdout and " 0 order-source" not in out.stdout, out.stdout
    monkeypatch.setenv("HUB_SECRET_KEY", K2)
    client = await aiohttp_client(create_app(hub_config, clock))
    hub = client.server.app[HUB]
    at_rest = await stored(hub)
    assert f"v1:{key_id(K2)}:" in at_rest and f"v1:{key_id(K1)}:" not in at_rest
    assert (await hook(client, custom_order("SEALED-3"), secret="runtime-secret")).status == 200
    assert (await hook(client, custom_order("SEALED-4"), secret="wrong-secret")).status == 401
    await client.close()

    # the platform stand-in's own access log shows what the platform is asked (Youzan takes access_token
    # in the URL): that is the platform's side, not the hub's logs
    hub_records = [r for r in caplog.records if not (r.name == "aiohttp.access" and STANDIN_PATHS.search(r.getMessage()))]
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in hub_records)
    leaks = [(r.name, r.getMessage()[:300]) for r in hub_records
             if [s for s in ORDER_SECRETS + ["runtime-secret", K1, K2] if s in r.getMessage() + (r.exc_text or "")]]
    assert logged and not leaks, leaks


@pytest.fixture
async def looping_gateway(aiohttp_server):
    """A platform gateway that redirects every request to itself: the HTTP client gives up with an
    error naming the full URL, query string (corpsecret, access_token) included."""
    async def loop(request: web.Request) -> web.Response:
        raise web.HTTPFound(str(request.rel_url))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", loop)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def test_platform_network_errors_carry_no_secret(looping_gateway, caplog):
    caplog.set_level(logging.DEBUG)
    account = AccountInfo(id="acme-wecom", platform="wecom", name="Acme", token="t", encoding_aes_key="k" * 43,
                          receive_id="ww-corp", secret="CORP-SECRET-VALUE")
    async with aiohttp.ClientSession() as session:
        # the raw client error names the URL with its secret: what must never reach a log or an answer
        with pytest.raises(aiohttp.ClientError) as raw:
            async with session.get(looping_gateway + "/cgi-bin/gettoken",
                                   params={"corpid": "ww-corp", "corpsecret": "CORP-SECRET-VALUE"}):
                pass
        assert "CORP-SECRET-VALUE" in str(raw.value) and "CORP-SECRET-VALUE" not in redact_text(str(raw.value))
        api = PlatformApi(session, Clock(), looping_gateway, looping_gateway)
        with pytest.raises(PlatformError) as failed:
            await api.access_token(account)
        assert failed.value.transient and "corpsecret=***" in str(failed.value)
        assert "CORP-SECRET-VALUE" not in str(failed.value) and failed.value.__cause__ is None
        api._tokens[token_key(account)] = Token("ACCESS-TOKEN-VALUE", 1e12)  # noqa: SLF001 - a token got earlier
        with pytest.raises(PlatformError) as call_failed:
            await api.call(account, "/cgi-bin/message/send", {"touser": "x"})
        assert "access_token=***" in str(call_failed.value) and "ACCESS-TOKEN-VALUE" not in str(call_failed.value)
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records
                       if not (r.name == "aiohttp.access" and STANDIN_PATHS.search(r.getMessage())))
    assert "CORP-SECRET-VALUE" not in logged and "ACCESS-TOKEN-VALUE" not in logged


async def test_youzan_refetch_failure_answers_and_logs_no_token(client, hub, looping_gateway, caplog):
    caplog.set_level(logging.DEBUG)
    await hub.settings.set("order_sources", {"youzan": {"client_id": YZ_ID, "client_secret": YZ_SECRET,
                                                        "api_base": looping_gateway, "access_token": YZ_TOKEN}})
    resp = await client.post("/webhooks/orders/youzan", data=(FIX / "youzan_push.json").read_bytes())
    body = await resp.text()
    assert resp.status == 502 and json.loads(body)["error"] == "upstream_unavailable"
    assert "access_token=***" in body and YZ_TOKEN not in body
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records
                       if not (r.name == "aiohttp.access" and STANDIN_PATHS.search(r.getMessage())))
    assert YZ_TOKEN not in logged and YZ_SECRET not in logged
