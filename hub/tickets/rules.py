"""Pure ticket logic: priorities, the status flow, validation of types and routing rules, and which
group a new ticket goes to. No I/O, no clock reads."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Iterable

from ..errors import HubError, bad_request
from ..http_util import storable

PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("open", "in_progress", "resolved", "closed")
# open -> in progress -> resolved -> closed; a resolved ticket may be reopened (back to in progress)
TRANSITIONS: dict[str, frozenset[str]] = {
    "open": frozenset({"in_progress"}),
    "in_progress": frozenset({"resolved"}),
    "resolved": frozenset({"closed", "in_progress"}),
    "closed": frozenset(),
}
ACTIVE = ("open", "in_progress")  # the due time still matters
TYPE_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
MAX_KEYWORDS = 50


def check_transition(current: str, target: Any) -> str:
    if target not in STATUSES:
        raise bad_request("invalid_status", f"status must be one of {', '.join(STATUSES)}", "status")
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "none (closed)"
        raise HubError(409, "invalid_transition", f"{current} -> {target} is not allowed (allowed: {allowed})",
                       "status")
    return target


def check_priority(value: Any) -> str:
    if value not in PRIORITIES:
        raise bad_request("invalid_priority", f"priority must be one of {', '.join(PRIORITIES)}", "priority")
    return value


def check_text(value: Any, field: str, max_len: int, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise bad_request("invalid_" + field, f"{field} is required" if required else f"{field} must be text", field)
    if len(value) > max_len:
        raise bad_request("invalid_" + field, f"{field} is limited to {max_len} characters", field)
    if not storable(value):
        raise bad_request("invalid_" + field, f"{field}: no NUL character and no half of an emoji", field)
    return value.strip()


def check_flag(value: Any, field: str) -> bool:
    """true or false ("false" as text was taken as true)."""
    if not isinstance(value, bool):
        raise bad_request("invalid_" + field, f"{field} must be true or false", field)
    return value


def check_group(value: Any, field: str = "group") -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 64 or not storable(value):
        raise bad_request("invalid_" + field, f"{field} must be a group name (1-64 characters)", field)
    return value.strip()


def check_hours(value: Any, field: str = "due_hours") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 24 * 365:
        raise bad_request("invalid_" + field, f"{field} must be a number of hours within (0, 8760]", field)
    return float(value)


@dataclass(frozen=True)
class TypeSpec:
    name: str
    label: str
    due_hours: float
    priority: str
    group: str
    enabled: bool = True


def parse_type(data: Any, name: str | None = None) -> TypeSpec:
    """A ticket type from JSON (``name`` given when updating an existing type)."""
    if not isinstance(data, dict):
        raise bad_request("invalid_json", "body must be an object")
    name = name if name is not None else data.get("name")
    if not isinstance(name, str) or not TYPE_NAME_RE.match(name):
        raise bad_request("invalid_name", "name: 2-32 lowercase letters, digits, '_' or '-', starting with a letter",
                          "name")
    group = data.get("group") or ""
    return TypeSpec(name, check_text(data.get("label"), "label", 64, required=True),
                    check_hours(data.get("due_hours", 24)), check_priority(data.get("priority", "normal")),
                    check_group(group) if group else "", check_flag(data.get("enabled", True), "enabled"))


@dataclass(frozen=True)
class Rule:
    """Sends a ticket to ``group`` when its type is one of ``types`` (empty = any), its priority is at
    least ``min_priority`` (None = any) and its title or description contains one of ``keywords``
    (empty = any)."""

    id: int
    name: str
    group: str
    types: frozenset[str] = frozenset()
    min_priority: str | None = None
    keywords: tuple[str, ...] = ()
    enabled: bool = True
    position: int = 0

    def matches(self, ticket_type: str, priority: str, text: str) -> bool:
        if not self.enabled:
            return False
        if self.types and ticket_type not in self.types:
            return False
        if self.min_priority and PRIORITIES.index(priority) < PRIORITIES.index(self.min_priority):
            return False
        lowered = text.lower()
        return not self.keywords or any(k.lower() in lowered for k in self.keywords)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "group": self.group, "types": sorted(self.types),
                "min_priority": self.min_priority, "keywords": list(self.keywords), "enabled": self.enabled,
                "position": self.position}


def parse_rule(data: Any, rule_id: int = 0, position: int = 0) -> Rule:
    if not isinstance(data, dict):
        raise bad_request("invalid_json", "body must be an object")
    types = data.get("types") or []
    if not isinstance(types, list) or not all(isinstance(t, str) and TYPE_NAME_RE.match(t) for t in types):
        raise bad_request("invalid_types", "types must be a list of ticket type names", "types")
    keywords = data.get("keywords") or []
    if (not isinstance(keywords, list) or len(keywords) > MAX_KEYWORDS
            or not all(isinstance(k, str) and k.strip() and len(k) <= 64 and storable(k) for k in keywords)):
        raise bad_request("invalid_keywords", f"keywords must be a list of up to {MAX_KEYWORDS} words", "keywords")
    min_priority = data.get("min_priority")
    if min_priority is not None:
        check_priority(min_priority)
    name = check_text(data.get("name"), "name", 128)
    return Rule(rule_id, name, check_group(data.get("group")), frozenset(types), min_priority,
                tuple(k.strip() for k in keywords), check_flag(data.get("enabled", True), "enabled"), position)


@dataclass(frozen=True)
class Routed:
    group: str
    rule_id: int | None
    why: str  # rule | type | session | default


def route(rules: Iterable[Rule], ticket_type: TypeSpec, priority: str, text: str, session_group: str | None,
          default_group: str) -> Routed:
    """The first matching rule's group; else the type's own group; else the session's; else the default."""
    for rule in sorted(rules, key=lambda r: (r.position, r.id)):
        if rule.matches(ticket_type.name, priority, text):
            return Routed(rule.group, rule.id, "rule")
    if ticket_type.group:
        return Routed(ticket_type.group, None, "type")
    if session_group:
        return Routed(session_group, None, "session")
    return Routed(default_group, None, "default")


DEFAULT_TYPES = (
    TypeSpec("return", "退货退款", 24, "normal", ""),
    TypeSpec("complaint", "投诉", 4, "high", ""),
    TypeSpec("logistics", "物流查询", 24, "normal", ""),
    TypeSpec("other", "其他", 72, "low", ""),
)
