"""Default SLA and quality rules for the demo brand (and as a starting point for a new one)."""
from __future__ import annotations

import json

from sqlalchemy import func, select

from ..clock import Clock
from ..db import Database
from ..models import QualityRuleRow, SlaRuleRow
from . import quality_rules, sla_rules

DEFAULT_SLA = [
    {"kind": "first_reply", "name": "首次响应 60 秒", "seconds": 60},
    {"kind": "unanswered", "name": "消息 2 分钟未回复", "seconds": 120},
    {"kind": "avg_reply", "name": "平均响应超 2 分钟", "seconds": 120, "window": 20, "min_samples": 3},
]
DEFAULT_QUALITY = [
    {"kind": "forbidden_words", "name": "禁用语", "params": {"words": ["不归我们管", "自己去看", "不知道", "爱买不买", "你自己查"]}},
    {"kind": "required_phrase", "name": "首句问候", "params": {"phrases": ["您好", "你好", "很高兴为您服务"], "within_first": 1}},
    {"kind": "anxiety_words", "name": "客户情绪预警", "params": {"words": ["投诉", "差评", "退款", "急"]}},
    {"kind": "slow_reply", "name": "回复超 2 分钟", "params": {"seconds": 120}},
]


async def seed_default_rules(db: Database, clock: Clock) -> None:
    """Idempotent: only into empty rule tables."""
    sla_t, q_t = SlaRuleRow.__table__, QualityRuleRow.__table__
    now = clock.now()
    async with db.write() as conn:
        if not (await conn.execute(select(func.count()).select_from(sla_t))).scalar():
            for body in DEFAULT_SLA:
                rule = sla_rules.parse_rule(body)
                await conn.execute(sla_t.insert().values(name=rule.name, enabled=True, updated_at=now, data=json.dumps(
                    sla_rules.storable(rule), ensure_ascii=False)))
        if not (await conn.execute(select(func.count()).select_from(q_t))).scalar():
            for body in DEFAULT_QUALITY:
                q = quality_rules.parse_rule(body)
                await conn.execute(q_t.insert().values(name=q.name, kind=q.kind, enabled=True, updated_at=now,
                                                       params=json.dumps(q.params, ensure_ascii=False)))
