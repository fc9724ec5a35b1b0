"""SLA rules as pure data: what must happen within how many seconds, for which sessions, and what a
breach escalates to. Validation names the offending field.

kind:
  first_reply  the first human reply within ``seconds`` of the handover (the bot's time does not count);
  unanswered   after the first reply, a customer message left unanswered ``seconds`` (from the oldest unanswered one);
  avg_reply    an agent's rolling average reply time (last ``window`` replies) above ``seconds``.
escalation: none | reassign (route the session to someone else; not for avg_reply) | notify (tell ``notify_user_id``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ..http_util import storable as storable_text

KINDS = ("first_reply", "unanswered", "avg_reply")
ESCALATIONS = ("none", "reassign", "notify")
MAX_SECONDS = 7 * 24 * 3600
MAX_ID = 2 ** 63 - 1  # a user id (BIGINT)


class RuleError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class SlaRule:
    id: int
    name: str
    kind: str
    seconds: float
    enabled: bool = True
    business_hours_only: bool = False
    account_id: str = ""  # "" = every account
    group: str = ""  # "" = every skill group
    escalation: str = "none"
    notify_user_id: int | None = None
    window: int = 20  # avg_reply: the last N replies
    min_samples: int = 3  # avg_reply: no verdict on fewer replies

    def applies_to(self, account_id: str, group: str) -> bool:
        return (not self.account_id or self.account_id == account_id) and (not self.group or self.group == group)

    def applies_to_agent(self, groups: tuple[str, ...] | list[str]) -> bool:
        return not self.group or self.group in groups


def _int(data: dict[str, Any], key: str, default: int, lo: int, hi: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise RuleError(key, f"must be an integer {lo}..{hi}")
    return value


def _str(data: dict[str, Any], key: str, limit: int) -> str:
    value = data.get(key)
    if value is None:  # missing or null: the default
        value = ""
    if not isinstance(value, str) or len(value) > limit or not storable_text(value):
        raise RuleError(key, f"must be a string of at most {limit} characters (no NUL, no half of an emoji)")
    return value.strip()


def parse_rule(data: Any, rule_id: int = 0) -> SlaRule:
    """Validate a rule's JSON form; raises ``RuleError`` naming the field."""
    if not isinstance(data, dict):
        raise RuleError("rule", "must be an object")
    kind = data.get("kind")
    if kind not in KINDS:
        raise RuleError("kind", f"must be one of {', '.join(KINDS)}")
    seconds = data.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= MAX_SECONDS:
        raise RuleError("seconds", f"must be a number of seconds, 0 < seconds <= {MAX_SECONDS}")
    name = _str(data, "name", 128) or {"first_reply": "首次响应", "unanswered": "消息未回复",
                                       "avg_reply": "平均响应时长"}[kind]
    for flag in ("enabled", "business_hours_only"):
        if flag in data and not isinstance(data[flag], bool):
            raise RuleError(flag, "must be true or false")
    escalation = data.get("escalation")
    if escalation is None:  # missing or null: the default ([] or 0 were taken for it too)
        escalation = "none"
    if escalation not in ESCALATIONS:
        raise RuleError("escalation", f"must be one of {', '.join(ESCALATIONS)}")
    if escalation == "reassign" and kind == "avg_reply":
        raise RuleError("escalation", "an average over an agent's replies has no one session to reassign")
    notify = data.get("notify_user_id")
    if escalation == "notify":
        if isinstance(notify, bool) or not isinstance(notify, int) or not 0 < notify <= MAX_ID:
            raise RuleError("notify_user_id", "notify needs the id of the user to tell")
    else:
        notify = None
    return SlaRule(id=rule_id, name=name, kind=kind, seconds=float(seconds), enabled=data.get("enabled", True),
                   business_hours_only=data.get("business_hours_only", False),
                   account_id=_str(data, "account_id", 64), group=_str(data, "group", 64), escalation=escalation,
                   notify_user_id=notify, window=_int(data, "window", 20, 1, 1000),
                   min_samples=_int(data, "min_samples", 3, 1, 1000))


def rule_to_json(rule: SlaRule) -> dict[str, Any]:
    return asdict(rule)


def storable(rule: SlaRule) -> dict[str, Any]:
    """The rule's JSON without its id (what the ``data`` column keeps)."""
    body = rule_to_json(rule)
    body.pop("id")
    return body
