"""Channel QR codes (渠道活码): conversions (paid orders after a customer's first contact through a
code), in the API and the console."""
from __future__ import annotations

from sqlalchemy import text

from hub.channels.stats import conversions
from hub.db import Database
from tests.helpers import post
from tests.rt_helpers import make_user
from tests.wechat_client import event_xml
from tests.channel_helpers import OA_CODE, create, customer_of, settle, subscribe, today


async def add_order(hub, order_id: str, who: str, status: str, created_at: float) -> None:  # noqa: ANN001
    from hub.models.orders import OrderRow
    async with hub.db.write() as conn:
        await conn.execute(OrderRow.__table__.insert().values(
            platform="custom", order_id=order_id, customer_id=(await customer_of(hub, who))[0], status=status,
            created_at=created_at, modified_at=created_at, synced_at=created_at,
            paid_at=created_at + 5 if status not in ("pending_payment", "closed") else None))


async def set_order_status(hub, order_id: str, status: str) -> None:  # noqa: ANN001
    from hub.models.orders import OrderRow
    t = OrderRow.__table__
    async with hub.db.write() as conn:
        await conn.execute(t.update().where(t.c.order_id == order_id).values(status=status))


async def test_conversions_count_paid_orders_after_first_contact(client, hub, oa):
    """A conversion is a customer first attributed that day who paid for an order placed after it: an
    order never paid (pending_payment, closed) is none, and a full refund takes it back."""
    code = await create(client, OA_CODE)
    t = int(hub.clock.now())
    for who in ("oBuyer", "oEarlyBuyer", "oBrowser", "oUnpaid"):
        await post(client, oa, subscribe(code["scene"], who, t))
    await settle(hub)
    assert (await today(client, code["id"]))["conversions"] == 0
    now = hub.clock.now()
    await add_order(hub, "o-early", "oEarlyBuyer", "paid", now - 86400)  # before the first contact
    await add_order(hub, "o-pending", "oUnpaid", "pending_payment", now + 30)
    await add_order(hub, "o-closed", "oUnpaid", "closed", now + 40)  # cancelled, never paid
    stats = await today(client, code["id"])
    assert (stats["adds"], stats["conversations"], stats["conversions"]) == (4, 4, 0)
    await add_order(hub, "o-1", "oBuyer", "paid", now + 60)
    assert (await today(client, code["id"]))["conversions"] == 1
    await add_order(hub, "o-2", "oBuyer", "shipped", now + 90)  # a customer counts once
    assert (await today(client, code["id"]))["conversions"] == 1
    await set_order_status(hub, "o-1", "refunding")  # an after-sale in progress: still paid
    await set_order_status(hub, "o-2", "refunded")
    assert (await today(client, code["id"]))["conversions"] == 1
    await set_order_status(hub, "o-1", "refunded")  # both wholly refunded: the money went back
    assert (await today(client, code["id"]))["conversions"] == 0
    await set_order_status(hub, "o-pending", "completed")  # paid in the end, and received
    assert (await today(client, code["id"]))["conversions"] == 1


async def test_console_shows_conversions_and_the_conversion_rate(client, hub, oa, browser):
    """The code's detail in the operator console (headless Chromium): 30-day scans, adds, conversions
    (a paid order counts, a closed unpaid one does not) and the rate conversions / adds."""
    from playwright.async_api import expect

    from tests.test_operator_pages import base_url, log_in, new_page

    await make_user(hub, "olivia", role="admin", groups=())
    code = await create(client, OA_CODE)
    t = int(hub.clock.now())
    for i, who in enumerate(("oPaid", "oCancelled", "oLooker")):
        await post(client, oa, subscribe(code["scene"], who, t + i))
    await post(client, oa, event_xml("gh_acme", "oPaid", "SCAN", t + 5, EventKey=code["scene"], Ticket="tk"))
    await settle(hub)
    now = hub.clock.now()
    await add_order(hub, "o-paid", "oPaid", "paid", now + 60)
    await add_order(hub, "o-cancelled", "oCancelled", "closed", now + 60)
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base_url(client), "olivia", "/admin/channels")
    await page.click("#ch-rows .ch-show")
    card = page.locator("#ch-summary .stat-card")
    await expect(card).to_have_count(4)
    for key, shown in (("scans", "4"), ("adds", "3"), ("conversions", "1"), ("rate", "33.3%")):
        await expect(page.locator(f'#ch-summary [data-k="{key}"] .stat-n')).to_have_text(shown)
    await expect(page.locator('#ch-summary [data-k="conversions"] .stat-l')).to_have_text("成交客户")
    assert not errors, errors


async def test_conversions_without_a_usable_orders_table_are_zero(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/bare.db")
    try:
        assert await conversions(db, 1, "2024-11-01") == {}  # no orders table at all
        async with db.write() as conn:
            await conn.execute(text("CREATE TABLE orders (customer_id INTEGER)"))  # a schema it cannot query
        assert await conversions(db, 1, "2024-11-01") == {}
    finally:
        await db.dispose()
