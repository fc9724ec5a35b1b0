"""JSON API: customer profile, tags, merges (admins), segments with CSV export."""
from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp import web

from .. import spreadsheet
from ..api import int_param, path_id
from ..auth_views import require_user
from .. import audit
from ..errors import bad_request
from ..http_util import hub_of as _hub, json_object as _json, storable
from ..privacy.masking import can_see_pii, mask_text
from ..service.reading import require_customer
from .tags import all_tags


def _int(value: Any, name: str) -> int:
    number = int_param(value, name)
    if number is None:
        raise bad_request("invalid_" + name, f"{name} must be an integer", name)
    return number


async def get_customer(request: web.Request) -> web.Response:
    user = await require_user(request)
    customer_id = path_id(request, "customer")
    await require_customer(_hub(request).db, user, customer_id)
    from ..privacy.views import mask_profile
    return web.json_response(mask_profile(user, await _hub(request).customers.get(customer_id)))


async def post_tags(request: web.Request) -> web.Response:
    """{"add": [...], "remove": [...]}: agents tag from the console (customers they serve); pushed live."""
    user = await require_user(request)
    customer_id = path_id(request, "customer")
    await require_customer(_hub(request).db, user, customer_id)
    body = await _json(request)
    tags = await _hub(request).customers.tag(f"user:{user.id}", customer_id,
                                             body.get("add") or [], body.get("remove") or [])
    return web.json_response({"tags": tags})


async def list_tags(request: web.Request) -> web.Response:
    await require_user(request)
    async with _hub(request).db.read() as conn:
        return web.json_response({"tags": await all_tags(conn)})


async def post_merge(request: web.Request) -> web.Response:
    user = await require_user(request, "admin", "supervisor")
    body = await _json(request)
    hub = _hub(request)
    source, target = _int(body.get("source"), "source"), _int(body.get("target"), "target")
    result = await hub.customers.merge(f"user:{user.id}", source, target, body.get("why") or "")
    # who said two customers are one person, and why (a merge moves identities, orders and tags)
    await audit.record(hub.db, hub.clock, actor=user, action="customer.merge", target=f"customer:{target}",
                       detail={"source": source, "merge_id": result["merge_id"], "why": body.get("why")},
                       request=request)
    return web.json_response(result)


async def post_unmerge(request: web.Request) -> web.Response:
    user = await require_user(request, "admin", "supervisor")
    hub, merge_id = _hub(request), path_id(request, "merge")
    result = await hub.customers.unmerge(f"user:{user.id}", merge_id)
    await audit.record(hub.db, hub.clock, actor=user, action="customer.unmerge",
                       target=f"customer:{result['customer']['customer_id']}", detail={"merge_id": merge_id},
                       request=request)
    return web.json_response(result)


async def get_segment(request: web.Request) -> web.Response:
    """?tags=VIP,敏感肌&min_spend_fen=&contacted_since=&format=csv"""
    user = await require_user(request, "admin", "supervisor")
    q = request.query
    tags = [t for t in (q.get("tags") or "").split(",") if t.strip()]
    if not all(storable(t) for t in tags):  # a 500 at PostgreSQL otherwise
        raise bad_request("invalid_tags", "tags: no NUL character, no half of an emoji", "tags")
    kwargs: dict[str, Any] = {"tags": tags}
    if q.get("min_spend_fen"):
        kwargs["min_spend_fen"] = _int(q["min_spend_fen"], "min_spend_fen")
    if q.get("contacted_since"):
        try:
            kwargs["contacted_since"] = float(q["contacted_since"])
        except ValueError:
            raise bad_request("invalid_contacted_since", "epoch seconds", "contacted_since") from None
    hub = _hub(request)
    name = (lambda n: n) if can_see_pii(user) else (lambda n: mask_text(n) if isinstance(n, str) else n)
    if q.get("format") != "csv":
        found = await hub.customers.segment(**kwargs, limit=1000)
        return web.json_response({"customers": [{**c, "name": name(c["name"])} for c in found]})
    from ..privacy.views import audit_access
    await audit_access(request, user, "export.segment", "segment", {k: v for k, v in q.items() if k != "format"})
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["customer_id", "name", "vip_level", "paid_total_yuan", "order_count", "last_contact_at", "tags"])
    after = 0
    while True:
        page = await hub.customers.segment(**kwargs, limit=1000, after_id=after)
        for c in page:
            writer.writerow(spreadsheet.row([c["customer_id"], name(c["name"]), c["vip_level"],
                                             f"{c['paid_total_fen'] / 100:.2f}", c["order_count"],
                                             c["last_contact_at"] or "", "|".join(c["tags"])]))
        if len(page) < 1000:
            break
        after = page[-1]["customer_id"]
    return web.Response(text=buf.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="segment.csv"'})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/customers/{id}", get_customer), web.post("/api/customers/{id}/tags", post_tags),
        web.get("/api/tags", list_tags), web.post("/api/customers/merge", post_merge),
        web.post("/api/merges/{id}/undo", post_unmerge), web.get("/api/segments", get_segment),
    ]
