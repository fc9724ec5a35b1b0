"""Small helpers shared by the tests: posting callbacks and reading the archive."""
from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from hub.models import Job, Message


async def post(client, sim, xml: str, encrypted: bool = True, **kw):  # noqa: ANN001
    query, body = sim.encrypted(xml, **kw) if encrypted else sim.plain(xml, **kw)
    return await client.post(sim.path, params=query, data=body)


async def count_messages(hub, **where) -> int:  # noqa: ANN001
    t = Message.__table__
    q = select(func.count()).select_from(t)
    for k, v in where.items():
        q = q.where(t.c[k] == v)
    async with hub.db.read() as conn:
        return (await conn.execute(q)).scalar()


async def messages(hub, **where) -> list:  # noqa: ANN001
    t = Message.__table__
    q = select(t)
    for k, v in where.items():
        q = q.where(t.c[k] == v)
    async with hub.db.read() as conn:
        return (await conn.execute(q.order_by(t.c.id))).all()


async def pending_jobs(hub) -> list:  # noqa: ANN001
    t = Job.__table__
    async with hub.db.read() as conn:
        return (await conn.execute(select(t).order_by(t.c.id))).all()


async def wait_for(predicate, timeout: float = 5.0, interval: float = 0.02):  # noqa: ANN001
    """Poll an (async) predicate until it is truthy; fail the test on timeout."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


async def make_groups(hub, *names: str) -> None:  # noqa: ANN001
    """Skill groups the operators made (rules and ticket settings name only groups that exist)."""
    from hub.models import SkillGroup
    async with hub.db.write() as conn:
        for name in names:
            await conn.execute(SkillGroup.__table__.insert().values(name=name, display_name=name))
