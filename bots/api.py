"""JSON API for operators: FAQ entries (CRUD, import/export), brand dictionary, keyword rules
(with a "which rule would fire" tester), bot analytics. Admins write; supervisors read."""
from __future__ import annotations

from typing import Any

from aiohttp import web

from hub import audit, config_bus
from hub.auth_views import require_user
from hub.errors import bad_request
from hub.http_util import hub_of as _hub, json_any as _json, path_int as _id, read_upload
from hub.knowledge import io as faq_io

from . import analytics
from .keywords import first_match, rule_json


def _float(request: web.Request, key: str, default: float) -> float:
    try:
        return float(request.query.get(key, default))
    except ValueError:
        raise bad_request("invalid_" + key, f"{key} must be a number", key) from None


def _top(body: dict[str, Any]) -> int:
    """How many matches ``/api/faq/match`` returns: an integer 1..50, 5 when left out."""
    top = body.get("top")
    if top is None:
        return 5
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= 50:
        raise bad_request("invalid_top", "top must be an integer 1..50", "top")
    return top


READ = ("admin", "supervisor")


async def _changed(request: web.Request, user: Any, topic: str, action: str, target: str, before: Any = None,
                   after: Any = None, detail: Any = None) -> None:
    """After an admin change: every process reloads ``topic``; the audit log keeps before/after."""
    hub = _hub(request)
    await config_bus.publish(request, topic)
    await audit.record(hub.db, hub.clock, actor=user, action=action, target=target, before=before, after=after,
                       request=request, detail=detail)


async def faq_list(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    kb = _hub(request).kb
    for key in ("category", "q"):
        if "\x00" in request.query.get(key, ""):  # PostgreSQL cannot compare with it (was a 500)
            raise bad_request("invalid_" + key, f"{key} must not contain a NUL character", key)
    return web.json_response({"faqs": await kb.list(request.query.get("category"), request.query.get("q"))})


async def faq_create(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    created = await _hub(request).kb.create(await _json(request))
    await _changed(request, user, config_bus.FAQ, "faq.create", f"faq:{created['id']}", None, created)
    return web.json_response(created, status=201)


async def faq_get(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    return web.json_response(await _hub(request).kb.get(_id(request)))


async def faq_update(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    kb, faq_id = _hub(request).kb, _id(request)
    before = await kb.get(faq_id)
    after = await kb.update(faq_id, await _json(request))
    await _changed(request, user, config_bus.FAQ, "faq.update", f"faq:{faq_id}", before, after)
    return web.json_response(after)


async def faq_delete(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    kb, faq_id = _hub(request).kb, _id(request)
    before = await kb.get(faq_id)
    await kb.delete(faq_id)
    await _changed(request, user, config_bus.FAQ, "faq.delete", f"faq:{faq_id}", before, None)
    return web.json_response({"ok": True})


async def faq_match(request: web.Request) -> web.Response:
    """Try a question against the knowledge base: {"text": ..., "top": 5}."""
    await require_user(request, *READ, "agent")
    body = await _json(request)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise bad_request("invalid_text", "text is required", "text")
    kb = _hub(request).kb
    matches = kb.match(text, _top(body))
    return web.json_response({"confident": kb.is_confident(matches), "matches": [
        {"id": m.id, "question": m.question, "answer": m.answer, "score": round(m.score, 1)} for m in matches]})


async def faq_import(request: web.Request) -> web.Response:
    """Body: the file's text; ``?format=csv|json`` (default csv). Bad rows are reported, the rest imported."""
    user = await require_user(request, "admin")
    fmt = request.query.get("format", "csv")
    parsed = faq_io.parse_bytes(fmt == "json", await read_upload(request))  # UTF-8, or Excel's GBK
    created, updated = await _hub(request).kb.import_many(parsed.items) if parsed.items else ([], [])
    if created or updated:
        await _changed(request, user, config_bus.FAQ, "faq.import", "faq", None,
                       {"ids": [c["id"] for c in created], "updated": [c["id"] for c in updated]},
                       {"format": fmt, "rejected": len(parsed.errors)})
    return web.json_response({"imported": len(created), "updated": len(updated), "rejected": parsed.errors})


async def faq_export(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    entries = await _hub(request).kb.list()
    if request.query.get("format") == "json":
        return web.Response(text=faq_io.to_json(entries), content_type="application/json",
                            headers={"Content-Disposition": 'attachment; filename="faq.json"'})
    return web.Response(text=faq_io.to_csv(entries), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": 'attachment; filename="faq.csv"'})


async def words_get(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    return web.json_response({"words": await _hub(request).kb.words()})


async def words_add(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    body = await _json(request)
    words = body.get("words") if isinstance(body, dict) else None
    if not isinstance(words, list):
        raise bad_request("invalid_words", "words: a list", "words")
    kb = _hub(request).kb
    before = await kb.words()
    added = await kb.add_words(words)
    await _changed(request, user, config_bus.FAQ, "brand_words.add", "brand_words", {"words": before},
                   {"words": await kb.words()})
    return web.json_response({"added": added})


async def words_remove(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    body = await _json(request)
    words = body.get("words") if isinstance(body, dict) else None
    if not isinstance(words, list):
        raise bad_request("invalid_words", "words: a list", "words")
    kb = _hub(request).kb
    before = await kb.words()
    removed = await kb.remove_words(words)
    await _changed(request, user, config_bus.FAQ, "brand_words.remove", "brand_words", {"words": before},
                   {"words": await kb.words()})
    return web.json_response({"removed": removed})


async def rules_list(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    return web.json_response({"rules": await _hub(request).keywords.list()})


async def _keyword_rule(request: web.Request, rule_id: int) -> dict[str, Any] | None:
    return next((r for r in await _hub(request).keywords.list() if r["id"] == rule_id), None)


async def rules_create(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    created = await _hub(request).keywords.create(await _json(request))
    await _changed(request, user, config_bus.KEYWORD_RULES, "keyword_rule.create", f"keyword_rule:{created['id']}",
                   None, created)
    return web.json_response(created, status=201)


async def rules_update(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    rule_id = _id(request)
    before = await _keyword_rule(request, rule_id)
    after = await _hub(request).keywords.update(rule_id, await _json(request))
    await _changed(request, user, config_bus.KEYWORD_RULES, "keyword_rule.update", f"keyword_rule:{rule_id}",
                   before, after)
    return web.json_response(after)


async def rules_delete(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    rule_id = _id(request)
    before = await _keyword_rule(request, rule_id)
    await _hub(request).keywords.delete(rule_id)
    await _changed(request, user, config_bus.KEYWORD_RULES, "keyword_rule.delete", f"keyword_rule:{rule_id}",
                   before, None)
    return web.json_response({"ok": True})


async def rules_test(request: web.Request) -> web.Response:
    """Which keyword rule would fire for this message: {"text", "account_id", "channel"}."""
    await require_user(request, *READ)
    body = await _json(request)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str):
        raise bad_request("invalid_text", "text is required", "text")
    hub = _hub(request)
    rule = first_match(await hub.keywords.rules(), body["text"], body.get("account_id", ""), body.get("channel"))
    return web.json_response({"rule": rule_json(rule) if rule else None})


async def bot_analytics(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    hub = _hub(request)
    now = hub.clock.now()
    since = _float(request, "since", now - 7 * 86400)
    until = _float(request, "until", now + 1)
    return web.json_response(await analytics.summary(hub.db, since, until))


async def bot_unanswered(request: web.Request) -> web.Response:
    await require_user(request, *READ)
    hub = _hub(request)
    since = _float(request, "since", hub.clock.now() - 30 * 86400)
    return web.json_response({"questions": await analytics.unanswered(hub.db, since)})


def routes() -> list[web.RouteDef]:
    return [
        web.get("/api/faq", faq_list), web.post("/api/faq", faq_create),
        web.post("/api/faq/match", faq_match), web.post("/api/faq/import", faq_import),
        web.get("/api/faq/export", faq_export),
        web.get("/api/faq/{id}", faq_get), web.put("/api/faq/{id}", faq_update),
        web.delete("/api/faq/{id}", faq_delete),
        web.get("/api/brand-words", words_get), web.post("/api/brand-words", words_add),
        web.post("/api/brand-words/remove", words_remove),
        web.get("/api/keyword-rules", rules_list), web.post("/api/keyword-rules", rules_create),
        web.post("/api/keyword-rules/test", rules_test),
        web.put("/api/keyword-rules/{id}", rules_update), web.delete("/api/keyword-rules/{id}", rules_delete),
        web.get("/api/bots/analytics", bot_analytics), web.get("/api/bots/unanswered", bot_unanswered),
    ]
