"""Demo brand seeded by ``serve --demo``: one WeCom corp (with 微信客服) and one Official Account.

The credentials are fixed so README.md can show a working example; never use them in production.
"""
from __future__ import annotations

from .accounts import list_accounts, upsert_account
from .users import add_user, list_users
from .clock import Clock
from .db import Database

DEMO_ACCOUNTS = [
    dict(id="demo-wecom", platform="wecom", name="示例品牌 企业微信", token="DemoWeComToken2026",
         encoding_aes_key="jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", receive_id="ww5823bf96d3bd56c7",
         secret="demo-corp-secret"),
    dict(id="demo-oa", platform="oa", name="示例品牌 公众号", token="DemoOaToken2026",
         encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", receive_id="wx1234567890abcdef",
         secret="demo-app-secret"),
]


# agents in two skill groups, a supervisor and an admin (README.md lists them)
DEMO_USERS = [
    dict(username="alice", password="alice-demo-2026", role="agent", display_name="小爱 (售前)", groups=["presales"], cap=5),
    dict(username="bob", password="bob-demo-2026", role="agent", display_name="小博 (售后)", groups=["aftersales"], cap=5),
    dict(username="carol", password="carol-demo-2026", role="agent", display_name="小凯 (售前+售后)",
         groups=["presales", "aftersales"], cap=3),
    dict(username="sam", password="sam-demo-2026", role="supervisor", display_name="主管 Sam",
         groups=["presales", "aftersales"], cap=0),
    dict(username="admin", password="admin-demo-2026", role="admin", display_name="管理员", groups=[], cap=0),
]


async def seed_demo(db: Database, clock: Clock) -> None:
    """Idempotent: existing demo rows are left as they are."""
    existing = {a.id for a in await list_accounts(db)}
    for spec in DEMO_ACCOUNTS:
        if spec["id"] not in existing:
            await upsert_account(db, clock, **spec)
    people = {u.username for u in await list_users(db)}
    for spec in DEMO_USERS:
        if spec["username"] not in people:
            await add_user(db, clock, **spec)
    from .demo_bots import seed_demo_bots
    await seed_demo_bots(db, clock)
    from .supervisor.seed import seed_default_rules
    await seed_default_rules(db, clock)  # SLA: first reply 60 s, unanswered 120 s, average 120 s; quality checks
