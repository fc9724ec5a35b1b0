"""Keyword auto-reply rules: exact, contains and regex, per account and channel, by priority (pure)."""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Iterable

MATCH_TYPES = ("exact", "contains", "regex")
REPLY_TYPES = ("text", "image", "link")


class KeywordRuleError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def fold(text: str) -> str:
    """Full-width to half-width, lower-case, trimmed: what both sides are compared as."""
    return unicodedata.normalize("NFKC", text or "").lower().strip()


def core(text: str) -> str:
    """``fold`` without spaces, punctuation, symbols or emoji: "在吗？", "在吗~" and "在 吗😊" are "在吗"
    (customers nearly always add one; an exact rule compared them as written and never fired)."""
    return "".join(ch for ch in fold(text) if unicodedata.category(ch)[0] in "LMN"
                   and not "\ufe00" <= ch <= "\ufe0f")  # (variation selectors: the emoji form of a symbol)


@dataclass(frozen=True)
class Rule:
    id: int
    name: str
    match_type: str
    pattern: str
    reply: dict[str, Any]
    priority: int = 0
    account_id: str = ""
    channel: str = ""
    enabled: bool = True
    compiled: Any = None

    def matches(self, text: str) -> bool:
        """Exact and contains compare the words (``core``) when the pattern has any, else as written
        (a rule for "?" or "😊" alone); a regex sees the text as written and folded."""
        folded = fold(text)
        words = core(self.pattern)
        if self.match_type == "exact":
            return core(text) == words if words else folded == fold(self.pattern)
        if self.match_type == "contains":
            return (words in core(text)) if words else fold(self.pattern) in folded
        return bool(self.compiled.search(text) or self.compiled.search(folded))


def validate_reply(reply: Any) -> dict[str, Any]:
    if not isinstance(reply, dict):
        raise KeywordRuleError("reply", "must be an object")
    kind = reply.get("type", "text")
    if kind not in REPLY_TYPES:
        raise KeywordRuleError("reply.type", f"must be one of {', '.join(REPLY_TYPES)}")
    if kind == "text" and not (isinstance(reply.get("text"), str) and reply["text"].strip()):
        raise KeywordRuleError("reply.text", "a text reply needs text")
    if kind == "image" and not (reply.get("media_id") or reply.get("pic_url")):
        raise KeywordRuleError("reply.media_id", "an image reply needs media_id or pic_url")
    if kind == "link" and not (isinstance(reply.get("url"), str) and reply["url"].startswith(("http://", "https://"))):
        raise KeywordRuleError("reply.url", "a link reply needs an http(s) url")
    if kind == "link" and not reply.get("title"):
        raise KeywordRuleError("reply.title", "a link reply needs a title")
    return {"type": kind, **{k: v for k, v in reply.items() if k != "type"}}


def parse_rule(data: dict[str, Any], id: int = 0) -> Rule:
    """Validate a rule as saved by an operator; an invalid regex is refused here, not at match time."""
    if not isinstance(data, dict):
        raise KeywordRuleError("rule", "must be an object")
    match_type = data.get("match_type", "contains")
    if match_type not in MATCH_TYPES:
        raise KeywordRuleError("match_type", f"must be one of {', '.join(MATCH_TYPES)}")
    pattern = data.get("pattern")
    if not isinstance(pattern, str) or not pattern.strip() or len(pattern) > 500:
        raise KeywordRuleError("pattern", "1 to 500 characters")
    compiled = None
    if match_type == "regex":
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            raise KeywordRuleError("pattern", f"invalid regular expression: {exc}") from None
    priority = data.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or not -1000 <= priority <= 1000:
        raise KeywordRuleError("priority", "an integer from -1000 to 1000")
    for key in ("account_id", "channel", "name"):
        if not isinstance(data.get(key, ""), str):
            raise KeywordRuleError(key, "must be a string")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise KeywordRuleError("enabled", "must be true or false")
    return Rule(id, data.get("name", "") or pattern[:40], match_type, pattern, validate_reply(data.get("reply")),
                priority, data.get("account_id", ""), data.get("channel", ""), enabled, compiled)


def rule_json(rule: Rule) -> dict[str, Any]:
    return {"id": rule.id, "name": rule.name, "match_type": rule.match_type, "pattern": rule.pattern,
            "reply": rule.reply, "priority": rule.priority, "account_id": rule.account_id, "channel": rule.channel,
            "enabled": rule.enabled}


def first_match(rules: Iterable[Rule], text: str, account_id: str, channel: str | None) -> Rule | None:
    """The enabled rule with the highest priority (then lowest id) that applies and matches."""
    applicable = [r for r in rules if r.enabled and (not r.account_id or r.account_id == account_id)
                  and (not r.channel or r.channel == (channel or ""))]
    for rule in sorted(applicable, key=lambda r: (-r.priority, r.id)):
        if rule.matches(text):
            return rule
    return None
