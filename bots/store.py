"""Keyword rules in the database, cached for the bot step (reloaded every few seconds)."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select, update

from hub.clock import Clock
from hub.db import Database
from hub.errors import bad_request, not_found
from hub.http_util import storable
from hub.models import KeywordRule

from .keywords import KeywordRuleError, Rule, parse_rule, rule_json

rules_t = KeywordRule.__table__


def _rule(row: Any) -> Rule:
    return parse_rule({"name": row.name, "match_type": row.match_type, "pattern": row.pattern,
                       "reply": json.loads(row.reply), "priority": row.priority, "account_id": row.account_id,
                       "channel": row.channel, "enabled": bool(row.enabled)}, row.id)


#: what the keyword_rules columns hold (String(n)); the pattern's 500 is parse_rule's own limit
COLUMN_MAX = {"name": 128, "account_id": 64, "channel": 64}


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (*_strings(k), *_strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _checked(data: Any, id: int = 0) -> Rule:
    """A rule as an operator saves it: ``parse_rule``, and what the table can hold (too long, a NUL
    PostgreSQL refuses, half an emoji) is a 400 naming the field, not a database error."""
    try:
        rule = parse_rule(data, id)
    except KeywordRuleError as exc:
        raise bad_request("invalid_rule", exc.message, exc.field) from None
    for name, limit in COLUMN_MAX.items():
        if len(getattr(rule, name)) > limit:
            raise bad_request("invalid_rule", f"at most {limit} characters", name)
    for name, value in (("name", rule.name), ("pattern", rule.pattern), ("account_id", rule.account_id),
                        ("channel", rule.channel), ("reply", rule.reply)):
        if not all(storable(s) for s in _strings(value)):
            raise bad_request("invalid_rule", "no NUL character and no half of an emoji (a lone surrogate)", name)
    return rule


class KeywordRules:
    def __init__(self, db: Database, clock: Clock, ttl: float = 3.0):
        self.db = db
        self.clock = clock
        self.ttl = ttl
        self._rules: list[Rule] = []
        self._hits: dict[int, int] = {}
        self._loaded_at = float("-inf")

    async def rules(self) -> list[Rule]:
        if self.clock.now() - self._loaded_at > self.ttl:
            async with self.db.read() as conn:
                rows = (await conn.execute(select(rules_t))).all()
            self._rules = [_rule(r) for r in rows]
            self._hits = {r.id: r.hits for r in rows}
            self._loaded_at = self.clock.now()
        return self._rules

    async def list(self) -> list[dict[str, Any]]:
        self._loaded_at = float("-inf")
        return [{**rule_json(r), "hits": self._hits.get(r.id, 0)}
                for r in sorted(await self.rules(), key=lambda r: (-r.priority, r.id))]

    async def create(self, data: Any) -> dict[str, Any]:
        rule = _checked(data)
        now = self.clock.now()
        async with self.db.write() as conn:
            res = await conn.execute(rules_t.insert().values(
                name=rule.name, match_type=rule.match_type, pattern=rule.pattern,
                reply=json.dumps(rule.reply, ensure_ascii=False), priority=rule.priority, account_id=rule.account_id,
                channel=rule.channel, enabled=rule.enabled, hits=0, created_at=now, updated_at=now))
        self._loaded_at = float("-inf")
        return {**rule_json(_checked(data, res.inserted_primary_key[0])), "hits": 0}

    async def update(self, rule_id: int, data: Any) -> dict[str, Any]:
        current = next((r for r in await self.list() if r["id"] == rule_id), None)
        if current is None:
            raise not_found("unknown_rule", f"no keyword rule {rule_id}")
        merged = {**current, **(data if isinstance(data, dict) else {})}
        merged.pop("hits", None)
        rule = _checked(merged, rule_id)
        async with self.db.write() as conn:
            res = await conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(
                name=rule.name, match_type=rule.match_type, pattern=rule.pattern,
                reply=json.dumps(rule.reply, ensure_ascii=False), priority=rule.priority, account_id=rule.account_id,
                channel=rule.channel, enabled=rule.enabled, updated_at=self.clock.now()))
        self._loaded_at = float("-inf")
        if res.rowcount == 0:  # deleted (by another admin or process) since it was read above
            raise not_found("unknown_rule", f"no keyword rule {rule_id}")
        return {**rule_json(rule), "hits": current["hits"]}

    async def delete(self, rule_id: int) -> None:
        async with self.db.write() as conn:
            if (await conn.execute(delete(rules_t).where(rules_t.c.id == rule_id))).rowcount == 0:
                raise not_found("unknown_rule", f"no keyword rule {rule_id}")
        self._loaded_at = float("-inf")

    async def count_hit(self, rule_id: int, conn: Any = None) -> None:
        """One more hit (in ``conn``'s transaction when given)."""
        if conn is not None:
            await conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(hits=rules_t.c.hits + 1))
            return
        async with self.db.write() as own:
            await self.count_hit(rule_id, own)
