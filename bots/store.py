"""Keyword rules in the database, cached for the bot step (reloaded every few seconds)."""
from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, select, update

from hub.clock import Clock
from hub.db import Database
from hub.errors import bad_request, not_found
from hub.models import KeywordRule

from .keywords import KeywordRuleError, Rule, parse_rule, rule_json

rules_t = KeywordRule.__table__


def _rule(row: Any) -> Rule:
    return parse_rule({"name": row.name, "match_type": row.match_type, "pattern": row.pattern,
                       "reply": json.loads(row.reply), "priority": row.priority, "account_id": row.account_id,
                       "channel": row.channel, "enabled": bool(row.enabled)}, row.id)


def _checked(data: Any, id: int = 0) -> Rule:
    try:
        return parse_rule(data, id)
    except KeywordRuleError as exc:
        raise bad_request("invalid_rule", exc.message, exc.field) from None


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
            await conn.execute(update(rules_t).where(rules_t.c.id == rule_id).values(
                name=rule.name, match_type=rule.match_type, pattern=rule.pattern,
                reply=json.dumps(rule.reply, ensure_ascii=False), priority=rule.priority, account_id=rule.account_id,
                channel=rule.channel, enabled=rule.enabled, updated_at=self.clock.now()))
        self._loaded_at = float("-inf")
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
