"""Operator settings over JSON: ``GET /api/settings`` (admins) and ``PUT /api/settings`` with
``{key: value, ...}``; each key has its own validator, a bad value is rejected with the key as the
error's ``field`` and nothing is written. Every change is audited and reloads every process."""
from __future__ import annotations

import math
import string
from typing import Any, Callable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiohttp import web
from sqlalchemy import select

from . import audit, business_hours, config_bus
from .auth_views import require_user
from .errors import bad_request
from .http_guard import add_routes
from .http_util import hub_of, json_object
from .models import SkillGroup
from .service.queue_announcements import TEXT_ERRORS, queue_notice


class Invalid(ValueError):
    def __init__(self, message: str, field: str = ""):
        super().__init__(message)
        self.field = field


def _text(max_len: int, allow_empty: bool = True) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if not isinstance(v, str) or len(v) > max_len or (not allow_empty and not v.strip()):
            raise Invalid(f"text of at most {max_len} characters" + ("" if allow_empty else ", not empty"))
        return v.strip()
    return check


def _int(lo: int, hi: int) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise Invalid(f"an integer from {lo} to {hi}")
        return v
    return check


def _bool(v: Any) -> Any:
    if not isinstance(v, bool):
        raise Invalid("true or false")
    return v


def _words(max_items: int, max_len: int) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if not isinstance(v, list) or len(v) > max_items:
            raise Invalid(f"a list of at most {max_items} entries")
        out = []
        for i, w in enumerate(v):
            if not isinstance(w, str) or not w.strip() or len(w) > max_len:
                raise Invalid(f"entry {i + 1}: 1 to {max_len} characters", f"[{i}]")
            if w.strip() not in out:
                out.append(w.strip())
        return out
    return check


def _choice(*options: str) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if v not in options:
            raise Invalid("one of " + ", ".join(options))
        return v
    return check


def _queue_text(v: Any) -> Any:
    v = _text(300, allow_empty=False)(v)
    try:  # formatted as the announcer does: other braces failed every handover's job
        queue_notice(v, 1)
        fields = {name for _, name, _, _ in string.Formatter().parse(v)}
    except TEXT_ERRORS:
        raise Invalid("only {n} and {position} may be in braces (write {{ and }} for a brace itself)") from None
    if "n" not in fields:
        raise Invalid("must contain {n} (the customer's place in the queue)")
    return v


def _business_hours(v: Any) -> Any:
    if v is None:
        return None  # always open
    try:
        return business_hours.to_json(business_hours.from_json(v))
    except business_hours.BusinessHoursError as exc:
        raise Invalid(str(exc), "." + exc.field if getattr(exc, "field", "") else "") from None
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def _seconds(lo_exclusive: float, hi: float) -> Callable[[Any], Any]:
    def check(v: Any) -> Any:
        if (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)
                or not lo_exclusive < v <= hi):
            raise Invalid(f"a number of seconds above {lo_exclusive:g}, at most {hi:g}")
        return v
    return check


def _timezone(v: Any) -> Any:
    """An IANA timezone name; null or "" clears it (the business hours' timezone, else Asia/Shanghai)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if not isinstance(v, str) or len(v) > 64:
        raise Invalid("an IANA timezone name such as Asia/Shanghai")
    try:
        ZoneInfo(v.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise Invalid(f"unknown timezone {v.strip()!r}") from None
    return v.strip()


def _group(v: Any) -> Any:
    v = _text(64, allow_empty=False)(v)
    return v


VALIDATORS: dict[str, Callable[[Any], Any]] = {
    "welcome_text": _text(600),
    "offhours_text": _text(600),
    "queue_text": _queue_text,
    "queue_notify": _bool,
    "handover_words": _words(50, 20),
    "quick_replies": _words(100, 300),
    "business_hours": _business_hours,
    "default_group": _group,
    "reopen_window": _int(0, 7 * 86400),
    "accept_timeout": _int(10, 3600),
    "unanswered_minutes": _int(1, 24 * 60),
    "unanswered_action": _choice("reassign", "escalate"),
    "offline_grace": _int(0, 3600),
    "advisor_wait": _int(0, 7 * 86400),
    # the supervisor dashboard (docs/dashboard.md): first-reply limit that turns a session red, the brand's day
    "dashboard_first_reply_sla": _seconds(0, 7 * 86400),
    "timezone": _timezone,
}


def validate(changes: dict[str, Any]) -> dict[str, Any]:
    """The cleaned values, or a 400 naming the first bad key (``field``: the key, or key.sub-field)."""
    if not changes:
        raise bad_request("empty_change", "nothing to change")
    clean = {}
    for key, value in changes.items():
        check = VALIDATORS.get(key)
        if check is None:
            raise bad_request("unknown_setting", f"{key} is not a setting that can be changed here", key)
        try:
            clean[key] = check(value)
        except Invalid as exc:
            sub = exc.field if exc.field.startswith(("[", ".")) or not exc.field else "." + exc.field
            raise bad_request("invalid_setting", f"{key}: {exc}", key + sub) from None
    return clean


async def get_settings(request: web.Request) -> web.Response:
    await require_user(request, "admin")
    values = await hub_of(request).settings.all()
    return web.json_response({"settings": {k: values.get(k) for k in VALIDATORS}, "keys": list(VALIDATORS)})


async def put_settings(request: web.Request) -> web.Response:
    user = await require_user(request, "admin")
    hub = hub_of(request)
    clean = validate(await json_object(request))
    current = await hub.settings.all()
    group = clean.get("default_group")
    if group is not None and group != current.get("default_group") and not await group_exists(hub.db, group):
        # customers no rule matches would wait in a queue no agent is in
        raise bad_request("invalid_setting", f"default_group: no skill group named {group}", "default_group")
    before = {k: current.get(k) for k in clean}
    for key, value in clean.items():
        await hub.settings.set(key, value)
    await config_bus.publish(request, config_bus.SETTINGS)
    changed = {k: v for k, v in clean.items() if before.get(k) != v}
    if changed:
        await audit.record(hub.db, hub.clock, actor=user, action="settings.update",
                           target="settings:" + ",".join(sorted(changed)), before={k: before[k] for k in changed},
                           after=changed, request=request)
    values = await hub.settings.all()
    return web.json_response({"settings": {k: values.get(k) for k in VALIDATORS}, "changed": sorted(changed)})


async def group_exists(db: Any, name: str) -> bool:
    """A skill group the operators made (a typo names none: a setting or rule for nobody)."""
    groups = SkillGroup.__table__
    async with db.read() as conn:
        return (await conn.execute(select(groups.c.name).where(groups.c.name == name))).first() is not None


async def require_group(db: Any, name: str | None, field: str) -> None:
    """400 ``unknown_group`` unless ``name`` (when given) is a skill group: a rule or ticket sent to a typo
    (or to a group's display name) queued its customers, or its work, where no agent is."""
    if name and not await group_exists(db, name):
        raise bad_request("unknown_group", f"no skill group named {name}", field)


def install(app: web.Application) -> None:
    add_routes(app, [web.get("/api/settings", get_settings), web.put("/api/settings", put_settings)])
