"""Quality-check (智能质检) rules as pure data and pure checks over one session's messages.

kinds and params:
  forbidden_words  {"words": [...]}                        an agent reply containing any of them
  required_phrase  {"phrases": [...], "within_first": K}   none of the first K agent replies (K = 0: none of
                                                           all of them, judged when the session ends) says any
  anxiety_words    {"words": [...]}                        a customer message containing any: a supervisor alert
  slow_reply       {"seconds": N}                          an agent reply that kept the customer waiting over N s
Matching ignores case and full-/half-width differences (NFKC).
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from typing import Any, Sequence

from ..http_util import storable as storable_text
from .deadlines import TimelineEvent, reply_samples, with_handovers
from .sla_rules import RuleError

KINDS = ("forbidden_words", "required_phrase", "anxiety_words", "slow_reply")
DEFAULT_NAMES = {"forbidden_words": "禁用语", "required_phrase": "必说话术", "anxiety_words": "客户情绪预警",
                 "slow_reply": "回复过慢"}


@dataclass(frozen=True)
class QualityRule:
    id: int
    name: str
    kind: str
    params: dict[str, Any] = field(hash=False)
    enabled: bool = True

    @property
    def alerts(self) -> bool:
        """Whether a hit asks for a supervisor's attention at once."""
        return self.kind == "anxiety_words"


@dataclass(frozen=True, slots=True)
class QMessage:
    """One archived message of a session. role: customer | agent | bot | system."""

    id: int
    at: float
    role: str
    text: str
    agent_id: int | None = None


@dataclass(frozen=True)
class Hit:
    rule_id: int
    key: str  # stable per finding, so re-checking a session never doubles it
    message_ids: tuple[int, ...]
    agent_id: int | None
    at: float
    detail: dict[str, Any]


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").casefold()


def _words(params: dict[str, Any], key: str) -> list[str]:
    raw = params.get(key)
    if not isinstance(raw, list) or not raw or len(raw) > 500:
        raise RuleError(f"params.{key}", "must be a non-empty list of at most 500 strings")
    out = []
    for i, w in enumerate(raw):
        if not isinstance(w, str) or not w.strip() or len(w) > 100 or not storable_text(w):
            raise RuleError(f"params.{key}[{i}]", "must be a non-empty string of at most 100 characters")
        out.append(w.strip())
    return out


def parse_rule(data: Any, rule_id: int = 0) -> QualityRule:
    """Validate a rule's JSON form ``{name, kind, enabled, params}``; raises ``RuleError`` naming the field."""
    if not isinstance(data, dict):
        raise RuleError("rule", "must be an object")
    kind = data.get("kind")
    if kind not in KINDS:
        raise RuleError("kind", f"must be one of {', '.join(KINDS)}")
    name = data.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > 128 or not storable_text(name)):
        raise RuleError("name", "must be a string of at most 128 characters")
    name = (name or "").strip() or DEFAULT_NAMES[kind]  # blank: the default (was stored as "")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise RuleError("enabled", "must be true or false")
    params = data.get("params")
    if not isinstance(params, dict):
        raise RuleError("params", "must be an object")
    if kind in ("forbidden_words", "anxiety_words"):
        clean: dict[str, Any] = {"words": _words(params, "words")}
    elif kind == "required_phrase":
        k = params.get("within_first", 1)
        if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= 100:
            raise RuleError("params.within_first", "must be an integer 0..100 (0 = anywhere in the session)")
        clean = {"phrases": _words(params, "phrases"), "within_first": k}
    else:
        n = params.get("seconds")
        if isinstance(n, bool) or not isinstance(n, (int, float)) or not 0 < n <= 86400:
            raise RuleError("params.seconds", "must be a number of seconds, 0 < seconds <= 86400")
        clean = {"seconds": n}
    return QualityRule(rule_id, name, kind, clean, enabled)


def rule_to_json(rule: QualityRule) -> dict[str, Any]:
    return {"id": rule.id, "name": rule.name, "kind": rule.kind, "enabled": rule.enabled, "params": rule.params}


def _found(text: str, words: Sequence[str]) -> list[str]:
    t = normalize(text)
    return [w for w in words if normalize(w) in t]


def check_session(rule: QualityRule, messages: Sequence[QMessage], handover_at: float, *, ended: bool) -> list[Hit]:
    """What ``rule`` finds in one session's messages (in time order). ``ended``: the session is over, so
    rules that need the whole conversation (a phrase that never came) can judge."""
    if not rule.enabled:
        return []
    replies = [m for m in messages if m.role == "agent"]
    if rule.kind in ("forbidden_words", "anxiety_words"):
        role = "agent" if rule.kind == "forbidden_words" else "customer"
        hits = []
        for m in messages:
            if m.role == role:
                words = _found(m.text, rule.params["words"])
                if words:
                    hits.append(Hit(rule.id, f"m{m.id}", (m.id,), m.agent_id, m.at, {"words": words,
                                                                                     "text": m.text[:200]}))
        return hits
    if rule.kind == "required_phrase":
        k = rule.params["within_first"]
        judged = replies[:k] if k else replies
        decided = (k and len(replies) >= k) or ended
        if not judged or not decided or any(_found(m.text, rule.params["phrases"]) for m in judged):
            return []
        return [Hit(rule.id, "session", tuple(m.id for m in judged), judged[0].agent_id, judged[-1].at,
                    {"phrases": rule.params["phrases"], "within_first": k})]
    # slow_reply
    events = with_handovers([TimelineEvent(m.at, m.role, agent_id=m.agent_id, message_id=m.id) for m in messages
                             if m.role in ("customer", "agent", "bot")], [TimelineEvent(handover_at, "handover")])
    hits = []
    for s in reply_samples(events):
        if s.seconds > rule.params["seconds"]:
            ids = tuple(i for i in (s.waited_message_id, s.message_id) if i is not None)
            hits.append(Hit(rule.id, f"m{s.message_id}", ids, s.agent_id, s.replied_at,
                            {"waited": round(s.seconds, 1), "seconds": rule.params["seconds"]}))
    return hits
