"""The pipeline step that hands customer messages to humans: join the open session, or route a new one.

Bots (bots/) run before this step and may answer, in which case they mark the context handled.
"""
from __future__ import annotations

from typing import Any

from ..pipeline import JobContext
from .platform_side import platform_end
from .sessions import Handover, SessionService

# what a customer sends that a person must see: "unknown" too (a 微信客服 mini-program card or business
# card, an Official Account's miniprogrampage: archived raw, shown by their type; they reached nobody)
CUSTOMER_KINDS = {"text", "image", "voice", "video", "location", "link", "file", "unknown"}


def is_customer_message(msg: Any) -> bool:
    return msg.direction == "in" and msg.sender == "customer" and msg.kind in CUSTOMER_KINDS


async def _no_context(_customer_id: Any) -> dict[str, Any]:
    return {}


def route_step(sessions: SessionService, routing_context: Any = _no_context):  # noqa: ANN201
    """``routing_context(customer_id)`` -> {vip_level, tags} for the routing rules."""

    async def step(ctx: JobContext) -> None:
        msg = ctx.message
        if msg.direction == "out" and (msg.sender or "").startswith("staff"):  # answered in the WeCom app (微信客服)
            await sessions.staff_message(msg)
            return
        if msg.kind.startswith("event.") and (reason := platform_end(msg.kind, ctx.data)) is not None:
            await sessions.ended_on_platform(msg.conversation_id, reason)
            return
        if not is_customer_message(msg) or ctx.state.get("handled"):
            return
        open_row = await sessions.open_session_for(ctx.state, msg.conversation_id)
        if open_row is not None and await sessions.customer_message(msg.conversation_id, msg, open_row):
            return
        if msg.recalled_at is not None:
            return  # recalled before it reached the hub: no session for it (an open one shows it, recalled)
        routing = {**(await routing_context(ctx.state.get("customer_id"))), **ctx.state.get("routing", {})}
        await sessions.route(Handover(conversation_id=msg.conversation_id, account_id=msg.account_id,
                                      first_message=msg.text or f"[{msg.kind}]",
                                      suggestions=ctx.state.get("suggestions", []),
                                      in_business_hours=ctx.state.get("in_business_hours", True),
                                      customer_id=ctx.state.get("customer_id"), known_closed=open_row is None,
                                      **routing))

    return step
