"""Customer actions: identify the customer behind a message, the profile beside a session, manual
and rule tags (pushed live to the agents who have the customer open), merges, segments."""
from __future__ import annotations

import json
import logging
from typing import Any, Awaitable, Callable

from sqlalchemy import and_, func, select, update

from ..clock import Clock
from ..db import Database, retry_conflicts
from ..errors import HubError, bad_request, not_found
from ..models import Conversation, Customer, CustomerTag, Identity, Merge, ServiceSession, Tag
from ..models.base import fixed
from ..pipeline import JobContext
from ..push import Push
from ..settings import Settings
from . import identity as ident
from .tags import add_tags, drop_stale, keyword_tags, remove_tag, tags_of

log = logging.getLogger(__name__)
PROFILE_RETRY = 60.0  # seconds before a failed first-contact profile fetch is tried again (doubling, to an hour)
conv_t = Conversation.__table__
customers = Customer.__table__
identities = Identity.__table__
sessions_t = ServiceSession.__table__

# (customer_id, limit) -> recent orders as JSON; the order sync module registers it
OrdersProvider = Callable[[Any, int, int], Awaitable[list[dict[str, Any]]]]
# (account, peer_id) -> {"unionid": ..., "name": ...} from the platform, best effort
ProfileFetcher = Callable[[str, str, str], Awaitable[dict[str, str]]]


async def _held(conn: Any, customer_id: int, own: bool) -> bool:
    """Whether a legal hold covers the customer: their own, or one on a customer merged into them
    (hub/privacy/holds.py: the hold follows the conversations and orders into the merge)."""
    seen, frontier = {customer_id}, [customer_id]
    while frontier and not own:
        rows = (await conn.execute(select(customers.c.id, customers.c.legal_hold).where(
            customers.c.merged_into.in_(frontier)))).all()
        own = any(r.legal_hold for r in rows)
        frontier = [r.id for r in rows if r.id not in seen]
        seen.update(frontier)
    return own


class CustomerService:
    def __init__(self, db: Database, clock: Clock, push: Push, settings: Settings):
        self.db = db
        self.clock = clock
        self.push = push
        self.settings = settings
        self.orders: OrdersProvider | None = None
        self.fetch_profile: ProfileFetcher | None = None
        self._conv_customer: dict[int, int] = {}  # conversation -> customer (cleared on merges)
        self._touched: dict[int, float] = {}  # customer -> last contact written
        self._tagged: set[tuple[int, str]] = set()  # (customer, keyword tag) known to be on the customer
        # conversation -> (when to try again, the pause after that): its first contact's profile fetch failed
        self._profile_retry: dict[int, tuple[float, float]] = {}
        # set by the config bus: after a merge or its undo, every process drops the caches naming customers
        self.announce_merges: Callable[[], Awaitable[None]] | None = None

    # -- pipeline step --------------------------------------------------------------------------
    async def identify_step(self, ctx: JobContext) -> None:
        """Link the conversation to its customer (first contact resolves the identity), keep
        last contact current, apply keyword tags from the customer's words."""
        msg = ctx.message
        if not msg.peer_id or msg.direction != "in":
            return
        customer_id = self._conv_customer.get(msg.conversation_id)
        if customer_id is None:
            async with self.db.read() as conn:
                customer_id = (await conn.execute(select(conv_t.c.customer_id).where(
                    conv_t.c.id == msg.conversation_id))).scalar()
        now = self.clock.now()
        is_customer = msg.sender == "customer"
        # the customer's words matched against the keyword-tag rules once per message
        matched = keyword_tags(msg.text or "", await self.settings.get("keyword_tags")) if is_customer else []
        added: list[str] = []
        if customer_id is None:
            extra: list[ident.Key] = []
            name = ""
            if self.fetch_profile is not None:
                try:
                    info = await self.fetch_profile(msg.account_id, msg.channel, msg.peer_id)
                except Exception as exc:  # noqa: BLE001 - a profile is a bonus, the message is not
                    log.info("profile fetch for %s failed: %s", msg.peer_id, exc)
                    info = {}
                    self._profile_retry[msg.conversation_id] = (now + PROFILE_RETRY, PROFILE_RETRY)
                if info.get("unionid"):
                    extra.append(ident.Key("unionid", info["unionid"]))
                name = info.get("name", "")
            primary = ident.Key(ident.PEER_KIND.get(msg.channel, "custom"), msg.peer_id, msg.account_id)
            merged: list[int] = []

            async def write() -> tuple[int, list[str]]:
                """First contact: the identity, the link, the last contact and the keyword tags in one
                transaction."""
                merged.clear()  # (a retry starts over)
                async with self.db.write() as conn:
                    cid = await ident.resolve(conn, now, primary, extra, name, merged)
                    await conn.execute(update(conv_t).where(conv_t.c.id == msg.conversation_id)
                                       .values(customer_id=cid))
                    if not is_customer:
                        return cid, []
                    await conn.execute(update(customers).where(customers.c.id == cid).values(last_contact_at=now))
                    return cid, (await add_tags(conn, now, cid, matched, "keyword", "bot") if matched else [])

            # another conversation of the same person (same unionid) resolved at the same moment
            # (PostgreSQL runs them in parallel): resolved again, it now finds them
            customer_id, added = await retry_conflicts(write)
            if merged:  # the person's other conversations moved to this customer: cached, they named the old one
                await self.merges_changed()
            if is_customer:
                self._touched[customer_id] = now
                self._tagged.update((customer_id, w) for w in matched)
        elif msg.conversation_id in self._profile_retry and now >= self._profile_retry[msg.conversation_id][0]:
            customer_id = await self._profile_again(msg, customer_id, now)
        if len(self._conv_customer) > 100_000:
            self._conv_customer.clear()
        self._conv_customer[msg.conversation_id] = customer_id
        ctx.state["customer_id"] = customer_id
        if not is_customer:
            return
        words = [w for w in matched if (customer_id, w) not in self._tagged]
        stale = now - self._touched.get(customer_id, float("-inf")) > 60  # last contact to the minute
        if not words and not stale:
            if added:
                await self.tags_changed(customer_id)
            return

        async def touch() -> tuple[int, list[str]]:
            async with self.db.write() as conn:
                # merged into another since this process cached it (a merge in another process): that one
                live = await ident.live_customer(conn, customer_id)
                await conn.execute(update(customers).where(customers.c.id == live).values(last_contact_at=now))
                return live, (await add_tags(conn, now, live, words, "keyword", "bot") if words else [])

        self._touched[customer_id] = now
        live, added = await retry_conflicts(touch)  # (a new tag created by a parallel job at the same moment)
        if live != customer_id:  # the tags and last contact went to the merged-away customer
            self.forget_conversations()
            customer_id = self._conv_customer[msg.conversation_id] = ctx.state["customer_id"] = live
            self._touched[customer_id] = now
        if len(self._tagged) > 200_000:
            self._tagged.clear()
        self._tagged.update((customer_id, w) for w in words)  # has it now (added, or had it before)
        if added:
            await self.tags_changed(customer_id)

    async def _profile_again(self, msg: Any, customer_id: int, now: float) -> int:
        """The profile (its unionid) once more, for a conversation whose first fetch failed: without it
        the person's Official Account and WeCom conversations stayed two customers for good. Tried at
        the customer's next message, the pause doubling up to an hour while it fails."""
        _when, pause = self._profile_retry[msg.conversation_id]
        try:
            info = await self.fetch_profile(msg.account_id, msg.channel, msg.peer_id)
        except Exception as exc:  # noqa: BLE001 - again at a later message
            pause = min(3600.0, pause * 2)
            self._profile_retry[msg.conversation_id] = (now + pause, pause)
            log.info("profile fetch for %s failed again: %s", msg.peer_id, exc)
            return customer_id
        del self._profile_retry[msg.conversation_id]
        if not info.get("unionid"):
            return customer_id
        primary = ident.Key(ident.PEER_KIND.get(msg.channel, "custom"), msg.peer_id, msg.account_id)
        merged: list[int] = []

        async def write() -> int:
            merged.clear()
            async with self.db.write() as conn:
                cid = await ident.resolve(conn, now, primary, [ident.Key("unionid", info["unionid"])],
                                          info.get("name", ""), merged)
                await conn.execute(update(conv_t).where(conv_t.c.id == msg.conversation_id).values(customer_id=cid))
                return cid

        customer_id = await retry_conflicts(write)
        if merged:
            await self.merges_changed()
        return customer_id

    async def routing_context(self, customer_id: int | None) -> dict[str, Any]:
        """What routing rules look at about a customer: VIP level and tags."""
        if customer_id is None:
            return {}
        async with self.db.read() as conn:
            customer_id = await ident.live_customer(conn, customer_id)  # (merged in another process since)
            row = (await conn.execute(select(customers.c.vip_level).where(customers.c.id == customer_id))).first()
            tags = frozenset(t["name"] for t in await tags_of(conn, customer_id))
        return {"vip_level": row.vip_level if row else 0, "tags": tags}

    def forget_conversations(self) -> None:
        """After merges (or erasures) move conversations between customers."""
        self._conv_customer.clear()
        self._tagged.clear()

    async def merges_changed(self) -> None:
        """After a merge or its undo committed: this process's caches go, and every other process's (the
        config bus); their jobs wrote tags and last contact to the merged-away customer, and after an undo
        to the customer the conversations had left."""
        self.forget_conversations()
        if self.announce_merges is not None:
            await self.announce_merges()

    # -- profile beside a session ---------------------------------------------------------------
    async def profile(self, conv: Any) -> dict[str, Any]:
        if conv.customer_id is None:
            from ..service.views import basic_profile
            return await basic_profile(conv)
        return await self.get(conv.customer_id)

    async def get(self, customer_id: int, orders: int = 5) -> dict[str, Any]:
        async with self.db.read() as conn:
            customer_id = await ident.live_customer(conn, customer_id)
            row = (await conn.execute(select(customers).where(customers.c.id == customer_id))).first()
            if row is None:
                raise not_found("unknown_customer", f"no customer {customer_id}")
            ids = (await conn.execute(select(identities).where(identities.c.customer_id == customer_id)
                                      .order_by(identities.c.id))).all()
            tags = await tags_of(conn, customer_id)
            held = await _held(conn, customer_id, bool(row.legal_hold))
        recent = await self.orders(self.db, customer_id, orders) if self.orders else []
        return {"customer_id": row.id, "name": row.name or (ids[0].value if ids else ""), "vip_level": row.vip_level,
                "paid_total_fen": row.paid_total_fen, "order_count": row.order_count, "created_at": row.created_at,
                "last_contact_at": row.last_contact_at,
                "identities": [{"kind": i.kind, "value": i.value, "account_id": i.account_id, "verified": i.verified}
                               for i in ids],
                "tags": tags, "orders": recent, "legal_hold": held}

    # -- tags -----------------------------------------------------------------------------------
    async def tag(self, by: str, customer_id: int, add: list[str] | None = None, remove: list[str] | None = None,
                  source: str = "manual") -> list[dict[str, Any]]:
        add, remove = add or [], remove or []
        if not isinstance(add, list) or not isinstance(remove, list):
            raise bad_request("invalid_tags", "add and remove must be lists", "add")
        async with self.db.write() as conn:
            if not (await conn.execute(select(customers.c.id).where(customers.c.id == customer_id))).first():
                raise not_found("unknown_customer", f"no customer {customer_id}")
            # a customer merged into another: its tags are the one it was merged into (as its profile)
            customer_id = await ident.live_customer(conn, customer_id)
            now = self.clock.now()
            await add_tags(conn, now, customer_id, add, source, by)
            for name in remove:
                await remove_tag(conn, now, customer_id, name, by)
            tags = await tags_of(conn, customer_id)
        await self.tags_changed(customer_id, tags)
        return tags

    async def profile_changed(self, *customer_ids: int) -> None:
        """Push the whole profile (masked, as agents see it) to every agent holding an open session of
        these customers: after a merge or its undo, the side panel showed the customer as before
        (no orders, the old tags) until a reload."""
        from ..privacy.views import mask_profile
        async with self.db.read() as conn:
            rows = (await conn.execute(select(sessions_t.c.id, sessions_t.c.agent_id, conv_t.c.customer_id).join(
                conv_t, conv_t.c.id == sessions_t.c.conversation_id).where(
                conv_t.c.customer_id.in_(customer_ids) & sessions_t.c.state.in_(fixed("assigned", "active"))))).all()
        profiles: dict[int, dict[str, Any]] = {}
        for r in rows:
            if r.agent_id:
                if r.customer_id not in profiles:
                    profiles[r.customer_id] = mask_profile(None, await self.get(r.customer_id))
                await self.push.to_user(r.agent_id, "customer.updated",
                                        {"session_id": r.id, "customer": profiles[r.customer_id]})

    async def tags_changed(self, customer_id: int, tags: list[dict[str, Any]] | None = None) -> None:
        """Push the customer's tags to every agent holding one of their open sessions."""
        async with self.db.read() as conn:
            if tags is None:
                tags = await tags_of(conn, customer_id)
            rows = (await conn.execute(select(sessions_t.c.id, sessions_t.c.agent_id).join(
                conv_t, conv_t.c.id == sessions_t.c.conversation_id).where(
                (conv_t.c.customer_id == customer_id) & sessions_t.c.state.in_(fixed("assigned", "active"))))).all()
        for r in rows:
            if r.agent_id:
                await self.push.to_user(r.agent_id, "customer.tags",
                                        {"session_id": r.id, "customer_id": customer_id, "tags": tags})

    async def apply_order_rules(self, customer_id: int, orders: list[dict[str, Any]]) -> None:
        """Rule tags from purchases: VIP over the spend threshold in 365 days, 复购 on a second
        order, a category tag per product category. ``orders``: {paid_fen, status, created_at, categories}
        and spend_fen, what the order counts toward spend when it differs from paid_fen (partial refunds,
        ``hub.orders.store.rule_inputs``)."""
        now = self.clock.now()
        year = [o for o in orders if o["created_at"] >= now - 365 * 86400
                and o["status"] not in ("pending_payment", "closed", "refunded")]
        paid = sum(o.get("spend_fen", o["paid_fen"]) for o in year)  # spend_fen: partial refunds taken off
        counted = [o for o in orders if o["status"] not in ("pending_payment", "closed")]
        threshold = int(await self.settings.get("vip_threshold_fen") or 0)
        names: list[str] = []
        vip = 1 if threshold and paid >= threshold else 0
        if vip:
            names.append("VIP")
        if len(counted) >= 2:
            names.append("复购")
        names += sorted({c for o in counted for c in o.get("categories", []) if c})
        async with self.db.write() as conn:
            await conn.execute(update(customers).where(customers.c.id == customer_id).values(
                paid_total_fen=paid, order_count=len(counted), vip_level=vip))
            added = await add_tags(conn, now, customer_id, names, "rule", "rules") if names else []
            dropped = await drop_stale(conn, {customer_id: set(names)}, "rule", "rules")
        if added or dropped:
            await self.tags_changed(customer_id)

    # -- merges ---------------------------------------------------------------------------------
    async def merge(self, by: str, source: int, target: int, why: str) -> dict[str, Any]:
        if not why or not isinstance(why, str):
            raise bad_request("invalid_why", "say why these are the same person", "why")
        if source == target:
            raise bad_request("same_customer", "cannot merge a customer into itself", "target")
        async with self.db.write() as conn:
            for cid in (source, target):
                row = (await conn.execute(select(customers.c.merged_into).where(customers.c.id == cid))).first()
                if row is None:
                    raise not_found("unknown_customer", f"no customer {cid}")
                if row.merged_into:
                    raise HubError(409, "already_merged", f"customer {cid} was merged into {row.merged_into}")
            await ident.merge(conn, self.clock.now(), source=source, target=target, by=by, why=why)
            merge_id = (await conn.execute(select(func.max(Merge.__table__.c.id)))).scalar()
        await self.merges_changed()
        await self._recount_orders(target)
        await self.profile_changed(target)
        return {"merge_id": merge_id, "customer": await self.get(target)}

    async def unmerge(self, by: str, merge_id: int) -> dict[str, Any]:
        async with self.db.write() as conn:
            try:
                target = (await conn.execute(select(Merge.__table__.c.target_id).where(
                    Merge.__table__.c.id == merge_id))).scalar()
                source = await ident.unmerge(conn, self.clock.now(), merge_id, by)
            except LookupError as exc:
                raise not_found("unknown_merge", str(exc)) from None
        await self.merges_changed()
        await self._recount_orders(source, target)
        await self.profile_changed(source, target)
        return {"customer": await self.get(source)}

    async def _recount_orders(self, *customer_ids: int) -> None:
        """Spend, order count and VIP level again from the orders each customer now has (a merge
        or its undo moved orders between them)."""
        from ..orders.store import rule_inputs  # orders builds on customers, not the other way

        for customer_id in customer_ids:
            async with self.db.read() as conn:
                inputs = await rule_inputs(conn, customer_id)
            await self.apply_order_rules(customer_id, inputs)

    # -- segments -------------------------------------------------------------------------------
    async def segment(self, tags: list[str] | None = None, min_spend_fen: int | None = None,
                      contacted_since: float | None = None, limit: int = 1000, after_id: int = 0) -> list[dict[str, Any]]:
        q = select(customers).where(customers.c.merged_into.is_(None)).where(customers.c.id > after_id)
        if min_spend_fen is not None:
            q = q.where(customers.c.paid_total_fen >= min_spend_fen)
        if contacted_since is not None:
            q = q.where(customers.c.last_contact_at >= contacted_since)
        ct, tg = CustomerTag.__table__, Tag.__table__
        for name in tags or []:
            q = q.where(customers.c.id.in_(select(ct.c.customer_id).join(tg, tg.c.id == ct.c.tag_id)
                                           .where(tg.c.name == name)))
        async with self.db.read() as conn:
            rows = (await conn.execute(q.order_by(customers.c.id).limit(limit))).all()
            out = []
            for r in rows:
                out.append({"customer_id": r.id, "name": r.name, "vip_level": r.vip_level,
                            "paid_total_fen": r.paid_total_fen, "order_count": r.order_count,
                            "last_contact_at": r.last_contact_at,
                            "tags": [t["name"] for t in await tags_of(conn, r.id)]})
        return out


__all__ = ["CustomerService", "and_", "json"]
