"""Bot analytics: hits per rule and FAQ, resolution and handover rates, what the bot could not answer."""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, distinct, func, select

from hub.db import Database
from hub.models import BotOutcome, FaqRow, KeywordRule, ServiceSession

outcomes = BotOutcome.__table__
sessions_t = ServiceSession.__table__


async def summary(db: Database, since: float, until: float) -> dict[str, Any]:
    """Over [since, until): conversations the bot saw, how many it resolved (no human session
    opened after its first decision), how many were handed over, and per-outcome counts."""
    window = and_(outcomes.c.at >= since, outcomes.c.at < until)
    async with db.read() as conn:
        per_outcome = dict((await conn.execute(select(outcomes.c.outcome, func.count()).where(window)
                                               .group_by(outcomes.c.outcome))).all())
        first = (select(outcomes.c.conversation_id, func.min(outcomes.c.at).label("first_at"))
                 .where(window).where(outcomes.c.outcome != "welcome")
                 .group_by(outcomes.c.conversation_id).subquery())
        seen = (await conn.execute(select(func.count()).select_from(first))).scalar() or 0
        handed = (await conn.execute(select(func.count(distinct(first.c.conversation_id))).select_from(
            first.join(sessions_t, and_(sessions_t.c.conversation_id == first.c.conversation_id,
                                        sessions_t.c.handover_at >= first.c.first_at))))).scalar() or 0
        rules = (await conn.execute(select(KeywordRule.__table__.c.id, KeywordRule.__table__.c.name,
                                           KeywordRule.__table__.c.hits)
                                    .order_by(KeywordRule.__table__.c.hits.desc()).limit(50))).all()
        faqs = (await conn.execute(select(FaqRow.__table__.c.id, FaqRow.__table__.c.question, FaqRow.__table__.c.hits)
                                   .order_by(FaqRow.__table__.c.hits.desc()).limit(50))).all()
    resolved = seen - handed
    return {
        "since": since, "until": until, "conversations": seen, "resolved_by_bot": resolved, "handed_over": handed,
        "bot_resolution_rate": round(resolved / seen, 4) if seen else None,
        "handover_rate": round(handed / seen, 4) if seen else None, "outcomes": per_outcome,
        "keyword_rules": [{"id": r.id, "name": r.name, "hits": r.hits} for r in rules],
        "faqs": [{"id": r.id, "question": r.question, "hits": r.hits} for r in faqs],
    }


async def unanswered(db: Database, since: float, limit: int = 50) -> list[dict[str, Any]]:
    """Questions the bot could not answer confidently, grouped, most frequent first."""
    async with db.read() as conn:
        rows = (await conn.execute(
            select(outcomes.c.normalized, func.count().label("count"), func.max(outcomes.c.text).label("example"),
                   func.max(outcomes.c.at).label("last_at"), func.max(outcomes.c.score).label("best_score"))
            .where(outcomes.c.outcome.in_(("unanswered", "suggest", "handover"))).where(outcomes.c.at >= since)
            .where(outcomes.c.normalized != "")
            .group_by(outcomes.c.normalized).order_by(func.count().desc(), func.max(outcomes.c.at).desc())
            .limit(limit))).all()
    return [{"question": r.example, "count": r.count, "last_at": r.last_at, "best_score": r.best_score}
            for r in rows]
