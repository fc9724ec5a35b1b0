"""Routing rules as validated data, and the pure decision of which group/agent a customer goes to.

Semantics of ``decide``:

* Rules are tried in ``(position, id)`` order; disabled rules are skipped.
* A rule matches when ALL its conditions hold (no conditions = matches everyone, a catch-all).
* The FIRST matching rule wins entirely: its group (or ``default_group`` if it sets none), its priority
  (or the VIP-derived default if it sets none), its exclusive agent and its ``add_tags``. Later rules are not
  consulted. No match -> ``default_group``, VIP-derived priority, no agent, no tags.
* Default priority is ``PRIORITY_PER_VIP_LEVEL * max(vip_level, 0)`` so VIP customers queue first and rule
  priorities share one scale with it.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any, Sequence

PLATFORMS = frozenset({"wecom", "oa", "kf"})
LIST_KINDS = ("account", "channel", "tags_any", "tags_all", "tags_none", "keywords_any", "platform")
CONDITION_KINDS = frozenset(LIST_KINDS + ("vip_min", "business_hours"))
PRIORITY_PER_VIP_LEVEL = 10
MAX_PRIORITY = 1000
MAX_NAME = 100
MAX_ITEMS = 500


class RuleError(ValueError):
    """A rule failed validation; ``field`` is a path such as ``"conditions[1].value"``."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Condition:
    """One test on the customer; list values are stored as tuples."""

    kind: str
    value: Any


@dataclass(frozen=True)
class Actions:
    """What a matching rule does; at least one of these is set."""

    group: str | None = None
    priority: int | None = None
    agent_id: int | None = None
    add_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    position: int
    enabled: bool
    conditions: tuple[Condition, ...]
    actions: Actions


@dataclass(frozen=True)
class RoutingInput:
    """What is known about the customer when a session needs a human."""

    account_id: str
    platform: str
    channel: str | None
    tags: frozenset[str]
    vip_level: int
    first_message: str
    in_business_hours: bool


@dataclass(frozen=True)
class Decision:
    group: str
    priority: int
    agent_id: int | None
    add_tags: tuple[str, ...]
    matched_rule_id: int | None
    trace: tuple[str, ...]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _text(v: Any, field: str, max_len: int = 64) -> str:
    if not isinstance(v, str) or not v.strip():
        raise RuleError(field, "must be a non-empty string")
    v = v.strip()
    if len(v) > max_len:
        raise RuleError(field, f"longer than {max_len} characters")
    return v


def _str_list(v: Any, field: str, *, allow_int: bool = False, choices: frozenset[str] | None = None) -> tuple:
    if not isinstance(v, (list, tuple)) or not v:
        raise RuleError(field, "must be a non-empty list")
    if len(v) > MAX_ITEMS:
        raise RuleError(field, f"more than {MAX_ITEMS} items")
    out: list[str] = []
    for i, item in enumerate(v):
        if allow_int and _is_int(item):
            item = str(item)
        item = _text(item, f"{field}[{i}]")
        if choices is not None and item not in choices:
            raise RuleError(f"{field}[{i}]", f"must be one of {sorted(choices)}")
        if item not in out:
            out.append(item)
    return tuple(out)


def _parse_condition(data: Any, field: str) -> Condition:
    if not isinstance(data, dict):
        raise RuleError(field, "must be an object with kind and value")
    extra = set(data) - {"kind", "value"}
    if extra:
        raise RuleError(f"{field}.{sorted(extra)[0]}", "unknown field")
    kind = data.get("kind")
    if kind not in CONDITION_KINDS:
        raise RuleError(f"{field}.kind", f"unknown kind {kind!r}, expected one of {sorted(CONDITION_KINDS)}")
    if "value" not in data:
        raise RuleError(f"{field}.value", "is required")
    value, vf = data["value"], f"{field}.value"
    if kind == "vip_min":
        if not _is_int(value) or value < 0:
            raise RuleError(vf, "must be an integer >= 0")
    elif kind == "business_hours":
        if not isinstance(value, bool):
            raise RuleError(vf, "must be true (inside) or false (outside)")
    else:
        value = _str_list(value, vf, allow_int=kind in ("account", "channel"),
                          choices=PLATFORMS if kind == "platform" else None)
    return Condition(kind, value)


def _parse_actions(data: Any) -> Actions:
    if not isinstance(data, dict):
        raise RuleError("actions", "must be an object")
    extra = set(data) - {"group", "priority", "agent_id", "add_tags"}
    if extra:
        raise RuleError(f"actions.{sorted(extra)[0]}", "unknown field")
    group = data.get("group")
    if group is not None:
        group = _text(group, "actions.group")
    priority = data.get("priority")
    if priority is not None and (not _is_int(priority) or not 0 <= priority <= MAX_PRIORITY):
        raise RuleError("actions.priority", f"must be an integer 0..{MAX_PRIORITY}")
    agent_id = data.get("agent_id")
    if agent_id is not None and (not _is_int(agent_id) or agent_id <= 0):
        raise RuleError("actions.agent_id", "must be a positive integer")
    raw_tags = data.get("add_tags") or []
    add_tags = _str_list(raw_tags, "actions.add_tags") if raw_tags else ()
    if group is None and priority is None and agent_id is None and not add_tags:
        raise RuleError("actions", "at least one action (group, priority, agent_id, add_tags) is required")
    return Actions(group, priority, agent_id, add_tags)


def parse_rule(data: dict, id: int = 0, position: int = 0) -> Rule:
    """Validate a rule as submitted by the admin UI. ``id``/``position`` come from storage; the same keys
    in ``data`` are accepted and ignored. Raises ``RuleError`` naming the first bad field."""
    if not isinstance(data, dict):
        raise RuleError("rule", "must be an object")
    extra = set(data) - {"id", "position", "name", "enabled", "conditions", "actions"}
    if extra:
        raise RuleError(sorted(extra)[0], "unknown field")
    name = _text(data.get("name"), "name", MAX_NAME)
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError("enabled", "must be true or false")
    raw_conditions = data.get("conditions", [])
    if not isinstance(raw_conditions, (list, tuple)):
        raise RuleError("conditions", "must be a list")
    conditions = tuple(_parse_condition(c, f"conditions[{i}]") for i, c in enumerate(raw_conditions))
    if "actions" not in data:
        raise RuleError("actions", "is required")
    return Rule(id, name, position, enabled, conditions, _parse_actions(data["actions"]))


def rule_to_json(rule: Rule) -> dict:
    """JSON form; ``parse_rule(rule_to_json(r), r.id, r.position) == r``."""
    a = rule.actions
    return {
        "id": rule.id,
        "name": rule.name,
        "position": rule.position,
        "enabled": rule.enabled,
        "conditions": [{"kind": c.kind, "value": list(c.value) if isinstance(c.value, tuple) else c.value}
                       for c in rule.conditions],
        "actions": {"group": a.group, "priority": a.priority, "agent_id": a.agent_id, "add_tags": list(a.add_tags)},
    }


def _fold(s: str) -> str:
    """Normalise full-width forms and case so ``ＶＩＰ`` matches ``vip``."""
    return unicodedata.normalize("NFKC", s).casefold()


def _check(c: Condition, inp: RoutingInput) -> str | None:
    """``None`` if the condition holds, else why not."""
    v = c.value
    if c.kind == "account":
        return None if inp.account_id in v else f"account {inp.account_id!r} not in {list(v)}"
    if c.kind == "platform":
        return None if inp.platform in v else f"platform {inp.platform!r} not in {list(v)}"
    if c.kind == "channel":
        return None if inp.channel is not None and inp.channel in v else f"channel {inp.channel!r} not in {list(v)}"
    if c.kind == "tags_any":
        return None if inp.tags.intersection(v) else f"has none of tags {list(v)}"
    if c.kind == "tags_all":
        missing = [t for t in v if t not in inp.tags]
        return None if not missing else f"missing tags {missing}"
    if c.kind == "tags_none":
        present = [t for t in v if t in inp.tags]
        return None if not present else f"has excluded tags {present}"
    if c.kind == "vip_min":
        return None if inp.vip_level >= v else f"vip level {inp.vip_level} < {v}"
    if c.kind == "keywords_any":
        text = _fold(inp.first_message)
        return None if any(_fold(k) in text for k in v) else f"first message contains none of {list(v)}"
    if c.kind == "business_hours":
        if inp.in_business_hours == v:
            return None
        return "outside business hours" if v else "inside business hours"
    return f"unknown condition kind {c.kind!r}"


def default_priority(vip_level: int) -> int:
    """Queue priority when no rule sets one: VIP customers first."""
    return min(PRIORITY_PER_VIP_LEVEL * max(vip_level, 0), MAX_PRIORITY)


def decide(rules: Sequence[Rule], inp: RoutingInput, default_group: str) -> Decision:
    """Route ``inp`` by the first matching enabled rule (see module docstring); ``trace`` explains why."""
    trace: list[str] = []
    winner: Rule | None = None
    for rule in sorted(rules, key=lambda r: (r.position, r.id)):
        label = f"rule #{rule.id} {rule.name!r}"
        if not rule.enabled:
            trace.append(f"{label}: skipped (disabled)")
            continue
        why = next((w for c in rule.conditions if (w := _check(c, inp)) is not None), None)
        if why is not None:
            trace.append(f"{label}: no match ({why})")
            continue
        trace.append(f"{label}: matched")
        winner = rule
        break
    actions = winner.actions if winner else Actions()
    src = f"rule #{winner.id}" if winner else ""
    group = actions.group or default_group
    trace.append(f"group {group!r} from {src if actions.group else 'default group'}")
    if actions.priority is not None:
        priority = actions.priority
        trace.append(f"priority {priority} from {src}")
    else:
        priority = default_priority(inp.vip_level)
        trace.append(f"priority {priority} from vip level {inp.vip_level}")
    if actions.agent_id is not None:
        trace.append(f"exclusive agent {actions.agent_id} from {src}")
    if actions.add_tags:
        trace.append(f"add tags {list(actions.add_tags)}")
    return Decision(group, priority, actions.agent_id, actions.add_tags, winner.id if winner else None, tuple(trace))
