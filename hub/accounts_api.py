"""Platform accounts for the admin console: list, add and edit WeCom corps / Official Accounts, with the
callback URL, Token and EncodingAESKey to paste into the platform's console, fresh values on request, and
whether the platform reaches the hub (hub/account_status.py). Admins only: the secrets are in the answers.

Writes go through ``hub.accounts.upsert_account`` (its validation and storage), then every process
reloads its account registry and the change is audited with the secrets masked.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from . import audit, config_bus
from .account_status import tracker_of
from .accounts import PLATFORMS, generate_token, list_accounts, upsert_account
from .auth_views import require_user
from .callbacks.crypto import generate_encoding_aes_key
from .errors import HubError, bad_request, not_found
from .http_guard import add_routes
from .http_util import hub_of, json_object



def base_url(request: web.Request) -> str:
    """Where the platform reaches the hub: ``config.public_url`` when set, else this request's origin."""
    configured = getattr(hub_of(request).config, "public_url", "") or ""
    if configured:
        return configured.rstrip("/")
    proto = request.headers.get("X-Forwarded-Proto", request.scheme)
    return f"{proto}://{request.host}"


def _fields(body: dict[str, Any], current: Any | None) -> dict[str, Any]:
    """The full record from a request's body: text fields, what an edit keeps (the stored value of an
    omitted field, the stored secret for a blank one) and what it may not change (the platform).
    ``upsert_account`` checks the values (hub/accounts.py ``validate``)."""
    def text(key: str, default: str) -> str:
        value = body.get(key, default)
        if value is None:
            value = default
        if not isinstance(value, str):
            raise bad_request("invalid_" + key, f"{key} must be text", key)
        return value.strip()

    platform = text("platform", current.platform if current else "")
    if current is not None and platform != current.platform:
        raise bad_request("platform_fixed", "the platform of an account cannot change; add a new account", "platform")
    name = text("name", current.name if current else "")
    receive_id = text("receive_id", current.receive_id if current else "")
    secret = text("secret", "")  # blank on edit: keep the stored one
    if current is not None and not secret:
        secret = current.secret
    # omitted on edit: keep the stored one; blank is an error (the platform's console still has the old one)
    token = text("token", current.token if current else "")
    key = text("encoding_aes_key", current.encoding_aes_key if current else "")
    if not token:
        raise bad_request("invalid_token", "Token is required (use 生成 for a random one)", "token")
    if not key:
        raise bad_request("invalid_encoding_aes_key", "EncodingAESKey is required (use 生成)", "encoding_aes_key")
    mode = text("message_mode", current.message_mode if current else "compat")
    return {"platform": platform, "name": name, "receive_id": receive_id, "secret": secret, "token": token,
            "encoding_aes_key": key, "message_mode": mode}


async def _find(request: web.Request, account_id: str) -> Any | None:
    return next((a for a in await list_accounts(hub_of(request).db) if a.id == account_id), None)


def _audit_view(info: Any) -> dict[str, Any]:
    return info.public(reveal=True)  # audit.record masks token / encoding_aes_key / secret


async def _answer(request: web.Request, info: Any) -> dict[str, Any]:
    tracker = tracker_of(request.app)
    stamps = await tracker.all() if tracker else {}
    stamp = stamps.get(info.id)
    return {**info.public(base_url(request), reveal=True), "status": stamp.as_json() if stamp else None}


async def accounts_list(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    hub = hub_of(request)
    tracker = tracker_of(request.app)
    stamps = await tracker.all() if tracker else {}
    out = []
    for a in await list_accounts(hub.db):
        stamp = stamps.get(a.id)
        out.append({**a.public(base_url(request), reveal=True), "status": stamp.as_json() if stamp else None})
    return web.json_response({"accounts": out, "now": hub.clock.now(), "platforms": list(PLATFORMS)})


async def accounts_status(request: web.Request) -> web.Response:
    """The live part only (the page polls it): {account id: status}."""
    await require_user(request, "admin")
    tracker = tracker_of(request.app)
    stamps = await tracker.all() if tracker else {}
    return web.json_response({"status": {k: v.as_json() for k, v in stamps.items()}, "now": hub_of(request).clock.now()})


async def accounts_create(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub = hub_of(request)
    body = await json_object(request)
    account_id = body.get("id")
    if not isinstance(account_id, str) or not account_id.strip():
        raise bad_request("invalid_id", "id is required: letters, digits, '-' and '_'", "id")
    account_id = account_id.strip()
    if await _find(request, account_id) is not None:
        raise HubError(409, "account_exists", f"account {account_id} exists", "id")
    record = _fields(body, None)
    info = await upsert_account(hub.db, hub.clock, id=account_id, **record)
    await config_bus.publish(request, config_bus.ACCOUNTS)
    await audit.record(hub.db, hub.clock, actor=user, action="account.create", target=f"account:{account_id}",
                       after=_audit_view(info), request=request)
    return web.json_response(await _answer(request, info), status=201)


async def accounts_update(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub = hub_of(request)
    account_id = request.match_info["id"]
    current = await _find(request, account_id)
    if current is None:
        raise not_found("unknown_account", f"no account {account_id}")
    body = await json_object(request)
    if "id" in body and body["id"] != account_id:
        raise bad_request("id_fixed", "the id is part of the callback URL and cannot change", "id")
    record = _fields(body, current)
    info = await upsert_account(hub.db, hub.clock, id=account_id, **record)
    await config_bus.publish(request, config_bus.ACCOUNTS)
    before, after = _audit_view(current), _audit_view(info)
    changed = sorted(k for k in after if before.get(k) != after.get(k))
    await audit.record(hub.db, hub.clock, actor=user, action="account.update", target=f"account:{account_id}",
                       before=before, after=after, request=request, detail={"changed": changed})
    return web.json_response(await _answer(request, info))


async def generate(request: web.Request) -> web.Response:
    """Fresh values for the form: a 32-character Token and a 43-character EncodingAESKey."""
    await require_user(request, "admin")
    return web.json_response({"token": generate_token(32), "encoding_aes_key": generate_encoding_aes_key()})


def install(app: web.Application) -> None:
    add_routes(app, [
        web.get("/api/accounts", accounts_list), web.post("/api/accounts", accounts_create),
        web.get("/api/accounts/status", accounts_status), web.post("/api/accounts/generate", generate),
        web.put("/api/accounts/{id}", accounts_update),
    ])
