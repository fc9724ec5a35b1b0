"""Quality checks over the archive: in real time (a session observer checking each customer message
and agent reply as it is archived, and the whole session when it closes) and in batch (re-run the
rules over a date range or one conversation). Hits are stored per session, agent and rule with the
messages that triggered them; a customer's anxiety words raise a supervisor alert at once."""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from ..clock import Clock
from ..db import Database, retry_busy
from ..models import Message, QualityHit, QualityRuleRow, ServiceSession
from ..service.sessions import SessionChange
from .quality_rules import Hit, QMessage, QualityRule, RuleError, check_session, parse_rule
from .timeline import agent_of

log = logging.getLogger(__name__)
rules_t = QualityRuleRow.__table__
hits_t = QualityHit.__table__
sessions_t = ServiceSession.__table__
messages_t = Message.__table__
BATCH_LIMIT = 5000  # sessions per batch run
CHECKED = ("handover", "customer_message", "agent_reply", "closed")  # handover: what the customer told the bot


@dataclass(frozen=True)
class BatchResult:
    sessions: int
    hits: int  # new hits stored
    truncated: bool


class QualityChecker:
    def __init__(self, db: Database, clock: Clock, raise_alert: Any = None):
        self.db = db
        self.clock = clock
        self.raise_alert = raise_alert  # async (rule_id, rule_name, session_id, detail) -> None
        self.rules: list[QualityRule] = []
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert

    async def load_rules(self) -> None:
        async with self.db.read() as conn:
            rows = (await conn.execute(select(rules_t).order_by(rules_t.c.id))).all()
        rules = []
        for r in rows:
            try:
                rules.append(parse_rule({"name": r.name, "kind": r.kind, "enabled": r.enabled,
                                         "params": json.loads(r.params)}, r.id))
            except (RuleError, ValueError) as exc:
                log.warning("quality rule %s skipped: %s", r.id, exc)
        self.rules = rules

    async def on_session_change(self, change: SessionChange) -> None:
        if change.kind not in CHECKED or not any(r.enabled for r in self.rules):
            return
        async with self.db.read() as conn:
            row = (await conn.execute(select(sessions_t).where(sessions_t.c.id == change.session_id))).first()
        if row is None:
            return
        new = await self.check(row, ended=change.kind == "closed")
        if self.raise_alert is None:
            return
        by_id = {r.id: r for r in self.rules}
        for hit in new:
            rule = by_id.get(hit.rule_id)
            if rule is not None and rule.alerts:
                await self.raise_alert(rule.id, rule.name, row.id, {**hit.detail, "message_ids": list(hit.message_ids)})

    async def check(self, session: Any, *, ended: bool) -> list[Hit]:
        """Run every enabled rule over one session; store and return the hits not stored before."""
        rules = [r for r in self.rules if r.enabled]
        if not rules:
            return []
        messages = await self.session_messages(session)
        found = [h for r in rules for h in check_session(r, messages, session.handover_at, ended=ended)]
        return await self._store(session, found)

    async def session_messages(self, session: Any) -> list[QMessage]:
        """The session's messages: from the customer message that led to the handover until it closed."""
        async with self.db.read() as conn:
            trigger = (await conn.execute(
                select(messages_t.c.created_at).where(messages_t.c.conversation_id == session.conversation_id)
                .where(messages_t.c.direction == "in").where(messages_t.c.created_at <= session.handover_at)
                .order_by(messages_t.c.created_at.desc()).limit(1))).scalar()
            q = (select(messages_t.c.id, messages_t.c.created_at, messages_t.c.direction, messages_t.c.sender,
                        messages_t.c.kind, messages_t.c.text)
                 .where(messages_t.c.conversation_id == session.conversation_id)
                 .where(messages_t.c.created_at >= (trigger if trigger is not None else session.handover_at)))
            if session.closed_at is not None and session.state == "closed":
                q = q.where(messages_t.c.created_at <= session.closed_at)
            rows = (await conn.execute(q.order_by(messages_t.c.created_at, messages_t.c.id))).all()
        out = []
        for m in rows:
            if m.kind.startswith("event."):
                continue
            agent = agent_of(m.sender or "")
            role = "customer" if m.direction == "in" else "agent" if agent is not None else \
                "bot" if m.sender == "bot" else "system"
            out.append(QMessage(m.id, m.created_at, role, m.text or "", agent))
        return out

    async def _store(self, session: Any, hits: list[Hit]) -> list[Hit]:
        if not hits:
            return []
        names = {r.id: (r.name, r.kind) for r in self.rules}
        now = self.clock.now()

        async def write() -> list[Hit]:
            async with self.db.write() as conn:
                known = {(r.rule_id, r.key) for r in (await conn.execute(
                    select(hits_t.c.rule_id, hits_t.c.key).where(hits_t.c.session_id == session.id))).all()}
                new = [h for h in hits if (h.rule_id, h.key) not in known]
                for h in new:
                    name, kind = names[h.rule_id]
                    await conn.execute(self._insert(hits_t).values(
                        rule_id=h.rule_id, rule_name=name, kind=kind, session_id=session.id,
                        conversation_id=session.conversation_id, agent_id=h.agent_id or session.agent_id,
                        key=h.key, message_ids=json.dumps(list(h.message_ids)),
                        detail=json.dumps(h.detail, ensure_ascii=False), at=h.at, created_at=now,
                    ).on_conflict_do_nothing(index_elements=["rule_id", "session_id", "key"]))
                return new

        return await retry_busy(write)

    async def run_batch(self, *, since: float | None = None, until: float | None = None,
                        conversation_id: int | None = None) -> BatchResult:
        """Re-check archived sessions (handed over in [since, until), or of one conversation); idempotent."""
        q = select(sessions_t)
        if conversation_id is not None:
            q = q.where(sessions_t.c.conversation_id == conversation_id)
        if since is not None:
            q = q.where(sessions_t.c.handover_at >= since)
        if until is not None:
            q = q.where(sessions_t.c.handover_at < until)
        async with self.db.read_heavy() as conn:
            rows = (await conn.execute(q.order_by(sessions_t.c.id).limit(BATCH_LIMIT + 1))).all()
        new = 0
        for row in rows[:BATCH_LIMIT]:
            new += len(await self.check(row, ended=row.state == "closed"))
        return BatchResult(min(len(rows), BATCH_LIMIT), new, len(rows) > BATCH_LIMIT)
