"""Every registered route has a role decision, and the app enforces it: an anonymous request gets 401
(pages: a redirect to the login), an agent 403 on supervisor and admin endpoints, a supervisor 403 on
admin-only writes. A route added without an entry in ``DECISIONS`` fails this test.

Also: an agent reads only conversations, customers and orders of their own sessions and groups."""
from __future__ import annotations

import re

import pytest

from hub.models import Conversation, Customer, Message, ServiceSession
from hub.models.orders import OrderRow
from tests.rt_helpers import login, make_user

PUBLIC = "public"  # no login: platform callbacks, signed webhooks, login, health, static files, the socket
USER = "user"  # any logged-in user (what they may see inside is checked per object)
SUPERVISOR = "supervisor"  # supervisors and admins; agents 403
ADMIN = "admin"  # admins (and the API token); supervisors and agents 403
PAGE_USER = "page_user"  # an HTML page: anonymous -> login redirect
PAGE_SUPERVISOR = "page_supervisor"  # an HTML page for supervisors and admins: agents get the 403 page
PAGE_ADMIN = "page_admin"  # an operator page for admins: agents and supervisors get the 403 page
OBJECT = "object"  # any logged-in user, per object: an agent gets 403 on what is not theirs (tested below)

DECISIONS: dict[str, str] = {
    # platform and infrastructure
    "* /socket.io/": PUBLIC, "GET /healthz": PUBLIC, "GET /ui/static": PUBLIC,
    "GET /callbacks/wecom/{account}": PUBLIC, "POST /callbacks/wecom/{account}": PUBLIC,
    "GET /callbacks/oa/{account}": PUBLIC, "POST /callbacks/oa/{account}": PUBLIC,
    "POST /webhooks/orders/youzan": PUBLIC, "POST /webhooks/orders/douyin": PUBLIC, "POST /webhooks/orders/hub": PUBLIC,
    "POST /api/login": PUBLIC, "POST /api/logout": PUBLIC, "GET /login": PUBLIC, "GET /": PUBLIC,
    "GET /admin": PUBLIC,  # a redirect to the first operator page, which checks
    # pages
    "GET /console": PAGE_USER, "GET /supervisor": PAGE_SUPERVISOR, "GET /supervisor/search": PAGE_SUPERVISOR, "GET /supervisor/search": PAGE_SUPERVISOR,
    **{f"GET /admin/{p}": PAGE_ADMIN for p in ("faq", "keywords", "routing", "users", "accounts", "audit",
                                                     "bot-settings", "channels", "sla", "quality", "privacy",
                                                     "search", "settings", "tickets")},
    # the agent's own world
    "GET /api/me": USER, "GET /api/conversations/{id}": OBJECT, "GET /api/conversations/{id}/messages": OBJECT,
    "GET /api/customers/{id}": OBJECT, "POST /api/customers/{id}/tags": OBJECT, "GET /api/tags": USER,
    "GET /api/orders": OBJECT, "GET /api/orders/{platform}/{order_id}": OBJECT, "POST /api/faq/match": USER,
    "GET /api/tickets": USER, "POST /api/tickets": OBJECT, "GET /api/tickets/{id}": OBJECT,
    "PATCH /api/tickets/{id}": OBJECT, "POST /api/tickets/{id}/transition": OBJECT,
    "POST /api/tickets/{id}/comments": OBJECT, "GET /api/ticket-types": USER, "POST /api/reveal": OBJECT,
    "GET /api/search": SUPERVISOR, "GET /api/conversations/{id}/export": SUPERVISOR,
    # supervisors (read) and admins (write)
    "POST /api/conversations/{id}/messages": ADMIN,
    "GET /api/supervisor/dashboard": SUPERVISOR, "GET /api/supervisor/health": SUPERVISOR,
    "GET /api/ticket-rules": SUPERVISOR, "POST /api/ticket-rules": ADMIN, "PUT /api/ticket-rules/{id}": ADMIN,
    "DELETE /api/ticket-rules/{id}": ADMIN, "POST /api/ticket-types": ADMIN, "PUT /api/ticket-types/{name}": ADMIN,
    "GET /api/faq": SUPERVISOR, "POST /api/faq": ADMIN, "GET /api/faq/{id}": SUPERVISOR, "PUT /api/faq/{id}": ADMIN,
    "DELETE /api/faq/{id}": ADMIN, "POST /api/faq/import": ADMIN, "GET /api/faq/export": SUPERVISOR,
    "GET /api/brand-words": SUPERVISOR, "POST /api/brand-words": ADMIN, "POST /api/brand-words/remove": ADMIN,
    "GET /api/keyword-rules": SUPERVISOR, "POST /api/keyword-rules": ADMIN, "POST /api/keyword-rules/test": SUPERVISOR,
    "PUT /api/keyword-rules/{id}": ADMIN, "DELETE /api/keyword-rules/{id}": ADMIN,
    "GET /api/bots/analytics": SUPERVISOR, "GET /api/bots/unanswered": SUPERVISOR,
    "POST /api/customers/merge": SUPERVISOR, "POST /api/merges/{id}/undo": SUPERVISOR, "GET /api/segments": SUPERVISOR,
    "GET /api/routing/rules": SUPERVISOR, "POST /api/routing/rules": ADMIN, "POST /api/routing/rules/order": ADMIN,
    "POST /api/routing/test": SUPERVISOR, "PUT /api/routing/rules/{id}": ADMIN, "DELETE /api/routing/rules/{id}": ADMIN,
    "GET /api/users": SUPERVISOR, "POST /api/users": ADMIN, "PUT /api/users/{id}": ADMIN,
    "GET /api/groups": SUPERVISOR, "POST /api/groups": ADMIN, "PUT /api/groups/{name}": ADMIN,
    "DELETE /api/groups/{name}": ADMIN,
    "POST /api/orders/import": ADMIN, "POST /api/orders/poll": ADMIN,
    "GET /api/channels": SUPERVISOR, "POST /api/channels": ADMIN, "GET /api/channels/{id}": SUPERVISOR,
    "PUT /api/channels/{id}": ADMIN, "DELETE /api/channels/{id}": ADMIN, "GET /api/channels/{id}/qr.png": SUPERVISOR,
    "GET /api/channels/{id}/qr.svg": SUPERVISOR, "GET /api/channels/{id}/stats": SUPERVISOR,
    "GET /api/accounts": ADMIN, "GET /api/accounts/status": ADMIN, "POST /api/accounts": ADMIN,
    "POST /api/accounts/generate": ADMIN, "PUT /api/accounts/{id}": ADMIN,
    "GET /api/audit": ADMIN, "GET /api/settings": ADMIN, "PUT /api/settings": ADMIN,
    "GET /api/watches": SUPERVISOR, "POST /api/watches": SUPERVISOR, "PUT /api/watches/{id}": SUPERVISOR,
    "DELETE /api/watches/{id}": SUPERVISOR, "GET /api/watch-hits": SUPERVISOR,
    "GET /api/alerts": SUPERVISOR, "POST /api/alerts/{id}/clear": SUPERVISOR,
    "GET /api/sla/rules": SUPERVISOR, "POST /api/sla/rules": ADMIN, "PUT /api/sla/rules/{id}": ADMIN,
    "DELETE /api/sla/rules/{id}": ADMIN,
    "GET /api/quality/rules": SUPERVISOR, "POST /api/quality/rules": ADMIN, "PUT /api/quality/rules/{id}": ADMIN,
    "DELETE /api/quality/rules/{id}": ADMIN, "GET /api/quality/results": SUPERVISOR,
    "GET /api/quality/summary": SUPERVISOR, "POST /api/quality/run": SUPERVISOR,
    "GET /api/holds": ADMIN, "POST /api/holds": ADMIN, "DELETE /api/holds/{id}": ADMIN, "GET /api/erasures": ADMIN, "POST /api/erasures": ADMIN,
    "POST /api/customers/{id}/erase": ADMIN, "GET /api/privacy/purges": ADMIN, "POST /api/privacy/purges": ADMIN,
    "GET /api/privacy/retention": ADMIN, "PUT /api/privacy/retention": ADMIN,
    "DELETE /api/privacy/retention/{account_id}": ADMIN,
}

PARAMS = {"id": "1", "name": "presales", "platform": "taobao", "order_id": "1", "account": "acme-wecom",
          "account_id": "acme-wecom"}


def _routes(app) -> list[tuple[str, str]]:  # noqa: ANN001
    out = set()
    for r in app.router.routes():
        if r.method == "HEAD":
            continue
        path = r.resource.canonical if r.resource is not None else ""
        out.add(("*" if path == "/socket.io/" else r.method, path))
    return sorted(out, key=lambda mp: (mp[1], mp[0]))


def _url(path: str) -> str:
    return re.sub(r"\{(\w+)(?::[^}]*)?\}", lambda m: PARAMS.get(m.group(1), "1"), path)


@pytest.fixture
async def tokens(client, hub):  # noqa: ANN001
    await make_user(hub, "ann", groups=("presales",))
    await make_user(hub, "sue", role="supervisor", groups=())
    out = {who: {"Authorization": f"Bearer {await login(client, who)}"} for who in ("ann", "sue")}
    client.session.cookie_jar.clear()  # the logins set cookies: requests without a header are anonymous
    return out


async def test_every_route_has_a_role_decision(client):  # noqa: ANN001
    missing = [f"{m} {p}" for m, p in _routes(client.server.app) if f"{m} {p}" not in DECISIONS]
    assert not missing, f"routes without a role decision in tests/test_access_control.py: {missing}"


async def test_every_route_enforces_its_decision(client, hub, tokens):  # noqa: ANN001
    wrong = []
    for method, path in _routes(client.server.app):
        decision = DECISIONS.get(f"{method} {path}")
        if decision in (None, PUBLIC):
            continue
        url, kw = _url(path), ({"json": {}} if method in ("POST", "PUT", "PATCH") else {})
        anon = await client.request(method, url, allow_redirects=False, **kw)
        agent = await client.request(method, url, headers=tokens["ann"], allow_redirects=False, **kw)
        sup = await client.request(method, url, headers=tokens["sue"], allow_redirects=False, **kw)
        got = (anon.status, agent.status, sup.status)
        if decision.startswith("page"):
            ok = anon.status == 302 and anon.headers.get("Location", "").startswith("/login")
            ok = ok and (agent.status == 403) == (decision != PAGE_USER) and (sup.status == 403) == (decision == PAGE_ADMIN)
        elif decision == OBJECT:
            ok = anon.status == 401 and agent.status != 401 and sup.status not in (401, 403)
        else:
            ok = anon.status == 401 and ((agent.status == 403) == (decision in (SUPERVISOR, ADMIN)))
            ok = ok and (sup.status == 403) == (decision == ADMIN)
        if not ok:
            wrong.append(f"{method} {path} ({decision}): anonymous/agent/supervisor -> {got}")
    assert not wrong, "\n".join(wrong)


async def _seed_two_groups(hub) -> dict[str, int]:  # noqa: ANN001
    """conversation 'mine' (presales, customer 10, order o-mine) and 'theirs' (vip, customer 20, o-theirs)."""
    ids = {}
    async with hub.db.write() as conn:
        for name, group, customer in (("mine", "presales", 10), ("theirs", "vip", 20)):
            await conn.execute(Customer.__table__.insert().values(id=customer, name=name, created_at=1.0))
            cid = (await conn.execute(Conversation.__table__.insert().values(
                account_id="acme-wecom", channel="wecom", thread="", peer_id=name, created_at=1.0,
                customer_id=customer))).inserted_primary_key[0]
            await conn.execute(ServiceSession.__table__.insert().values(
                conversation_id=cid, account_id="acme-wecom", state="closed", group=group, created_at=1.0,
                handover_at=1.0, closed_at=2.0))
            await conn.execute(Message.__table__.insert().values(
                account_id="acme-wecom", conversation_id=cid, channel="wecom", direction="in", kind="text",
                peer_id=name, sender="customer", text="hi", sent_at=1, created_at=1.0))
            await conn.execute(OrderRow.__table__.insert().values(
                platform="taobao", order_id=f"o-{name}", status="paid", customer_id=customer, created_at=1.0,
                modified_at=1.0, synced_at=1.0))
            ids[name] = cid
    return ids


async def test_agent_reads_only_conversations_customers_orders_of_their_groups(client, hub, tokens):  # noqa: ANN001
    ids = await _seed_two_groups(hub)
    ann, sue = tokens["ann"], tokens["sue"]
    for url, mine_ok in ((f"/api/conversations/{ids['mine']}", True), (f"/api/conversations/{ids['mine']}/messages", True),
                         ("/api/customers/10", True), ("/api/orders?customer_id=10", True),
                         ("/api/orders/taobao/o-mine", True)):
        r = await client.get(url, headers=ann)
        assert r.status == 200, (url, r.status, await r.text())
        theirs = url.replace(str(ids["mine"]), str(ids["theirs"])).replace("10", "20").replace("o-mine", "o-theirs")
        r = await client.get(theirs, headers=ann)
        assert r.status == 403 and (await r.json())["error"] == "forbidden", (theirs, r.status)
        assert (await client.get(theirs, headers=sue)).status == 200, theirs
    r = await client.post("/api/customers/20/tags", headers=ann, json={"add": ["VIP"]})
    assert r.status == 403
    # unknown ids: an agent learns nothing (403), a supervisor gets 404
    assert (await client.get("/api/conversations/999", headers=ann)).status == 403
    assert (await client.get("/api/conversations/999", headers=sue)).status == 404
    assert (await client.get("/api/orders/taobao/nope", headers=ann)).status == 403
    assert (await client.get("/api/orders/taobao/nope", headers=sue)).status == 404
    # an agent who replied in a conversation of another group may still read it (it was theirs)
    async with hub.db.write() as conn:
        await conn.execute(Message.__table__.insert().values(
            account_id="acme-wecom", conversation_id=ids["theirs"], channel="wecom", direction="out", kind="text",
            peer_id="theirs", sender=f"agent:{(await hub_user(hub, 'ann'))}", text="hello", sent_at=3, created_at=3.0))
    assert (await client.get(f"/api/conversations/{ids['theirs']}", headers=ann)).status == 200


async def hub_user(hub, username: str) -> int:  # noqa: ANN001
    return next(u.id for u in hub.sessions.agents.values() if u.username == username)
