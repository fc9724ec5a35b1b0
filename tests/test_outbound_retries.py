"""How long and how often the outbound queue retries: a platform outage longer than a few minutes
no longer fails the queued messages for good, 微信客服's limits fail at once, and a token fetch that
fails answers every send that waited for it (one fetch, not one per waiter)."""
from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from hub.models import Outbox
from tests.conftest import WECOM
from tests.test_outbound import send, setup, status_of

outbox = Outbox.__table__


async def _row(hub, message_id: int):  # noqa: ANN001, ANN202
    async with hub.db.read() as conn:
        return (await conn.execute(select(outbox).where(outbox.c.message_id == message_id))).first()


async def _retry_due(hub, clock) -> None:  # noqa: ANN001
    """Move the clock to the next planned try and run the sender."""
    async with hub.db.read() as conn:
        due = (await conn.execute(select(func.min(outbox.c.next_attempt_at)).where(
            outbox.c.status == "queued", outbox.c.next_attempt_at > clock.now()))).scalar()
    clock.advance(max(0.0, (due or clock.now()) - clock.now()) + 0.01)
    await hub.outbound.drain()


async def test_an_outage_of_an_hour_is_retried_through_and_the_message_goes_when_it_ends(
        aiohttp_client, hub_config, standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    await send(client, conv, "warm the token")
    await hub.outbound.drain()
    start = clock.now()
    mid = await send(client, conv, "稍等，我帮您查一下")
    tries = 0
    while clock.now() - start < 3600:  # an hour of HTTP 500 (8 tries used to span 4 minutes, then "failed")
        standin.fail_next = ["http500"]
        await (hub.outbound.drain() if tries == 0 else _retry_due(hub, clock))
        tries += 1
        assert await status_of(hub, mid) == "queued", f"given up after {tries} tries, {clock.now() - start:.0f} s"
    assert tries > 8 and (await _row(hub, mid)).last_error == "HTTP 500"
    gaps_capped = (await _row(hub, mid)).next_attempt_at - clock.now() <= 300 * 1.25 + 0.01
    assert gaps_capped  # backoff doubles up to 5 minutes, not beyond
    standin.fail_next = []
    await _retry_due(hub, clock)
    assert await status_of(hub, mid) == "sent"
    assert [s["body"]["text"]["content"] for s in standin.sent].count("稍等，我帮您查一下") == 1


async def test_a_message_retried_past_the_window_is_failed_with_the_last_error(aiohttp_client, hub_config, standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    hub.outbound.retry_for = 600.0  # (48 hours by default: HUB_OUTBOUND_RETRY_HOURS)
    mid = await send(client, conv, "x")
    for _ in range(30):
        standin.fail_next = ["http500"]
        await _retry_due(hub, clock)
        if await status_of(hub, mid) == "failed":
            break
    row = await _row(hub, mid)
    assert row.status == "failed" and row.last_error == "HTTP 500"
    assert row.next_attempt_at - row.created_at <= 600  # no try was planned past the window


async def test_kf_message_limits_fail_at_once(aiohttp_client, hub_config, standin):
    """95001: the customer must write before more can be sent; retried, it held the conversation's later
    messages for minutes. 95000 (invalid open_kfid) is as final."""
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    for code in (95001, 95000):
        standin.fail_next = [code]
        mid = await send(client, conv, f"limit {code}")
        await hub.outbound.drain()
        row = await _row(hub, mid)
        assert (row.status, row.attempts, row.last_errcode) == ("failed", 1, code)
    later = await send(client, conv, "next one goes")
    await hub.outbound.drain()
    assert await status_of(hub, later) == "sent"


async def test_a_failed_token_fetch_answers_every_send_that_waited_for_it(aiohttp_client, hub_config, standin):
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    hub.outbound.api._tokens.clear()  # nothing cached: every send needs a fetch
    before = standin.token_requests
    standin.fail_next = ["http500"] * 6
    account = await hub.outbound.accounts.get(WECOM["id"])  # (an Official Account's is shared on PostgreSQL)
    results = await asyncio.gather(*(hub.outbound.api.access_token(account) for _ in range(6)),
                                   return_exceptions=True)
    assert all(getattr(r, "errmsg", None) == "HTTP 500" for r in results)
    assert standin.token_requests - before == 1  # each waiter fetched again in turn
    standin.fail_next = []
    clock.advance(hub.outbound.api.fetch_retry + 0.1)
    assert await hub.outbound.api.access_token(account)  # tried again after the pause
    assert standin.token_requests - before == 2


async def test_a_message_retried_for_over_ten_minutes_no_longer_holds_the_next_ones(aiohttp_client, hub_config,
                                                                                    standin):
    from hub.outbound.queue import HOLD_NEXT
    client, hub, clock, conv = await setup(aiohttp_client, hub_config)
    standin.fail_texts["the platform keeps refusing this one"] = "http500"
    stuck = await send(client, conv, "the platform keeps refusing this one")
    await hub.outbound.drain()
    after = await send(client, conv, "and this one waits behind it")
    await hub.outbound.drain()
    assert await status_of(hub, after) == "queued" and not any(
        s["body"]["text"]["content"].startswith("and this") for s in standin.sent)  # order kept at first
    queued_at = (await _row(hub, stuck)).created_at
    while True:
        await _retry_due(hub, clock)
        if clock.now() - queued_at > HOLD_NEXT:
            break
        assert await status_of(hub, after) == "queued"
    await hub.outbound.drain()
    assert await status_of(hub, after) == "sent" and await status_of(hub, stuck) == "queued"
    assert (await _row(hub, stuck)).attempts > 5
