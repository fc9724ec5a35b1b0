"""Legal holds: a customer or a conversation exempt from retention purge and from erasure until lifted.

``customers.legal_hold`` mirrors whether a customer has an active hold (shown on the profile)."""
from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select, update

from ..clock import Clock
from ..db import Database
from ..errors import HubError, bad_request, not_found
from ..models import Conversation, Customer, LegalHold

holds_t = LegalHold.__table__
customers_t = Customer.__table__
conversations_t = Conversation.__table__
KINDS = ("customer", "conversation")


def hold_json(row: Any) -> dict[str, Any]:
    return {"id": row.id, "kind": row.target_kind, "target_id": row.target_id, "reason": row.reason,
            "placed_by": row.placed_by, "placed_at": row.placed_at, "lifted_by": row.lifted_by,
            "lifted_at": row.lifted_at, "active": row.lifted_at is None}


def _active() -> Any:
    return holds_t.c.lifted_at.is_(None)


async def place(db: Database, clock: Clock, kind: str, target_id: int, reason: str, by: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise bad_request("invalid_kind", "kind must be customer or conversation", "kind")
    if not reason.strip():
        raise bad_request("missing_reason", "a legal hold needs a reason (case number, request...)", "reason")
    target = customers_t if kind == "customer" else conversations_t
    async with db.write() as conn:
        if (await conn.execute(select(target.c.id).where(target.c.id == target_id))).first() is None:
            raise not_found("unknown_" + kind, f"no {kind} {target_id}")
        existing = (await conn.execute(select(holds_t).where(
            (holds_t.c.target_kind == kind) & (holds_t.c.target_id == target_id) & _active()))).first()
        if existing is not None:
            return hold_json(existing)
        res = await conn.execute(holds_t.insert().values(target_kind=kind, target_id=target_id,
                                                         reason=reason.strip()[:2000], placed_by=by[:64],
                                                         placed_at=clock.now()))
        if kind == "customer":
            await conn.execute(update(customers_t).where(customers_t.c.id == target_id).values(legal_hold=True))
        row = (await conn.execute(select(holds_t).where(holds_t.c.id == res.inserted_primary_key[0]))).first()
    return hold_json(row)


async def lift(db: Database, clock: Clock, hold_id: int, by: str) -> dict[str, Any]:
    async with db.write() as conn:
        row = (await conn.execute(select(holds_t).where(holds_t.c.id == hold_id))).first()
        if row is None:
            raise not_found("unknown_hold", f"no legal hold {hold_id}")
        if row.lifted_at is not None:
            raise HubError(409, "hold_lifted", "this legal hold was already lifted")
        await conn.execute(update(holds_t).where(holds_t.c.id == hold_id).values(lifted_at=clock.now(),
                                                                                  lifted_by=by[:64]))
        if row.target_kind == "customer":
            others = (await conn.execute(select(holds_t.c.id).where(
                (holds_t.c.target_kind == "customer") & (holds_t.c.target_id == row.target_id) & _active()))).first()
            if others is None:
                await conn.execute(update(customers_t).where(customers_t.c.id == row.target_id)
                                   .values(legal_hold=False))
        row = (await conn.execute(select(holds_t).where(holds_t.c.id == hold_id))).first()
    return hold_json(row)


async def list_holds(db: Database, active_only: bool = True) -> list[dict[str, Any]]:
    q = select(holds_t).order_by(holds_t.c.id.desc()).limit(1000)
    if active_only:
        q = q.where(_active())
    async with db.read() as conn:
        return [hold_json(r) for r in (await conn.execute(q)).all()]


def held_conversations_clause() -> Any:
    """SQL: conversation ids held directly or through their customer (for ``NOT IN`` in purges)."""
    direct = select(holds_t.c.target_id).where((holds_t.c.target_kind == "conversation") & _active())
    by_customer = select(conversations_t.c.id).where(conversations_t.c.customer_id.in_(held_customers_clause()))
    return direct.union(by_customer)


def held_customers_clause() -> Any:
    """SQL: customer ids held, and the customers held ones were merged into (their conversations
    and orders moved there; the hold names the customer they came from)."""
    held = select(holds_t.c.target_id.label("id")).where(
        (holds_t.c.target_kind == "customer") & _active()).cte("held_customers", recursive=True)
    held = held.union(select(customers_t.c.merged_into).where(
        (customers_t.c.id == held.c.id) & customers_t.c.merged_into.is_not(None)))
    return select(held.c.id)


async def holds_on(conn: Any, customer_ids: list[int], conversation_ids: list[int]) -> list[Any]:
    """Active holds on any of these customers or conversations."""
    if not customer_ids and not conversation_ids:
        return []
    return (await conn.execute(select(holds_t).where(_active()).where(or_(
        and_(holds_t.c.target_kind == "customer", holds_t.c.target_id.in_(customer_ids or [-1])),
        and_(holds_t.c.target_kind == "conversation", holds_t.c.target_id.in_(conversation_ids or [-1])))))).all()
