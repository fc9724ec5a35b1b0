"""Identity resolution: one customer, many identities.

Per-account identities (openid, external_userid) and platform buyer ids (taobao, jd, youzan,
douyin) attach to an existing customer when a strong key matches: a unionid, or a verified phone.
Otherwise they start a new customer. ``resolve`` runs inside the caller's write transaction.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterable

from sqlalchemy import select, update

from ..models import Customer, Identity, Merge

customers = Customer.__table__
identities = Identity.__table__
merges = Merge.__table__

PEER_KIND = {"oa": "openid", "wecom": "external_userid", "kf": "external_userid"}
BRAND_WIDE = {"unionid", "phone"}  # keys that identify a person across accounts
KINDS = {"openid", "external_userid", "unionid", "phone", "taobao", "jd", "youzan", "douyin", "custom"}


@dataclass(frozen=True)
class Key:
    kind: str
    value: str
    account_id: str = ""
    verified: bool = False

    @property
    def strong(self) -> bool:
        return self.kind == "unionid" or (self.kind == "phone" and self.verified)

    def norm(self) -> "Key":
        account = "" if self.kind in BRAND_WIDE else self.account_id
        value = self.value.strip()
        if self.kind == "phone":
            value = "".join(ch for ch in value if ch.isdigit())
            if len(value) == 13 and value.startswith("86") and value[2] == "1":
                value = value[2:]  # +86 138 1234 5678: stored (and linked by orders) as the 11 digits
        return Key(self.kind, value, account, self.verified)


async def live_customer(conn: Any, customer_id: int) -> int:
    """Follow merges to the customer that is current."""
    seen = set()
    while customer_id not in seen:
        seen.add(customer_id)
        nxt = (await conn.execute(select(customers.c.merged_into).where(customers.c.id == customer_id))).scalar()
        if not nxt:
            return customer_id
        customer_id = nxt
    return customer_id


async def find(conn: Any, key: Key) -> int | None:
    key = key.norm()
    row = (await conn.execute(select(identities.c.customer_id).where(
        (identities.c.kind == key.kind) & (identities.c.account_id == key.account_id)
        & (identities.c.value == key.value)))).first()
    return await live_customer(conn, row.customer_id) if row else None


async def _attach(conn: Any, customer_id: int, key: Key, now: float) -> None:
    key = key.norm()
    if not key.value:
        return
    await conn.execute(identities.insert().values(customer_id=customer_id, kind=key.kind, account_id=key.account_id,
                                                  value=key.value, verified=key.verified, created_at=now))


async def resolve(conn: Any, now: float, primary: Key, extra: Iterable[Key] = (), name: str = "",
                  merged: list[int] | None = None) -> int:
    """The customer for ``primary`` (creating one if needed), attaching ``extra`` keys; strong keys
    (unionid, verified phone) that already belong to someone decide who that is. A customer merged
    away on the way is added to ``merged`` (callers' caches that name it are stale)."""
    extra = [k for k in extra if k.value]
    customer_id = await find(conn, primary)
    if customer_id is None:
        for key in extra:
            if key.strong and (found := await find(conn, key)) is not None:
                customer_id = found
                break
    created = customer_id is None
    if created:
        res = await conn.execute(customers.insert().values(name=name[:128], vip_level=0, paid_total_fen=0,
                                                           order_count=0, created_at=now, legal_hold=False))
        customer_id = res.inserted_primary_key[0]
    if created or await find(conn, primary) is None:  # (nobody had it when the customer was created)
        await _attach(conn, customer_id, primary, now)
    for key in extra:
        owner = await find(conn, key)
        if owner is None:
            await _attach(conn, customer_id, key, now)
        elif owner != customer_id and key.kind == "unionid":
            # the same WeChat person seen under two customers: merge, recorded and reversible
            if merged is not None:
                merged.append(customer_id)
            customer_id = await merge(conn, now, source=customer_id, target=owner, by="system",
                                      why=f"same unionid {key.value}")
    if name:
        await conn.execute(update(customers).where(customers.c.id == customer_id)
                           .where(customers.c.name == "").values(name=name[:128]))
    return customer_id


async def merge(conn: Any, now: float, *, source: int, target: int, by: str, why: str) -> int:
    """Move identities, tags, conversations and orders of ``source`` to ``target``; record it."""
    from ..models import Conversation, CustomerTag
    from . import movable_tables
    if source == target:
        return target
    conv_t, tags_t = Conversation.__table__, CustomerTag.__table__
    moved: dict[str, Any] = {}
    moved["identities"] = list((await conn.execute(select(identities.c.id).where(
        identities.c.customer_id == source))).scalars())
    await conn.execute(update(identities).where(identities.c.customer_id == source).values(customer_id=target))
    moved["conversations"] = list((await conn.execute(select(conv_t.c.id).where(
        conv_t.c.customer_id == source))).scalars())
    await conn.execute(update(conv_t).where(conv_t.c.customer_id == source).values(customer_id=target))
    have = set((await conn.execute(select(tags_t.c.tag_id).where(tags_t.c.customer_id == target))).scalars())
    src_tags = (await conn.execute(select(tags_t).where(tags_t.c.customer_id == source))).all()
    moved["tags"] = [{"tag_id": t.tag_id, "source": t.source, "by": t.by, "at": t.at} for t in src_tags]
    moved["tags_added"] = [t.tag_id for t in src_tags if t.tag_id not in have]
    for t in src_tags:
        if t.tag_id not in have:
            await conn.execute(tags_t.insert().values(customer_id=target, tag_id=t.tag_id, source=t.source, by=t.by,
                                                      at=t.at))
    await conn.execute(tags_t.delete().where(tags_t.c.customer_id == source))
    for name, table in movable_tables().items():  # e.g. orders
        moved[name] = list((await conn.execute(select(table.c.id).where(table.c.customer_id == source))).scalars())
        await conn.execute(update(table).where(table.c.customer_id == source).values(customer_id=target))
    await conn.execute(update(customers).where(customers.c.id == source).values(merged_into=target))
    await conn.execute(merges.insert().values(source_id=source, target_id=target, by=by, why=why,
                                              moved=json.dumps(moved), at=now))
    return target


async def unmerge(conn: Any, now: float, merge_id: int, by: str) -> int:
    """Undo a merge: what moved goes back to the source customer, which becomes current again."""
    from ..models import Conversation, CustomerTag
    from . import movable_tables
    row = (await conn.execute(select(merges).where(merges.c.id == merge_id))).first()
    if row is None or row.undone_at is not None:
        raise LookupError(f"no merge {merge_id} to undo")
    moved = json.loads(row.moved)
    conv_t, tags_t = Conversation.__table__, CustomerTag.__table__
    # what moved is taken back only from where the merge put it: the target, or the customer the
    # target was merged into since (not from a customer an earlier undo already gave it back to)
    holders = [row.target_id]
    while len(holders) < 50:
        nxt = (await conn.execute(select(customers.c.merged_into).where(customers.c.id == holders[-1]))).scalar()
        if nxt is None or nxt in holders:
            break
        holders.append(nxt)
    for table, ids in ((identities, moved["identities"]), (conv_t, moved["conversations"]),
                       *((t, moved.get(name)) for name, t in movable_tables().items())):
        if ids:
            await conn.execute(update(table).where(table.c.id.in_(ids) & table.c.customer_id.in_(holders))
                               .values(customer_id=row.source_id))
    for t in moved["tags"]:
        await conn.execute(tags_t.insert().values(customer_id=row.source_id, tag_id=t["tag_id"], source=t["source"],
                                                  by=t["by"], at=t["at"]))
    if moved["tags_added"]:
        await conn.execute(tags_t.delete().where((tags_t.c.customer_id == row.target_id)
                                                 & tags_t.c.tag_id.in_(moved["tags_added"])))
    await conn.execute(update(customers).where(customers.c.id == row.source_id).values(merged_into=None))
    await conn.execute(update(merges).where(merges.c.id == merge_id).values(undone_at=now, undone_by=by))
    return row.source_id
