"""Demo bot content for ``serve --demo``: FAQs, brand words, keyword rules, routing rules, welcome.

Idempotent: nothing is added when the brand already has FAQs / rules of its own.
"""
from __future__ import annotations

import json
import pathlib

from sqlalchemy import func, select

from .clock import Clock
from .db import Database
from .models import FaqRow, KeywordRule, RoutingRule, Setting

DATA = pathlib.Path(__file__).with_name("demo_data")

KEYWORD_RULES = [
    dict(name="发票", match_type="regex", pattern=r"(开|要|补).{0,4}发票", priority=10,
         reply={"type": "text", "text": "电子发票会在确认收货后24小时内发送到您下单时填写的邮箱，也可以在订单详情页下载哦。"}),
    dict(name="上新", match_type="contains", pattern="上新", priority=5,
         reply={"type": "link", "title": "本周上新", "url": "https://example.com/new", "description": "新品限时9折"}),
]
ROUTING_RULES = [
    dict(name="售后问题进售后组", conditions=[{"kind": "keywords_any", "value": ["退货", "退款", "换货", "破损", "投诉"]}],
         actions={"group": "aftersales"}),
    dict(name="VIP 优先", conditions=[{"kind": "vip_min", "value": 1}], actions={"group": "presales", "priority": 100}),
]
SETTINGS = {
    "default_group": "presales",
    "welcome_text": "您好，欢迎来到示例品牌！回复「上新」看本周新品，回复「转人工」找客服。",
    "brand_words": None,
}
BRAND_WORDS = ["敏感肌", "以旧换新", "舒缓修护面霜", "氨基酸洁面"]


async def seed_demo_bots(db: Database, clock: Clock) -> None:
    from .knowledge.store import KnowledgeBase, validate_faq
    now = clock.now()
    async with db.read() as conn:
        faqs = (await conn.execute(select(func.count()).select_from(FaqRow.__table__))).scalar()
        rules = (await conn.execute(select(func.count()).select_from(KeywordRule.__table__))).scalar()
        routes = (await conn.execute(select(func.count()).select_from(RoutingRule.__table__))).scalar()
    if not faqs:
        kb = KnowledgeBase(db, clock)
        await kb.add_words(BRAND_WORDS)
        entries = json.loads((DATA / "faq_zh.json").read_text(encoding="utf-8"))
        await kb.create_many([validate_faq(e) for e in entries])
    async with db.write() as conn:
        if not rules:
            for r in KEYWORD_RULES:
                await conn.execute(KeywordRule.__table__.insert().values(
                    name=r["name"], match_type=r["match_type"], pattern=r["pattern"], account_id="", channel="",
                    priority=r["priority"], enabled=True, reply=json.dumps(r["reply"], ensure_ascii=False), hits=0,
                    created_at=now, updated_at=now))
        if not routes:
            for i, r in enumerate(ROUTING_RULES, start=1):
                data = {"conditions": r["conditions"], "actions": r["actions"]}
                await conn.execute(RoutingRule.__table__.insert().values(
                    position=i, enabled=True, name=r["name"], data=json.dumps(data, ensure_ascii=False), updated_at=now))
        have = set((await conn.execute(select(Setting.__table__.c.key).where(Setting.__table__.c.scope == ""))).scalars())
        for key, value in SETTINGS.items():
            if value is not None and key not in have:
                await conn.execute(Setting.__table__.insert().values(scope="", key=key,
                                                                     value=json.dumps(value, ensure_ascii=False),
                                                                     updated_at=now))
