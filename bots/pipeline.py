"""The bot step of the inbound pipeline (runs after the archive step, before routing).

For a customer's text with no human session open, in order: handover words -> hand to routing;
keyword rules -> reply (if the channel takes its text as one message); FAQ with a confident score ->
reply (if the channel takes the answer as one message); FAQ suggestions between the thresholds (or a
confident answer too long for the channel) -> hand to routing with the suggestions for the agent;
otherwise hand to routing.
Outside business hours the customer gets the off-hours reply (once per closed period) and the
session waits in the queue for the morning. Welcome events get their channel's welcome, once (an Official
Account scan of a channel code: that code's welcome, once a day).
Every reply goes out through the outbound queue as sender "bot"; every decision is recorded.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from sqlalchemy.dialects import postgresql, sqlite

from hub.business_hours import from_json as hours_from_json, is_open, next_open
from hub.channels.rules import day_of
from hub.clock import Clock
from hub.db import Database, retry_busy
from hub.knowledge.store import KnowledgeBase
from hub.models import BotOutcome
from hub.outbound.queue import TEXT_BYTES, Outbound, OutboundRequest, media_problem
from hub.pipeline import JobContext
from hub.service.step import CUSTOMER_KINDS
from hub.settings import Settings

from .keywords import core, first_match, fold
from .store import KeywordRules

log = logging.getLogger(__name__)
outcomes_t = BotOutcome.__table__

WELCOME_KINDS = {"event.subscribe", "event.scan", "event.external_contact", "event.kf.enter_session"}
# channel -> welcome text override (the channel-code feature plugs in here): (ctx) -> text or None
WelcomeProvider = Callable[[JobContext], Awaitable[str | None]]


def normalized_question(text: str) -> str:
    return "".join(ch for ch in fold(text) if ch.isalnum())[:200]


def fits(channel: str, text: str) -> bool:
    """Whether the channel takes ``text`` as one message (``TEXT_BYTES``: Official Account and 微信客服
    2,048 UTF-8 bytes, WeCom 4,000): a longer FAQ answer or keyword reply would be refused by the
    platform for good after being queued, the customer left with nothing, so an agent gets it as a
    suggestion instead (a keyword rule's: as if the rule had not matched)."""
    limit = TEXT_BYTES.get(channel)
    return limit is None or len(text.encode("utf-8", "replace")) <= limit


def sendable(channel: str, reply: dict[str, Any]) -> bool:
    """Whether a keyword rule's reply can go on the channel: its text fits, its image or link has what
    that platform needs (``media_problem``: an Official Account or 微信客服 image is sent by media_id)."""
    kind = reply.get("type", "text")
    if kind == "text":
        return fits(channel, reply.get("text") or "")
    return media_problem(channel, kind, reply) is None


def contains_handover(text: str, words: list[str]) -> bool:
    """The customer asks for a person: the message holds a handover word ("能帮我转人工吗", "转 人 工").
    A word of two characters or fewer (人工, 真人) counts only as the whole message: contained, it was
    in product questions ("产品有人工香精吗", "真人秀什么时候开播") the FAQ answers."""
    said = core(text)
    for word in words or []:
        w = core(word)
        if w and (said == w or (len(w) > 2 and w in said)):
            return True
    return False


@dataclass
class Bots:
    db: Database
    clock: Clock
    settings: Settings
    outbound: Outbound
    kb: KnowledgeBase
    keywords: KeywordRules
    has_open_session: Callable[[dict, int], Awaitable[bool]]  # (job state, conversation) -> bool
    welcome_provider: WelcomeProvider | None = None

    def __post_init__(self) -> None:
        self._insert = postgresql.insert if self.db.dialect == "postgresql" else sqlite.insert

    async def step(self, ctx: JobContext) -> None:
        msg = ctx.message
        if msg.direction != "in":
            return
        if msg.kind in WELCOME_KINDS:
            await self.welcome(ctx)
            return
        if msg.sender != "customer" or msg.kind not in CUSTOMER_KINDS:
            return  # events (an unfollow, a menu click, a template's receipt) are no customer waiting
        if msg.recalled_at is not None:
            return  # recalled before it reached the hub (its delivery was retried): nothing to answer
        hours = await self._hours(msg.account_id)
        open_now = hours is None or is_open(hours, self.clock.now())
        ctx.state["in_business_hours"] = open_now
        if msg.kind != "text" or not (msg.text or "").strip():
            if not open_now and not await self.has_open_session(ctx.state, msg.conversation_id):
                await self._offhours(ctx, hours)  # (an agent working late is chatting with them)
            return  # pictures, voice ... go to a human
        if await self.has_open_session(ctx.state, msg.conversation_id):
            return  # a human is on it: the routing step delivers the message
        await self.kb.refresh_if_changed()
        text = msg.text
        handover = contains_handover(text, await self.settings.get("handover_words", msg.account_id))
        rule = None if handover else first_match(await self.keywords.rules(), text, msg.account_id,
                                                 ctx.state.get("channel_code"))
        if rule is not None and not sendable(msg.channel, rule.reply):
            rule = None  # the platform would refuse it for good: the FAQ, or an agent, answers instead
        if handover:
            await self._record(ctx, "handover")
        elif rule is not None:
            await self._reply(ctx, rule.reply.get("text") or rule.reply.get("title") or "", rule.reply)
            await self._record(ctx, "keyword", rule_id=rule.id, hit=self.keywords.count_hit)
            ctx.state["handled"] = True
            return
        else:
            matches = self.kb.match(text)
            if self.kb.is_confident(matches) and fits(msg.channel, matches[0].answer):
                top = matches[0]
                await self._reply(ctx, top.answer)
                await self._record(ctx, "faq", faq_id=top.id, score=top.score, hit=self.kb.count_hit)
                ctx.state["handled"] = True
                return
            suggestions = self.kb.suggestions(matches)
            ctx.state["suggestions"] = suggestions
            await self._record(ctx, "suggest" if suggestions else "unanswered",
                               faq_id=suggestions[0]["id"] if suggestions else None,
                               score=suggestions[0]["score"] if suggestions else None)
        if not open_now:
            await self._offhours(ctx, hours)

    async def welcome(self, ctx: JobContext) -> None:
        """The channel code's welcome, else the account's. An Official Account follower who scans a
        code (SCAN) gets the code's welcome only (no default for an unrelated scene): the customer-service
        send is allowed, the scan opens the 48-hour window. An OA welcome through a code goes once a day
        per code and conversation (following and scanning again the same day is not sent it again)."""
        msg = ctx.message
        data = ctx.data
        if msg.kind == "event.external_contact" and data.get("change_type") != "add_external_contact":
            return
        text = None
        if self.welcome_provider is not None:
            text = await self.welcome_provider(ctx)
        daily = bool(text) and msg.kind in ("event.subscribe", "event.scan")
        if daily:
            channel = ctx.state.get("channel_code") or data.get("scene", "")
            day = day_of(float(msg.created_at or self.clock.now()))
            dedup = f"welcome:code:{channel}:{msg.conversation_id}:{day}"
        elif msg.kind == "event.scan":
            return  # a scan of no code with a welcome: nothing to say
        else:
            dedup = f"welcome:{msg.id}"
        text = text or await self.settings.get("welcome_text", msg.account_id)
        if not text:
            return
        code = data.get("welcome_code", "")
        if msg.kind not in ("event.subscribe", "event.scan") and not code:
            return  # WeCom / 微信客服 welcomes need the platform's one-time code
        queued = await self.outbound.enqueue(OutboundRequest(msg.account_id, msg.conversation_id, text, "bot",
                                                             dedup_key=dedup, welcome_code=code,
                                                             staff_userid=data.get("user_id", "")))
        if queued is not None or not daily:  # (a job run again records once; a second scan sent nothing)
            await self._record(ctx, "welcome")

    async def _hours(self, account_id: str) -> Any:
        raw = await self.settings.get("business_hours", account_id)
        if not raw:
            return None
        try:
            return hours_from_json(raw)
        except ValueError as exc:
            log.warning("business hours of %s are invalid, treating as always open: %s", account_id, exc)
            return None

    async def _offhours(self, ctx: JobContext, hours: Any) -> None:
        msg = ctx.message
        opens = next_open(hours, self.clock.now())
        opening = "never" if math.isinf(opens) else int(opens)  # a schedule that never opens: once
        text = await self.settings.get("offhours_text", msg.account_id)
        if text:
            await self.outbound.enqueue(OutboundRequest(msg.account_id, msg.conversation_id, text, "bot",
                                                        dedup_key=f"offhours:{msg.conversation_id}:{opening}"))
        ctx.state["offhours"] = True

    async def _reply(self, ctx: JobContext, text: str, reply: dict[str, Any] | None = None) -> None:
        msg = ctx.message
        kind = (reply or {}).get("type", "text")
        content = {k: v for k, v in (reply or {}).items() if k not in ("type", "text")} if kind != "text" else None
        await self.outbound.enqueue(OutboundRequest(msg.account_id, msg.conversation_id, text or "", "bot",
                                                    dedup_key=f"bot:{msg.id}", kind=kind, content=content))

    async def _record(self, ctx: JobContext, outcome: str, *, rule_id: int | None = None, faq_id: int | None = None,
                      score: float | None = None, hit: Callable[[int, Any], Awaitable[None]] | None = None) -> None:
        """The bot's outcome for a message, once (a job run again after a later step failed finds
        it), and with it ``hit`` of the rule or FAQ that answered, in the same transaction: a retry
        counted the hit again."""
        msg = ctx.message
        values = {"message_id": msg.id, "conversation_id": msg.conversation_id, "account_id": msg.account_id,
                  "outcome": outcome, "rule_id": rule_id, "faq_id": faq_id, "score": score,
                  "text": (msg.text or "")[:500], "normalized": normalized_question(msg.text or ""),
                  "at": self.clock.now()}

        async def write() -> None:
            async with self.db.write() as conn:
                first = (await conn.execute(self._insert(outcomes_t).values(**values)
                                            .on_conflict_do_nothing(index_elements=["message_id"])
                                            .returning(outcomes_t.c.message_id))).first()
                if first is not None and hit is not None:
                    await hit(rule_id or faq_id, conn)

        await retry_busy(write)


def bots_step(bots: Bots):  # noqa: ANN201
    return bots.step


__all__ = ["Bots", "bots_step", "contains_handover", "json", "normalized_question"]
