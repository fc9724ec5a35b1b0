"""A batch of the archive writer marks each conversation it wrote to (last message, last inbound)
and the open session's "customer waiting since", on both databases, in one batch with several
conversations, an outbound message and a closed session that must stay as it was."""
from __future__ import annotations

from sqlalchemy import select

from hub.archive.store import ToArchive
from hub.messages import Text
from hub.models import Conversation, ServiceSession

conversations = Conversation.__table__
sessions_t = ServiceSession.__table__


def text(peer: str, msg_id: str, direction: str = "in") -> ToArchive:
    sender = "customer" if direction == "in" else "agent"
    return ToArchive("acme-wecom", Text(channel="wecom", peer_id=peer, sent_at=1, msg_id=msg_id, direction=direction,
                                       sender=sender, content="hi"), job=None)


async def test_a_batch_touches_its_conversations_and_open_sessions(hub):
    await hub.pipeline.stop()
    writer = hub.writer
    first = await writer.save([text("wmTouchA", "a1"), text("wmTouchB", "b1"), text("wmTouchC", "c1")])
    conv_a, conv_b, conv_c = (s.conversation_id for s in first)
    async with hub.db.write() as conn:
        for conv, state in ((conv_a, "active"), (conv_b, "closed")):
            await conn.execute(sessions_t.insert().values(
                conversation_id=conv, account_id="acme-wecom", state=state, created_at=1.0, handover_at=1.0,
                last_customer_at=1.0))
    async with hub.db.read() as conn:
        before_c = (await conn.execute(select(conversations).where(conversations.c.id == conv_c))).one()
    saved = await writer.save([text("wmTouchA", "a2"), text("wmTouchB", "b2"),
                               text("wmTouchC", "c2", direction="out"), text("wmTouchA", "a3")])
    assert all(not s.duplicate for s in saved)
    async with hub.db.read() as conn:
        convs = {r.id: r for r in (await conn.execute(select(conversations).where(
            conversations.c.id.in_([conv_a, conv_b, conv_c])))).all()}
        sess = {r.conversation_id: r for r in (await conn.execute(select(sessions_t).where(
            sessions_t.c.conversation_id.in_([conv_a, conv_b])))).all()}
    now = convs[conv_a].last_message_at  # the second batch's time
    assert now > before_c.last_message_at
    assert convs[conv_a].last_inbound_at == now
    assert convs[conv_b].last_message_at == now and convs[conv_b].last_inbound_at == now
    # an outbound message moves the last message, not the customer's last word
    assert convs[conv_c].last_message_at == now and convs[conv_c].last_inbound_at == before_c.last_inbound_at
    assert sess[conv_a].last_customer_at == now  # open: the customer waits since now
    assert sess[conv_b].last_customer_at == 1.0  # closed: left alone
