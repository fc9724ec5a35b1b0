"""Erasure on request (PIPL art. 47): a customer's messages, media, orders, tags, identities,
conversations, sessions and search index entries are deleted; an erasure record stays as proof.

What goes is found generically (``tables.discover``): every table with a ``customer_id``,
``conversation_id``, ``message_id``, ``session_id`` or ``order_row_id`` column that points at the
customer, customers merged into them, their conversations (also those of the same platform identity
not yet resolved to a customer), messages, sessions and orders. Messages go in bounded batches (one
short write transaction each, with a pause, so callbacks are not held up); the rest in one final
transaction. Identity values left in free text elsewhere (audit details, event payloads) are then
redacted table by table. The record keeps who asked, who did it, when, and a salted sha256 of each
identity, so ``GET /api/erasures?identity=kind:value`` can prove an identity was erased without
the hub keeping it. A later message from the same identity finds no conversation or identity and
starts a new customer.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update

from ..clock import Clock
from ..db import Database, retry_busy
from ..errors import HubError, bad_request, not_found
from ..models import (Conversation, Customer, CustomerTag, ErasureRecord, Identity, Message, PrivacyState,
                      ServiceSession, Tag)
from . import tables
from .holds import holds_on
from .retention import MEDIA_KINDS

customers_t = Customer.__table__
identities_t = Identity.__table__
conversations_t = Conversation.__table__
messages_t = Message.__table__
sessions_t = ServiceSession.__table__
records_t = ErasureRecord.__table__
state_t = PrivacyState.__table__
tags_t = Tag.__table__
ctags_t = CustomerTag.__table__
PEER_KINDS = ("openid", "external_userid")
REDACTED = "[erased]"
DELETE_ON_MENTION = {"agent_events": "payload"}  # a replay buffer: rows naming the person go whole
MIN_MENTION_LEN = 5  # an event-buffer row naming a value this long is the person's
MIN_REDACT_LEN = 8  # shorter values occur by chance in unrelated text (and "[erased]" must not lengthen a column)


@dataclass(frozen=True)
class ErasureRequest:
    customer_id: int
    requester: str  # who asked (free text: "the customer by phone, ticket #123")
    done_by: str  # the admin (username) or "cli:<name>"
    reason: str = ""


@dataclass
class Subject:
    customer_ids: list[int]
    identities: list[Any]
    conversation_ids: list[int]
    order_ids: list[int]


async def hub_salt(db: Database) -> str:
    """The per-hub salt of identity hashes (made once, kept in ``privacy_state``)."""
    async with db.read() as conn:
        value = (await conn.execute(select(state_t.c.value).where(state_t.c.name == "identity_salt"))).scalar()
    if value:
        return value
    async with db.write() as conn:
        value = (await conn.execute(select(state_t.c.value).where(state_t.c.name == "identity_salt"))).scalar()
        if not value:
            value = secrets.token_hex(16)
            await conn.execute(state_t.insert().values(name="identity_salt", value=value))
    return value


def identity_hash(salt: str, kind: str, value: str, account_id: str = "") -> str:
    return hashlib.sha256(f"{salt}|{kind}|{account_id}|{value}".encode()).hexdigest()


def normalized(kind: str, value: str, account_id: str = "") -> tuple[str, str, str]:
    """(kind, value, account) as identities are stored (phone digits only; brand-wide kinds no account)."""
    from ..customers.identity import Key
    key = Key(kind, value, account_id).norm()
    return key.kind, key.value, key.account_id


async def customer_for_identity(db: Database, kind: str, value: str, account_id: str | None = None) -> int:
    kind, value, _ = normalized(kind, value, account_id or "")
    q = select(identities_t.c.customer_id).where((identities_t.c.kind == kind) & (identities_t.c.value == value))
    if account_id is not None:
        q = q.where(identities_t.c.account_id == account_id)
    async with db.read() as conn:
        ids = sorted(set((await conn.execute(q)).scalars()))
    if not ids:
        raise not_found("unknown_identity", f"no customer has the identity {kind}:{value}")
    if len(ids) > 1:
        raise HubError(409, "ambiguous_identity", f"{kind}:{value} belongs to several customers ({ids}): "
                       "give the account or the customer id", "identity")
    return ids[0]


async def _subject(conn: Any, customer_id: int) -> Subject:
    ids = {customer_id}
    frontier = [customer_id]
    while frontier:  # customers merged into this one (their shells) are the same person
        found = set((await conn.execute(select(customers_t.c.id).where(
            customers_t.c.merged_into.in_(frontier)))).scalars()) - ids
        ids |= found
        frontier = list(found)
    idents = (await conn.execute(select(identities_t).where(identities_t.c.customer_id.in_(ids)))).all()
    convs = set((await conn.execute(select(conversations_t.c.id).where(
        conversations_t.c.customer_id.in_(ids)))).scalars())
    for ident in idents:
        if ident.kind in PEER_KINDS:  # a conversation of this identity not yet resolved to the customer
            convs |= set((await conn.execute(select(conversations_t.c.id).where(
                (conversations_t.c.peer_id == ident.value) & (conversations_t.c.account_id == ident.account_id)
                & conversations_t.c.customer_id.is_(None)))).scalars())
    from ..models.orders import OrderRow
    orders_t = OrderRow.__table__
    orders = list((await conn.execute(select(orders_t.c.id).where(orders_t.c.customer_id.in_(ids)))).scalars())
    return Subject(sorted(ids), list(idents), sorted(convs), orders)


async def _load(conn: Any, customer_id: int) -> tuple[Any, Subject, list[Any]]:
    """(customer row, subject, active holds); 404 unknown, 409 merged into another customer."""
    row = (await conn.execute(select(customers_t).where(customers_t.c.id == customer_id))).first()
    if row is None:
        raise not_found("unknown_customer", f"no customer {customer_id}")
    if row.merged_into is not None:
        raise HubError(409, "merged_customer", f"customer {customer_id} was merged into "
                       f"{row.merged_into}: erase that one", "customer_id")
    subject = await _subject(conn, customer_id)
    return row, subject, await holds_on(conn, subject.customer_ids, subject.conversation_ids)


async def _count(conn: Any, t: Any, clause: Any) -> int:
    return int((await conn.execute(select(func.count()).select_from(t).where(clause))).scalar() or 0)


async def preview(db: Database, customer_id: int) -> dict[str, Any]:
    """What erasing ``customer_id`` would remove (a dry run: nothing is written), for the confirm step:
    the customer, their identities (the admin sees them in clear), row counts, and active holds."""
    from ..models.orders import OrderRow
    async with db.read() as conn:
        row, subject, held = await _load(conn, customer_id)
        convs = subject.conversation_ids or [-1]
        counts = {
            "customers": len(subject.customer_ids), "identities": len(subject.identities),
            "conversations": len(subject.conversation_ids),
            "messages": await _count(conn, messages_t, messages_t.c.conversation_id.in_(convs)),
            "media_messages": await _count(conn, messages_t, messages_t.c.conversation_id.in_(convs)
                                           & messages_t.c.kind.in_(MEDIA_KINDS)),
            "service_sessions": await _count(conn, sessions_t, sessions_t.c.conversation_id.in_(convs)),
            "orders": len(subject.order_ids),
        }
        if subject.order_ids:
            orders_t = OrderRow.__table__
            counts["orders"] = await _count(conn, orders_t, orders_t.c.id.in_(subject.order_ids))
    return {"customer_id": customer_id, "name": getattr(row, "name", "") or "", "dry_run": True,
            "merged_customers": [c for c in subject.customer_ids if c != customer_id],
            "identities": [{"kind": i.kind, "value": i.value, "account_id": i.account_id} for i in subject.identities],
            "counts": counts,
            "holds": [{"id": h.id, "kind": h.target_kind, "target_id": h.target_id, "reason": h.reason} for h in held]}


async def erase_customer(db: Database, clock: Clock, req: ErasureRequest, *, pause: float = 0.005,
                         batch: int = tables.BATCH) -> dict[str, Any]:
    """Erase ``req.customer_id`` (409 under a legal hold); returns the erasure record."""
    if not req.requester.strip():
        raise bad_request("missing_requester", "say who asked for the erasure", "requester")
    async with db.read() as conn:
        _, subject, held = await _load(conn, req.customer_id)
        refs = await tables.discover(conn)
    if held:
        raise HubError(409, "legal_hold", f"under legal hold (hold {held[0].id}: {held[0].reason}); "
                       "lift it first", "customer_id")
    salt = await hub_salt(db)
    hashes = sorted({identity_hash(salt, i.kind, i.value, i.account_id) for i in subject.identities})
    values = sorted({i.value for i in subject.identities if i.value})
    started = clock.now()

    async def open_record() -> int:
        async with db.write() as conn:
            res = await conn.execute(records_t.insert().values(
                erased_customer=req.customer_id, requester=req.requester.strip()[:2000], reason=req.reason[:2000],
                done_by=req.done_by[:64], started_at=started, identity_hashes=json.dumps(hashes), counts="{}"))
            return res.inserted_primary_key[0]

    record_id = await retry_busy(open_record)
    counts: dict[str, int] = {}
    await _delete_messages_in_batches(db, refs, subject.conversation_ids, counts, pause, batch)

    async def final() -> None:
        part: dict[str, int] = {}
        async with db.write(durable=True) as conn:
            rest = list((await conn.execute(select(messages_t.c.id).where(
                messages_t.c.conversation_id.in_(subject.conversation_ids or [-1])))).scalars())
            await tables.delete_messages(conn, refs, rest, part)
            session_ids = list((await conn.execute(select(sessions_t.c.id).where(
                sessions_t.c.conversation_id.in_(subject.conversation_ids or [-1])))).scalars())
            await tables.delete_subject(conn, refs, "sessions", "service_sessions", session_ids, part)
            await tables.delete_subject(conn, refs, "orders", "orders", subject.order_ids, part)
            await tables.delete_subject(conn, refs, "conversations", "conversations", subject.conversation_ids, part)
            await tables.delete_subject(conn, refs, "customers", "customers", subject.customer_ids, part)
        for k, v in part.items():
            counts[k] = counts.get(k, 0) + v

    await retry_busy(final)
    if db.is_sqlite:
        await retry_busy(lambda: _rewind_search_cursor(db))
    for name, n in (await _redact(db, refs, values)).items():
        counts[name] = counts.get(name, 0) + n

    async def close_record() -> None:
        async with db.write(durable=True) as conn:
            await conn.execute(update(records_t).where(records_t.c.id == record_id).values(
                finished_at=clock.now(), counts=json.dumps(counts, sort_keys=True)))

    await retry_busy(close_record)
    async with db.read() as conn:
        return record_json((await conn.execute(select(records_t).where(records_t.c.id == record_id))).first())


async def _rewind_search_cursor(db: Database) -> None:
    """SQLite hands the ids of the newest rows out again once they are deleted: the search indexer,
    which reads ``id > cursor``, would never see the messages that reuse them. Its cursor goes back
    to the newest message left (the indexer notices the change and reads from there)."""
    from ..archive.search.indexer import CURSOR
    from ..models import SearchCursor
    cursors = SearchCursor.__table__
    async with db.write() as conn:
        newest = (await conn.execute(select(func.max(messages_t.c.id)))).scalar() or 0
        await conn.execute(update(cursors).where(cursors.c.name == CURSOR).where(cursors.c.last_id > newest)
                           .values(last_id=newest))


async def _delete_messages_in_batches(db: Database, refs: tables.References, conv_ids: list[int],
                                      counts: dict[str, int], pause: float, batch: int) -> None:
    if not conv_ids:
        return
    last = 0
    while True:
        async def one() -> int:
            nonlocal last
            async with db.write() as conn:
                ids = list((await conn.execute(select(messages_t.c.id).where(
                    messages_t.c.conversation_id.in_(conv_ids) & (messages_t.c.id > last))
                    .order_by(messages_t.c.id).limit(batch))).scalars())
                await tables.delete_messages(conn, refs, ids, counts)
            if ids:
                last = ids[-1]
            return len(ids)

        if await retry_busy(one) < batch:
            return
        await asyncio.sleep(pause)


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def _redact(db: Database, refs: tables.References, values: list[str]) -> dict[str, int]:
    """Identity values still named in free text anywhere: redacted (event buffers: rows deleted).
    One table per transaction; the archive itself (``messages``) was handled by conversation."""
    from sqlalchemy import column, delete, or_, table
    counts: dict[str, int] = {}
    mentioned = [v for v in values if len(v) >= MIN_MENTION_LEN]
    values = [v for v in values if len(v) >= MIN_REDACT_LEN]
    if not mentioned:
        return counts
    if "tags" in refs.text_columns and values:
        # a tag named after the person (their phone as a manual tag) goes with its links: its name is
        # unique, and rewritten it collided with the "[erased]" tag of an erasure before (a 500 half-way)
        async with db.write() as conn:
            named = select(tags_t.c.id).where(or_(*[tags_t.c.name.like(_like(v), escape="\\") for v in values]))
            ids = [r.id for r in (await conn.execute(named)).all()]
            if ids:
                await conn.execute(delete(ctags_t).where(ctags_t.c.tag_id.in_(ids)))
                await conn.execute(delete(tags_t).where(tags_t.c.id.in_(ids)))
                counts["tags (deleted)"] = len(ids)
    for name, cols in sorted(refs.text_columns.items()):
        if name in ("messages", "erasure_records", "tags") or name.startswith("sqlite_"):
            continue
        t = table(name, *[column(c) for c in cols])
        async with db.write() as conn:
            if name in DELETE_ON_MENTION:
                col = t.c[DELETE_ON_MENTION[name]]
                res = await conn.execute(delete(t).where(or_(*[col.like(_like(v), escape="\\") for v in mentioned])))
                n = max(res.rowcount or 0, 0)
            else:
                n = 0
                for c in cols:
                    for v in values:
                        res = await conn.execute(update(t).where(t.c[c].like(_like(v), escape="\\"))
                                                 .values({c: func.replace(t.c[c], v, REDACTED)}))
                        n += max(res.rowcount or 0, 0)
        if n:
            counts[f"{name} (redacted)"] = n
    return counts


def record_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "erased_customer": row.erased_customer, "requester": row.requester, "reason": row.reason,
            "done_by": row.done_by, "started_at": row.started_at, "finished_at": row.finished_at,
            "identity_hashes": json.loads(row.identity_hashes or "[]"), "counts": json.loads(row.counts or "{}")}


async def list_records(db: Database, identity: tuple[str, str, str] | None = None) -> list[dict[str, Any]]:
    """Erasure records, newest first; with ``identity`` (kind, value, account) only those that erased it."""
    q = select(records_t).order_by(records_t.c.id.desc()).limit(1000)
    h = None
    if identity is not None:  # looked for among all records, not only the newest 1000
        kind, value, account = normalized(*identity)
        h = identity_hash(await hub_salt(db), kind, value, account)
        q = q.where(records_t.c.identity_hashes.like(f'%"{h}"%'))
    async with db.read() as conn:
        rows = (await conn.execute(q)).all()
    out = [record_json(r) for r in rows]
    return out if h is None else [r for r in out if h in r["identity_hashes"]]
