"""The pipeline step of channel codes (runs after identify, right before the bots).

A scan/add event naming a code (OA subscribe/SCAN scene, WeCom add_external_contact State, 微信客服
enter_session scene_param): tag the customer (source "channel"), mark the conversation with the code
(``conversations.channel_code`` = the code id as a string), count what the event means and the
conversation's first attribution (exactly once per event message / per code and conversation), and
leave ``ctx.state["channel_code"]`` / ``["routing"]`` / ``["channel_code_view"]`` for the later steps (the bots'
welcome reads the code's welcome text through ``welcome_provider``).
A later customer message in a conversation with a channel code gets that code's routing (group,
advisor) in ``ctx.state["routing"]``, so the routing step opens its session in the channel's group.

What counts: an OA ``subscribe`` through the code is a scan and an add (a new follower), an OA ``SCAN`` a
scan only (already a follower), a WeCom add_external_contact an add (the scan happened in WeChat, out of
sight), a 微信客服 enter_session a scan every time and an add only when it is the conversation's first
through the code (a customer opening the link three times is one new customer). The kind counted is
stored on the event's ``channel_hits`` row ("scan", "add" or "scan+add") in the same transaction as
the counters, so a job run again, or by a second process, counts nothing more.
"""
from __future__ import annotations

import logging
from typing import Any
from urllib.parse import unquote

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from ..customers.service import CustomerService
from ..customers.tags import add_tags
from ..db import Database, retry_busy
from ..models import Conversation
from ..models.channels import ChannelAttribution, ChannelHit, ChannelStat
from ..pipeline import JobContext
from .rules import day_of
from .service import ChannelService, CodeView

log = logging.getLogger(__name__)
conv_t = Conversation.__table__
hits_t = ChannelHit.__table__
attr_t = ChannelAttribution.__table__
stats_t = ChannelStat.__table__
CONV_TTL = 10.0  # seconds a conversation's channel code is trusted from memory


# what an event through a code counts: "enter" (微信客服) is a scan, and an add when the attribution is new
FOLLOW, SCAN, ADD, ENTER = "scan+add", "scan", "add", "enter"


async def code_for_event(channels: ChannelService, msg: Any, data: dict[str, Any]) -> tuple[CodeView, str] | None:
    """(code, what it counts: FOLLOW | SCAN | ADD | ENTER) when the event came through an enabled
    channel code of its account."""
    kind = msg.kind
    if kind in ("event.subscribe", "event.scan") and msg.channel == "oa":
        code = await channels.match(msg.account_id, "scene", data.get("scene", ""))
        return (code, FOLLOW if kind == "event.subscribe" else SCAN) if code and code.platform == "oa" else None
    if kind == "event.external_contact" and data.get("change_type") == "add_external_contact":
        code = await channels.match(msg.account_id, "state", data.get("state", ""))
        return (code, ADD) if code and code.platform == "wecom" else None
    if kind == "event.kf.enter_session":
        param = data.get("scene_param", "")
        code = await channels.match(msg.account_id, "scene_param", param) or \
            await channels.match(msg.account_id, "scene_param", unquote(param))
        return (code, ENTER) if code and code.platform == "kf" else None
    return None


class ChannelStep:
    def __init__(self, db: Database, channels: ChannelService, customers: CustomerService):
        self.db = db
        self.clock = channels.clock
        self.channels = channels
        self.customers = customers
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        # conversation -> (channel_code, read at): later messages skip the read for a few seconds; another
        # process's attribution shows up within CONV_TTL
        self._conv_code: dict[int, tuple[str | None, float]] = {}

    async def step(self, ctx: JobContext) -> None:
        msg = ctx.message
        if msg.direction != "in":
            return
        found = await code_for_event(self.channels, msg, ctx.data) if msg.kind.startswith("event.") else None
        if found is not None:
            await self._apply(ctx, *found)
        elif msg.sender == "customer":
            await self._route_by_conversation(ctx)

    async def welcome(self, ctx: JobContext) -> str | None:
        """``Bots.welcome_provider``: the welcome text of the code the event came through, if it has one."""
        code = ctx.state.get("channel_code_view")
        if code is None:
            found = await code_for_event(self.channels, ctx.message, ctx.data)
            code = found[0] if found else None
        return (code.welcome_text or None) if code is not None else None

    async def _apply(self, ctx: JobContext, code: CodeView, hit: str) -> None:
        msg = ctx.message
        customer_id = ctx.state.get("customer_id")
        at = float(msg.created_at or self.clock.now())
        day = day_of(at)
        now = self.clock.now()

        async def write() -> list[str]:
            async with self.db.write() as conn:
                added = []
                if customer_id is not None and code.tags:
                    added = await add_tags(conn, now, customer_id, code.tags, "channel", f"channel:{code.id}")
                await conn.execute(update(conv_t).where(conv_t.c.id == msg.conversation_id)
                                   .values(channel_code=str(code.id)))
                # the attribution first: whether it is new decides what a 微信客服 entry counts. Both
                # inserts wait for a concurrent transaction holding the same key and then do nothing,
                # so a run again (or in a second process) finds both rows and counts nothing
                new_conv = (await conn.execute(
                    self._insert(attr_t).values(code_id=code.id, conversation_id=msg.conversation_id, day=day, at=at)
                    .on_conflict_do_nothing(index_elements=["code_id", "conversation_id"])
                    .returning(attr_t.c.id))).first()
                kind = (FOLLOW if new_conv is not None else SCAN) if hit == ENTER else hit
                new_hit = (await conn.execute(
                    self._insert(hits_t).values(message_id=msg.id, code_id=code.id, kind=kind, day=day, at=at)
                    .on_conflict_do_nothing(index_elements=["message_id"]).returning(hits_t.c.message_id))).first()
                kinds = kind.split("+") if new_hit is not None else []
                counts = {"scans": int("scan" in kinds), "adds": int("add" in kinds),
                          "conversations": int(new_conv is not None)}
                if any(counts.values()):
                    stmt = self._insert(stats_t).values(code_id=code.id, day=day, **counts)
                    await conn.execute(stmt.on_conflict_do_update(
                        index_elements=["code_id", "day"],
                        set_={k: stats_t.c[k] + v for k, v in counts.items()}))
                return added

        for attempt in range(3):
            try:
                added = await retry_busy(write)
                break
            except IntegrityError:  # a concurrent scan created the same new tag first: it exists now
                if attempt == 2:
                    raise
        if added:
            await self.customers.tags_changed(customer_id)
        self._remember(msg.conversation_id, str(code.id))
        ctx.state["channel_code_view"] = code
        ctx.state["channel_code"] = str(code.id)
        self._routing(ctx, code)

    async def _route_by_conversation(self, ctx: JobContext) -> None:
        conv_id = ctx.message.conversation_id
        cached = self._conv_code.get(conv_id)
        if cached is not None and self.clock.now() - cached[1] <= CONV_TTL:
            value = cached[0]
        else:
            async with self.db.read() as conn:
                value = (await conn.execute(select(conv_t.c.channel_code).where(conv_t.c.id == conv_id))).scalar()
            self._remember(conv_id, value)
        if not value:
            return
        ctx.state.setdefault("channel_code", value)
        code = await self.channels.by_id(int(value)) if value.isascii() and value.isdigit() else None
        if code is not None and code.enabled:
            self._routing(ctx, code)

    def _remember(self, conv_id: int, value: str | None) -> None:
        if len(self._conv_code) > 100_000:
            self._conv_code.clear()
        self._conv_code[conv_id] = (value, self.clock.now())

    @staticmethod
    def _routing(ctx: JobContext, code: CodeView) -> None:
        """The code's group and advisor win; the other keys earlier steps set (tags, vip_level) stay."""
        routing = ctx.state.setdefault("routing", {})
        routing.setdefault("channel_code", str(code.id))
        if code.route_group:
            routing["group"] = code.route_group
        if code.route_agent_id:
            routing["advisor_id"] = code.route_agent_id
