"""Pure parts of channel codes: field validation (field-level errors), key generation, staff
schedules and the brand's calendar day. No I/O, no clock reads (``now`` is passed in). A welcome
text is held to what its platform's send takes (the outbound queue's ``TEXT_BYTES``, UTF-8 bytes)."""
from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import bad_request
from ..outbound.queue import TEXT_BYTES, TEXT_CHARS

TZ = ZoneInfo("Asia/Shanghai")
PLATFORMS = ("wecom", "oa", "kf")
ACCOUNT_PLATFORM = {"wecom": "wecom", "kf": "wecom", "oa": "oa"}  # 微信客服 rides on a WeCom corp
KEY_FIELD = {"wecom": "state", "oa": "scene", "kf": "scene_param"}  # what the platform's event carries back
MAX_TAGS = 20
MAX_STAFF = 100  # WeCom: at most 100 users on a multi-person contact way
_KF_SCENE = re.compile(r"^[0-9A-Za-z_-]{1,32}$")
_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
CREATE_FIELDS = {"name", "platform", "account_id", "state", "scene", "scene_param", "open_kfid", "tags",
                 "welcome_text", "route_group", "route_agent_id", "staff", "schedule", "enabled"}
UPDATE_FIELDS = {"name", "tags", "welcome_text", "route_group", "route_agent_id", "staff", "schedule", "enabled"}


def day_of(ts: float) -> str:
    """The brand's calendar day (Asia/Shanghai) of an epoch time."""
    return datetime.fromtimestamp(ts, TZ).strftime("%Y-%m-%d")


def generate_key(name: str, limit: int = 30) -> str:
    """A state / scene string from a code's name: its ASCII letters and digits plus a random suffix."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:limit - 8] or "ch"
    return f"{slug}-{secrets.token_hex(3)}"


def _text(body: dict[str, Any], key: str, limit: int, *, required: bool = False, nbytes: bool = False) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise bad_request(f"invalid_{key}", f"{key} is required", key)
        return None
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"invalid_{key}", f"{key} must be a non-empty string", key)
    value = value.strip()
    size = len(value.encode()) if nbytes else len(value)
    if size > limit or any(ord(ch) < 32 for ch in value):
        raise bad_request(f"invalid_{key}", f"{key}: at most {limit} {'bytes' if nbytes else 'characters'}, "
                                            "no control characters", key)
    return value


def _str_list(value: Any, key: str, limit: int, item_limit: int = 64) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > limit:
        raise bad_request(f"invalid_{key}", f"{key} must be a list of at most {limit} strings", key)
    out: list[str] = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip() or len(item.strip()) > item_limit:
            raise bad_request(f"invalid_{key}", f"{key}[{i}]: 1 to {item_limit} characters", f"{key}[{i}]")
        if item.strip() not in out:
            out.append(item.strip())
    return out


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def parse_schedule(value: Any, staff: list[str]) -> list[dict[str, Any]] | None:
    """[{"weekdays": [0..6] (0 = Monday), "start": "09:00", "end": "18:00", "users": [subset of staff]}]."""
    if value is None or value == []:
        return None
    if not isinstance(value, list) or len(value) > 50:
        raise bad_request("invalid_schedule", "schedule must be a list of at most 50 windows", "schedule")
    out = []
    for i, w in enumerate(value):
        f = f"schedule[{i}]"
        if not isinstance(w, dict) or set(w) - {"weekdays", "start", "end", "users"}:
            raise bad_request("invalid_schedule", "a window has weekdays, start, end and users", f)
        days = w.get("weekdays")
        if not isinstance(days, list) or not days or any(type(d) is not int or not 0 <= d <= 6 for d in days):
            raise bad_request("invalid_schedule", "weekdays: a non-empty list of 0 (Monday) .. 6 (Sunday)",
                              f"{f}.weekdays")
        for key in ("start", "end"):
            if not isinstance(w.get(key), str) or not _HHMM.match(w[key]):
                raise bad_request("invalid_schedule", f"{key}: HH:MM", f"{f}.{key}")
        if _minutes(w["start"]) >= _minutes(w["end"]):
            raise bad_request("invalid_schedule", "end must be after start (split windows over midnight)", f"{f}.end")
        users = _str_list(w.get("users"), f"{f}.users", MAX_STAFF)
        if not users:
            raise bad_request("invalid_schedule", "users: at least one staff member", f"{f}.users")
        for j, u in enumerate(users):
            if u not in staff:
                raise bad_request("invalid_schedule", f"{u!r} is not in staff", f"{f}.users[{j}]")
        out.append({"weekdays": sorted(set(days)), "start": w["start"], "end": w["end"], "users": users})
    return out


def users_at(schedule: list[dict[str, Any]] | None, staff: list[str], now: float) -> list[str]:
    """Who takes adds at ``now``: the users of every window open then (in staff order); everyone in
    ``staff`` when no window is open or there is no schedule (WeCom needs at least one user)."""
    if not schedule:
        return list(staff)
    local = datetime.fromtimestamp(now, TZ)
    minute = local.hour * 60 + local.minute
    on = {u for w in schedule if local.weekday() in w["weekdays"]
          and _minutes(w["start"]) <= minute < _minutes(w["end"]) for u in w["users"]}
    return [u for u in staff if u in on] or list(staff)


def single_person(staff: list[str], schedule: list[dict[str, Any]] | None) -> bool:
    """A one-person contact way (WeCom type 1) only when it can never be more: WeCom takes no second
    user on it later, and a schedule (or a staff list of several) puts others on it."""
    return len(staff) == 1 and not schedule


def _common(body: dict[str, Any], platform: str, out: dict[str, Any]) -> None:
    """The fields create and update share (only those present in ``body`` for an update)."""
    if "name" in body:
        out["name"] = _text(body, "name", 64, required=True)
    if "tags" in body:
        out["tags"] = _str_list(body["tags"], "tags", MAX_TAGS)
    if "welcome_text" in body:
        w = body["welcome_text"]
        if w is not None and (not isinstance(w, str) or len(w) > TEXT_CHARS):
            raise bad_request("invalid_welcome_text", f"welcome_text: at most {TEXT_CHARS} characters", "welcome_text")
        w = (w or "").strip()
        limit = TEXT_BYTES[platform]  # what the platform's welcome send takes: longer, it refuses it every time
        if len(w.encode("utf-8")) > limit:
            raise bad_request("invalid_welcome_text", f"welcome_text: at most {limit} bytes in UTF-8 on this "
                              f"platform (about {limit // 3} Chinese characters)", "welcome_text")
        out["welcome_text"] = w
    if "route_group" in body:
        out["route_group"] = _text(body, "route_group", 64)
    if "route_agent_id" in body:
        a = body["route_agent_id"]
        if a is not None and (type(a) is not int or a <= 0):
            raise bad_request("invalid_route_agent_id", "route_agent_id must be a user id", "route_agent_id")
        out["route_agent_id"] = a
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise bad_request("invalid_enabled", "enabled must be true or false", "enabled")
        out["enabled"] = body["enabled"]
    for key in ("staff", "schedule"):
        if key in body and platform != "wecom" and body[key] not in (None, []):
            raise bad_request(f"invalid_{key}", f"{key} applies to wecom codes only", key)


def _unknown(body: dict[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise bad_request("unknown_field", f"unknown field {extra[0]!r}", extra[0])


def parse_create(body: dict[str, Any]) -> dict[str, Any]:
    """A create request -> the code's fields (keys not given stay None: the service generates them)."""
    _unknown(body, CREATE_FIELDS)
    platform = body.get("platform")
    if platform not in PLATFORMS:
        raise bad_request("invalid_platform", "platform must be wecom, oa or kf", "platform")
    out: dict[str, Any] = {"platform": platform, "account_id": _text(body, "account_id", 64, required=True),
                           "tags": [], "welcome_text": "", "route_group": None, "route_agent_id": None,
                           "enabled": True, "staff": [], "schedule": None}
    _common({"name": body.get("name"), **body}, platform, out)
    for key, owner in (("state", "wecom"), ("open_kfid", "kf"), ("scene_param", "kf")):
        if body.get(key) not in (None, "") and platform != owner:
            raise bad_request(f"invalid_{key}", f"{key} applies to {owner} codes only", key)
    if body.get("scene") not in (None, "") and platform == "wecom":
        raise bad_request("invalid_scene", "scene applies to oa and kf codes only", "scene")
    out["state"] = _text(body, "state", 30)
    out["scene"] = _text(body, "scene", 64 if platform == "oa" else 32, nbytes=platform == "oa")
    if platform == "kf" and out["scene"] and not _KF_SCENE.match(out["scene"]):
        raise bad_request("invalid_scene", "kf scene: 1 to 32 of 0-9 A-Z a-z _ -", "scene")
    out["scene_param"] = _text(body, "scene_param", 128, nbytes=True)
    out["open_kfid"] = _text(body, "open_kfid", 64, required=platform == "kf")
    if platform == "wecom":
        out["staff"] = _str_list(body.get("staff"), "staff", MAX_STAFF)
        if not out["staff"]:
            raise bad_request("invalid_staff", "staff: at least one WeCom userid who takes the adds", "staff")
        out["schedule"] = parse_schedule(body.get("schedule"), out["staff"])
    return out


def parse_update(body: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """An update request against the code's JSON -> the changed local fields. Read-only fields may be
    sent back unchanged (GET, edit, PUT); changing them is an error."""
    for key in sorted(set(body) - UPDATE_FIELDS):
        if key not in current:
            raise bad_request("unknown_field", f"unknown field {key!r}", key)
        if body[key] != current[key]:
            raise bad_request("immutable", f"{key} cannot be changed: create a new code", key)
    platform = current["platform"]
    out: dict[str, Any] = {}
    _common({k: v for k, v in body.items() if k in UPDATE_FIELDS}, platform, out)
    if platform == "wecom" and ("staff" in body or "schedule" in body):
        staff = _str_list(body["staff"], "staff", MAX_STAFF) if "staff" in body else current["staff"]
        if not staff:
            raise bad_request("invalid_staff", "staff: at least one WeCom userid who takes the adds", "staff")
        out["staff"] = staff
        out["schedule"] = parse_schedule(body.get("schedule", current["schedule"]), staff)
    return out
