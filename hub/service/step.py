"""The pipeline step that hands customer messages to humans: join the open session, or route a new one.

Bots (bots/) run before this step and may answer, in which case they mark the context handled.
"""
from __future__ import annotations

from typing import Any

from ..pipeline import JobContext
from .sessions import Handover, SessionService

CUSTOMER_KINDS = {"text", "image", "voice", "video", "location", "link", "file"}


def is_customer_message(msg: Any) -> bool:
    return msg.direction == "in" and msg.sender == "customer" and msg.kind in CUSTOMER_KINDS


def route_step(sessions: SessionService):  # noqa: ANN201
    async def step(ctx: JobContext) -> None:
        msg = ctx.message
        if not is_customer_message(msg) or ctx.state.get("handled"):
            return
        if await sessions.customer_message(msg.conversation_id, msg):
            return
        await sessions.route(Handover(conversation_id=msg.conversation_id, account_id=msg.account_id,
                                      first_message=msg.text or f"[{msg.kind}]",
                                      suggestions=ctx.state.get("suggestions", []),
                                      in_business_hours=ctx.state.get("in_business_hours", True),
                                      **ctx.state.get("routing", {})))

    return step
