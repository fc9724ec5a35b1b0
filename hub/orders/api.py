"""HTTP ways in for orders (configuration: ``order_sources``, see ``sync.py``).

Platform pushes (signature checked on the RAW body; 401 bad/missing signature, 403 platform not
configured, 400 ``{"error": "invalid_payload", "field": …}`` for a malformed body — nothing written,
502 when the order cannot be re-fetched, so the platform retries):

* ``POST /webhooks/orders/youzan`` — Youzan 消息推送. Header ``Event-Sign`` = md5(client_id + body +
  client_secret), or body ``sign`` = md5(client_id + msg + client_secret). Body: the push JSON
  (``msg_id``, ``type``, ``id``, ``msg`` …). Answers ``{"code": 0, "msg": "success"}``.
* ``POST /webhooks/orders/douyin`` — 抖店 消息推送. Headers ``app-id``, ``event-sign`` =
  md5(app_key + body + app_secret). Body: JSON array of ``{"tag", "msg_id", "data"}``.
  Answers ``{"code": 0, "msg": "success"}``. Douyin waits 5 s for the answer: a batch's orders are
  re-fetched ``DOUYIN_FETCHES`` at a time, and those not done within ``DOUYIN_BUDGET_S`` go on in the
  background while the answer is a 503, so the platform redelivers (what was done is a duplicate then).
* ``POST /webhooks/orders/hub`` — generic HMAC webhook for order middleware / custom shops. Headers
  ``X-Hub-Timestamp`` (Unix s, ±300 s) and ``X-Hub-Signature`` = hex HMAC-SHA256(secret,
  timestamp + "." + body) with a secret of ``order_sources.webhook_secrets``; optional
  ``X-Hub-Message-Id`` (dedup). Body: one order in the hub's JSON format (``hub.orders.custom``) or
  ``{"orders": [...]}``, all written in one transaction. Answers ``{"ok", "changed", "unchanged",
  "duplicate"}``.

Console / API (``Authorization: Bearer <token>`` or the login cookie; the API token acts as admin):

* ``POST /api/orders/import`` (admin) — CSV body (``text/csv``) or multipart field ``file``;
  streamed. Answers ``{"imported", "unchanged", "lines", "rejected": [{line, field, message}],
  "rejected_total", "customers"}``.
* ``POST /api/orders/poll`` (admin) — run one poll pass now; ``{"sources": [...]}``.
* ``GET /api/orders?customer_id=&limit=`` (any user) — a customer's recent orders.
* ``GET /api/orders/{platform}/{order_id}`` (any user) — one order.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from aiohttp import web

from .. import safe_json
from ..api import int_param
from ..auth_views import require_user
from ..service.reading import require_customer
from ..errors import HubError, bad_request, not_found
from . import custom, parse_order
from .clients import GatewayError
from .errors import PayloadError
from .model import order_key
from .signatures import (DOUYIN_APP_HEADER, parse_douyin_push, parse_youzan_push, verify_douyin_push,
                         verify_hub_webhook, verify_youzan_push)
from .store import get_order, recent_orders
from .sync import OrderSync, entries

log = logging.getLogger(__name__)
ORDERS = web.AppKey("orders", OrderSync)
SUCCESS = {"code": 0, "msg": "success"}
DOUYIN_ORDER_TAGS = {"100", "101", "102", "103", "105", "106", "110", "113", "200", "206", "207"}
DOUYIN_BUDGET_S = 4.0  # of the 5 s Douyin waits for a push's answer before it redelivers the batch
DOUYIN_FETCHES = 8  # re-fetches of one batch at a time
_unfinished: set[asyncio.Task] = set()  # a batch's re-fetches that went on after its answer


def _sync(request: web.Request) -> OrderSync:
    if ORDERS not in request.app:
        raise HubError(503, "starting", "order sync is starting")
    return request.app[ORDERS]


def invalid(exc: PayloadError, prefix: str = "") -> HubError:
    field = f"{prefix}{exc.field}" if prefix and exc.field != "$" else (prefix.rstrip(".") or exc.field)
    return HubError(400, "invalid_payload", exc.message, field)


async def _fetched(fetch: Any) -> Any:
    """Run a re-fetch; the platform being unreachable or sending junk is a 502 (retry later)."""
    try:
        return await fetch()
    except GatewayError as exc:
        raise HubError(502, "upstream_unavailable", str(exc)[:300]) from None
    except PayloadError as exc:
        raise HubError(502, "upstream_invalid", f"the platform's order does not parse: {exc.message}",
                       exc.field) from None


# ---------------------------------------------------------------- platform pushes

def shop_entry(verified: list[dict[str, Any]], shop_id: str) -> dict[str, Any] | None:
    """Which of the entries that verified a push serves its shop: several shops under one app are
    one entry each (same app credentials, their own ``shop_id``/``access_token``), so the push's shop
    id picks; a lone entry serves whatever it is sent. None: several entries, none of that shop."""
    shop_id = str(shop_id or "").strip()
    if shop_id:
        for entry in verified:
            if str(entry.get("shop_id") or "").strip() == shop_id:
                return entry
    return verified[0] if len(verified) == 1 else None


def unknown_shop(platform: str, shop_id: str) -> HubError:
    return HubError(400, "unknown_shop", f"no {platform} entry of order_sources is for shop {shop_id or '(none)'!r}",
                    "shop_id")


async def youzan_push(request: web.Request) -> web.Response:
    sync = _sync(request)
    body = await request.read()
    apps = [a for a in entries(await sync.config(), "youzan") if a.get("client_secret")]
    if not apps:  # an entry without its secret verifies nothing: md5(client_id + body) is anyone's to compute
        raise HubError(403, "not_configured", "no Youzan app with a client_secret is configured")
    verified = [a for a in apps if verify_youzan_push(body, request.headers, str(a.get("client_id", "")),
                                                      str(a.get("client_secret", "")))]
    if not verified:
        raise HubError(401, "bad_signature", "Event-Sign / sign does not match")
    try:
        msg = parse_youzan_push(body)
    except PayloadError as exc:
        raise invalid(exc) from None
    # trade messages: trade_TradePaid … (4.0 push) and TRADE / TRADE_ORDER_STATE / TRADE_ORDER_REFUND … (the
    # older pushes, upper case); others (SCRM_CUSTOMER_CARD …) are not orders
    if msg.test or not msg.event_type.lower().startswith("trade") or not msg.order_id:
        return web.json_response(SUCCESS)
    app = shop_entry(verified, msg.shop_id)
    if app is None:
        raise unknown_shop("youzan", msg.shop_id)
    if app.get("api_base") and app.get("access_token"):
        async def fetch() -> Any:
            return await sync.client("youzan", app).fetch(msg.order_id)
    elif isinstance(msg.data.get("full_order_info"), dict):
        try:  # the push carries the full order: use it (bad data is the sender's fault: 400)
            pushed = parse_order("youzan", msg.data, shop_id=str(app.get("shop_id") or ""))
        except PayloadError as exc:
            raise invalid(exc, "msg.full_order_info.") from None

        async def fetch() -> Any:
            return pushed
    else:
        async def fetch() -> Any:
            return None
    await sync.handle_push("youzan", msg.message_id, msg.order_id, lambda: _fetched(fetch))
    return web.json_response(SUCCESS)


async def douyin_push(request: web.Request) -> web.Response:
    sync = _sync(request)
    body = await request.read()
    apps = [a for a in entries(await sync.config(), "douyin") if a.get("app_secret")]
    if not apps:  # an entry without its secret verifies nothing (as for Youzan)
        raise HubError(403, "not_configured", "no Douyin app with an app_secret is configured")
    app_id = request.headers.get(DOUYIN_APP_HEADER)
    candidates = [a for a in apps if app_id is None or str(a.get("app_key", "")) == app_id.strip()]
    verified = [a for a in candidates if verify_douyin_push(body, request.headers, str(a.get("app_key", "")),
                                                            str(a.get("app_secret", "")))]
    if not verified:
        raise HubError(401, "bad_signature", "event-sign does not match")
    try:
        messages = parse_douyin_push(body)
    except PayloadError as exc:
        raise invalid(exc) from None
    unknown = ""
    handles: list[Callable[[], Awaitable[Any]]] = []
    for msg in messages:
        if msg.test or msg.event_type not in DOUYIN_ORDER_TAGS or not msg.order_id:
            continue
        app = shop_entry(verified, msg.shop_id)
        if app is None:  # the batch's other messages are handled; a retry redoes only this one (dedup)
            unknown = unknown or msg.shop_id or "(none)"
            continue

        async def fetch(order_id: str = msg.order_id, app: dict[str, Any] = app) -> Any:
            if not app.get("api_base"):
                return None  # the push carries ids only: nothing to upsert without the API
            return await sync.client("douyin", app).fetch(order_id)

        handles.append(lambda m=msg, f=fetch: sync.handle_push("douyin", m.message_id, m.order_id,
                                                               lambda: _fetched(f)))
    await _within_budget(handles)
    if unknown:
        raise unknown_shop("douyin", unknown)
    return web.json_response(SUCCESS)


async def _within_budget(handles: list[Callable[[], Awaitable[Any]]]) -> None:
    """Run a batch's push handlings ``DOUYIN_FETCHES`` at a time. Those not done in ``DOUYIN_BUDGET_S``
    are not cancelled (a write cut short is no help): they finish in the background and the answer is
    a 503, so the platform redelivers the batch, whose handled messages are then duplicates. The first
    failure (a 502: the order could not be re-fetched) is raised once all are done."""
    if not handles:
        return
    gate = asyncio.Semaphore(DOUYIN_FETCHES)

    async def one(handle: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await handle()

    tasks = [asyncio.ensure_future(one(h)) for h in handles]
    _, pending = await asyncio.wait(tasks, timeout=DOUYIN_BUDGET_S)
    if pending:
        for task in pending:
            _unfinished.add(task)
            task.add_done_callback(_finished_late)
        log.warning("douyin push: %d of %d orders not handled within %.0f s; answering 503 for a redelivery",
                    len(pending), len(tasks), DOUYIN_BUDGET_S)
        raise HubError(503, "busy", f"{len(pending)} of {len(tasks)} orders are still being fetched; redeliver")
    for task in tasks:
        if task.exception() is not None:
            raise task.exception()


def _finished_late(task: asyncio.Task) -> None:
    _unfinished.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.warning("douyin push: a late re-fetch failed (the redelivery retries it): %s", task.exception())


async def hub_webhook(request: web.Request) -> web.Response:
    sync = _sync(request)
    body = await request.read()
    secrets = (await sync.config()).get("webhook_secrets")
    secrets = [secrets] if isinstance(secrets, str) else [s for s in secrets or [] if isinstance(s, str)]
    if not secrets:
        raise HubError(403, "not_configured", "no webhook secret is configured")
    if not verify_hub_webhook(body, request.headers, secrets, sync.clock.now()):
        raise HubError(401, "bad_signature", "X-Hub-Signature / X-Hub-Timestamp do not match")
    try:
        payload = safe_json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise HubError(400, "invalid_payload", "body is not JSON", "$") from None
    many = isinstance(payload, dict) and "orders" in payload
    items = payload.get("orders") if many else [payload]
    if not isinstance(items, list) or not items:
        raise HubError(400, "invalid_payload", "orders must be a non-empty array", "orders")
    orders = []
    for i, item in enumerate(items):
        try:
            orders.append(custom.parse_order(item))
        except PayloadError as exc:
            raise invalid(exc, f"orders[{i}]." if many else "") from None
    message_id = (request.headers.get("X-Hub-Message-Id") or "").strip()[:128]
    duplicate, changes = await sync.write(orders, ("hub", message_id, orders[0].order_id) if message_id else None)
    return web.json_response({"ok": True, "duplicate": duplicate, "changed": len(changes),
                              "unchanged": 0 if duplicate else len(orders) - len(changes)})


# ---------------------------------------------------------------- console / API

class _PartReader:
    def __init__(self, part: Any):
        self.part = part

    async def read(self, n: int) -> bytes:
        return await self.part.read_chunk(n)


async def post_import(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    sync = _sync(request)
    source: Any = request.content
    if request.content_type.startswith("multipart/"):
        reader = await request.multipart()
        source = None
        while (part := await reader.next()) is not None:
            if getattr(part, "name", None) == "file":
                source = _PartReader(part)
                break
        if source is None:
            raise bad_request("missing_file", "send the CSV as the multipart field 'file'", "file")
    try:
        result = await sync.import_csv(source)
    except PayloadError as exc:
        raise HubError(400, "invalid_csv", exc.message, exc.field) from None
    return web.json_response(result)


async def post_poll(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    return web.json_response({"sources": await _sync(request).poll_once()})


async def list_orders(request: web.Request) -> web.Response:
    user = await require_user(request)
    customer_id = int_param(request.query.get("customer_id"), "customer_id")
    if customer_id is None:
        raise bad_request("invalid_customer_id", "customer_id must be an integer", "customer_id")
    limit = int_param(request.query.get("limit"), "limit") or 20
    await require_customer(_sync(request).db, user, customer_id)
    from ..privacy.masking import mask_order
    return web.json_response({"orders": [mask_order(user, o) for o in
                                         await recent_orders(_sync(request).db, customer_id, limit)]})


async def one_order(request: web.Request) -> web.Response:
    user = await require_user(request)
    order = await get_order(_sync(request).db, request.match_info["platform"], _order_key(request))
    if not user.is_supervisor:  # agents: orders of customers they serve (403 before 404: no probing)
        await require_customer(_sync(request).db, user, await _order_customer(_sync(request).db, request))
    if order is None:
        raise not_found("unknown_order", "no such order")
    from ..privacy.masking import mask_order
    return web.json_response(mask_order(user, order))


async def _order_customer(db: Any, request: web.Request) -> int | None:
    from sqlalchemy import select
    from ..models.orders import OrderRow
    t = OrderRow.__table__
    async with db.read() as conn:
        return (await conn.execute(select(t.c.customer_id).where(t.c.platform == request.match_info["platform"])
                                   .where(t.c.order_id == _order_key(request)).limit(1))).scalar()


def _order_key(request: web.Request) -> str:
    """The stored order id of ``/api/orders/{platform}/{order_id}``: the order's ``order_key``, or its
    ``order_id`` with ``?shop_id=`` (a custom order is stored under its shop, ``model.order_key``)."""
    shop_id, order_id = (request.query.get("shop_id") or "").strip(), request.match_info["order_id"]
    if "\x00" in shop_id + order_id + request.match_info["platform"]:  # no order has one (PostgreSQL: an error)
        raise not_found("unknown_order", "no such order")
    return order_id if order_id.startswith(f"{shop_id}:") else order_key(request.match_info["platform"], order_id,
                                                                            shop_id)


def routes() -> list[web.RouteDef]:
    return [
        web.post("/webhooks/orders/youzan", youzan_push), web.post("/webhooks/orders/douyin", douyin_push),
        web.post("/webhooks/orders/hub", hub_webhook), web.post("/api/orders/import", post_import),
        web.post("/api/orders/poll", post_poll), web.get("/api/orders", list_orders),
        web.get("/api/orders/{platform}/{order_id}", one_order),
    ]
