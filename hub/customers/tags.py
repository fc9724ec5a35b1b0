"""Tags: groups, manual tags from agents, rule tags (VIP by spend, 复购, product category), keyword
tags from chat, source tags from channel codes. Changes are pushed live to agents with the customer open."""
from __future__ import annotations

from typing import Any, Awaitable, Callable, Iterable

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql, sqlite

from ..errors import bad_request, not_found
from ..http_util import storable
from ..models import CustomerTag, Tag, TagGroup, TagRemoval

tags_t = Tag.__table__
groups_t = TagGroup.__table__
ctags = CustomerTag.__table__
removals_t = TagRemoval.__table__

SOURCES = ("manual", "rule", "keyword", "channel")
# (customer_id, [tag json]) -> None: set by the app to push tag changes to agents
OnTagsChanged = Callable[[int], Awaitable[None]]


def valid_name(name: Any, field: str = "name") -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64 or not storable(name):
        raise bad_request("invalid_tag", f"{field}: 1 to 64 characters (no NUL, no half of an emoji)", field)
    return name.strip()


async def _insert_ignore(conn: Any, table: Any, keys: list[str], **values: Any) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING on ``keys``; True when the row was new. Two agents adding
    the same new tag at once (PostgreSQL runs them in parallel): the second waits for the first
    and finds the row, instead of failing on the unique key."""
    dialect = await conn.run_sync(lambda c: c.dialect.name)
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(table).values(**values).on_conflict_do_nothing(index_elements=keys)
    return (await conn.execute(stmt.returning(table.c[keys[0]]))).first() is not None


async def ensure_tag(conn: Any, name: str, group: str | None = None) -> int:
    name = valid_name(name)
    row = (await conn.execute(select(tags_t.c.id).where(tags_t.c.name == name))).first()
    if row:
        return row.id
    group_id = None
    if group:
        await _insert_ignore(conn, groups_t, ["name"], name=group)
        group_id = (await conn.execute(select(groups_t.c.id).where(groups_t.c.name == group))).scalar_one()
    await _insert_ignore(conn, tags_t, ["name"], name=name, group_id=group_id, color="")
    return (await conn.execute(select(tags_t.c.id).where(tags_t.c.name == name))).scalar_one()


async def add_tags(conn: Any, now: float, customer_id: int, names: Iterable[str], source: str, by: str,
                   group: str | None = None) -> list[str]:
    """Tag a customer (idempotent); returns the names that were new for this customer. The keyword
    rules skip a tag an agent took off this customer; an agent's own add lifts that."""
    if source not in SOURCES:
        raise bad_request("invalid_source", f"source must be one of {', '.join(SOURCES)}", "source")
    names = list(names)
    if names and source == "keyword":
        removed = set((await conn.execute(select(removals_t.c.name).where(
            (removals_t.c.customer_id == customer_id) & removals_t.c.name.in_(names)))).scalars())
        names = [n for n in names if n not in removed]
    elif names and source == "manual":
        await conn.execute(removals_t.delete().where((removals_t.c.customer_id == customer_id)
                                                     & removals_t.c.name.in_([valid_name(n) for n in names])))
    added = []
    for name in names:
        tag_id = await ensure_tag(conn, name, group)
        if await _insert_ignore(conn, ctags, ["customer_id", "tag_id"], customer_id=customer_id, tag_id=tag_id,
                                source=source, by=by, at=now):
            added.append(name)
    return added


async def drop_stale(conn: Any, keep: dict[int, set[str]], source: str, by: str) -> set[int]:
    """Take off the customers' ``source``/``by`` tags (the purchase rules': "rule"/"rules") that are not
    in ``keep[customer]`` any more (a refund took the spend under the VIP threshold, a closed order
    the second one of 复购); returns the customers that lost one."""
    if not keep:
        return set()
    rows = (await conn.execute(select(ctags.c.customer_id, ctags.c.tag_id, tags_t.c.name).join(
        tags_t, tags_t.c.id == ctags.c.tag_id).where(ctags.c.customer_id.in_(list(keep)) & (ctags.c.source == source)
                                                    & (ctags.c.by == by)))).all()
    stale = [{"c": r.customer_id, "t": r.tag_id} for r in rows if r.name not in keep[r.customer_id]]
    if stale:
        await conn.execute(ctags.delete().where((ctags.c.customer_id == bindparam("c"))
                                                & (ctags.c.tag_id == bindparam("t"))), stale)
    return {s["c"] for s in stale}


async def remove_tag(conn: Any, now: float, customer_id: int, name: str, by: str) -> bool:
    """Take a tag off a customer, and remember that ``by`` did (the keyword rules would put it back
    at the customer's next matching word)."""
    name = valid_name(name, "remove")  # as add_tags stores it (trimmed); not a string: a 400, not a 500
    row = (await conn.execute(select(tags_t.c.id).where(tags_t.c.name == name))).first()
    if row is None:
        raise not_found("unknown_tag", f"no tag {name}")
    res = await conn.execute(ctags.delete().where((ctags.c.customer_id == customer_id) & (ctags.c.tag_id == row.id)))
    await _insert_ignore(conn, removals_t, ["customer_id", "name"], customer_id=customer_id, name=name,
                         by=by[:64], at=now)
    return res.rowcount > 0


async def tags_of(conn: Any, customer_id: int) -> list[dict[str, Any]]:
    rows = (await conn.execute(
        select(tags_t.c.name, tags_t.c.color, groups_t.c.name.label("group"), ctags.c.source, ctags.c.by, ctags.c.at)
        .join(tags_t, tags_t.c.id == ctags.c.tag_id).join(groups_t, groups_t.c.id == tags_t.c.group_id, isouter=True)
        .where(ctags.c.customer_id == customer_id).order_by(ctags.c.at))).all()
    return [{"name": r.name, "group": r.group, "color": r.color, "source": r.source, "by": r.by, "at": r.at}
            for r in rows]


async def all_tags(conn: Any) -> list[dict[str, Any]]:
    rows = (await conn.execute(select(tags_t.c.id, tags_t.c.name, tags_t.c.color, groups_t.c.name.label("group"))
                               .join(groups_t, groups_t.c.id == tags_t.c.group_id, isouter=True)
                               .order_by(groups_t.c.name, tags_t.c.name))).all()
    return [{"id": r.id, "name": r.name, "group": r.group, "color": r.color} for r in rows]


def keyword_tags(text: str, rules: dict[str, str]) -> list[str]:
    """Tags whose trigger word appears in a customer's message (pure): {"宝宝": "母婴", "敏感": "敏感肌"}."""
    text = text or ""
    return sorted({tag for word, tag in (rules or {}).items() if word and word in text})
