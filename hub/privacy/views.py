"""Masking applied to what the APIs return (messages, sessions, profiles, orders), per viewer, and
the access audit of reads of personal data. Pure functions over the JSON shapes the views build,
plus ``audit_access`` (I/O) for the edges."""
from __future__ import annotations

from typing import Any

from .masking import can_see_pii, mask_order_dict, mask_phone_field, mask_text

PHONE_KINDS = ("phone", "mobile")


def mask_json(data: Any) -> Any:
    """Every string in a JSON value masked: the supervisors' views (the dashboard, alerts, keyword-watch
    and quality hits) quote customers' words, and go to the whole supervisors room at once."""
    if isinstance(data, dict):
        return {k: mask_json(v) for k, v in data.items()}
    if isinstance(data, list):
        return [mask_json(v) for v in data]
    return mask_text(data) if isinstance(data, str) else data


_mask_data = mask_json


def mask_message(user: Any, msg: dict[str, Any]) -> dict[str, Any]:
    """A message (``message_json`` shape) as ``user`` may see it; ``masked`` says a reveal exists."""
    if can_see_pii(user):
        return msg
    out = dict(msg)
    if isinstance(out.get("text"), str):
        out["text"] = mask_text(out["text"])
    if isinstance(out.get("data"), dict):
        out["data"] = _mask_data(out["data"])
    out["masked"] = out.get("text") != msg.get("text") or out.get("data") != msg.get("data")
    return out


def mask_messages(user: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return items if can_see_pii(user) else [mask_message(user, m) for m in items]


def mask_page(user: Any, page: dict[str, Any]) -> dict[str, Any]:
    """A history page ``{"messages": [...], ...}``."""
    if can_see_pii(user) or not isinstance(page.get("messages"), list):
        return page
    return {**page, "messages": mask_messages(user, page["messages"])}


def mask_session(user: Any, session: dict[str, Any]) -> dict[str, Any]:
    if can_see_pii(user) or not isinstance(session.get("first_message"), str):
        return session
    return {**session, "first_message": mask_text(session["first_message"])}


def mask_profile(user: Any, profile: dict[str, Any] | None) -> dict[str, Any] | None:
    """A customer profile: phone identities, a phone in the name (one with no other name is named
    after their first identity, an order's buyer phone) and the orders' receiver fields masked."""
    if profile is None or can_see_pii(user):
        return profile
    out = dict(profile)
    if isinstance(out.get("name"), str):
        out["name"] = mask_text(out["name"])
    if isinstance(out.get("identities"), list):
        out["identities"] = [{**i, "value": mask_phone_field(i.get("value") or "")}
                             if isinstance(i, dict) and i.get("kind") in PHONE_KINDS else i
                             for i in out["identities"]]
    if isinstance(out.get("orders"), list):
        out["orders"] = [mask_order_dict(o) if isinstance(o, dict) else o for o in out["orders"]]
    return out


def mask_bundle(user: Any, bundle: dict[str, Any]) -> dict[str, Any]:
    """A session bundle ``{"session", "customer", "history", "transfer"}`` (the transfer's note is free
    text an agent typed: a customer's phone number in it is masked like one in a message)."""
    if can_see_pii(user):
        return bundle
    out = dict(bundle)
    if isinstance(out.get("session"), dict):
        out["session"] = mask_session(user, out["session"])
    if isinstance(out.get("customer"), dict):
        out["customer"] = mask_profile(user, out["customer"])
    if isinstance(out.get("history"), list):
        out["history"] = mask_messages(user, out["history"])
    if isinstance(out.get("transfer"), dict) and out["transfer"].get("note"):
        out["transfer"] = {**out["transfer"], "note": mask_text(out["transfer"]["note"])}
    return out


async def audit_access(request: Any, user: Any, action: str, target: str, detail: Any = None) -> None:
    """Record a read of personal data (an export, a search, a view outside the viewer's own work)."""
    from .. import audit
    from ..http_util import hub_of
    hub = hub_of(request)
    await audit.record(hub.db, hub.clock, kind="access", actor=user, action=action, target=target,
                       detail=detail, request=request)


async def audit_if_outside(request: Any, user: Any, conversation_id: int, action: str = "conversation.view") -> None:
    """Audit a read of a conversation that is not in the viewer's own sessions or groups."""
    from sqlalchemy import or_, select

    from ..http_util import hub_of
    from ..models import ServiceSession
    t = ServiceSession.__table__
    mine = [t.c.agent_id == user.id] + ([t.c.group.in_(list(user.groups))] if user.groups else [])
    async with hub_of(request).db.read() as conn:
        own = (await conn.execute(select(t.c.id).where(t.c.conversation_id == conversation_id)
                                  .where(or_(*mine)).limit(1))).first()
    if own is None:
        await audit_access(request, user, action, f"conversation:{conversation_id}")


async def audit_cli_export(db: Any, action: str, detail: Any) -> None:
    """An export made on the server with the command line: the access audit names the OS user."""
    import getpass
    from types import SimpleNamespace

    from .. import audit
    from ..clock import Clock
    try:
        who = getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in this environment
        who = "unknown"
    actor = SimpleNamespace(id=None, username=f"cli:{who}"[:64], role="operator")
    await audit.record(db, Clock(), kind="access", actor=actor, action=action, target="archive", detail=detail)
