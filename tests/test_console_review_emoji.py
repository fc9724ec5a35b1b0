"""The agent console in headless Chromium: WeChat nicknames and messages that hold emoji (text is cut by
characters, not by UTF-16 code units: an emoji is two of them), a reply too long for its channel, a
transfer that comes back to its sender."""
from __future__ import annotations

from playwright.async_api import expect

from hub.models import Conversation, Customer
from hub.service.sessions import Handover
from tests.rt_helpers import make_user
from tests.test_console_browser import go_online, log_in, new_page
from tests.test_operator_pages import base_url

API = {"Authorization": "Bearer test-api-token"}


async def customer_conversation(hub, name: str, peer: str) -> int:  # noqa: ANN001
    async with hub.db.write() as conn:
        cid = (await conn.execute(Customer.__table__.insert().values(name=name, created_at=hub.clock.now()))
               ).inserted_primary_key[0]
        return (await conn.execute(Conversation.__table__.insert().values(
            account_id="acme-wecom", channel="wecom", thread="", peer_id=peer, customer_id=cid,
            created_at=hub.clock.now()))).inserted_primary_key[0]


async def test_an_emoji_nickname_and_first_message_are_not_cut_in_half(client, hub, browser):  # noqa: ANN001
    """A nickname starting with an emoji showed half of it (a broken glyph) as the avatar, in the list and
    in the customer pane; 转工单 took the first 60 UTF-16 units of the first message as the title, so an
    emoji at the 60th character was cut in half and creating the ticket failed (500 服务器出错)."""
    alice = await make_user(hub, "alice", groups=("presales",))
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base_url(client), "alice")
    await go_online(page, hub, alice.id)
    title = "请问" * 29 + "好🌸"  # 60 characters; the emoji is the 60th and 61st UTF-16 unit
    first = title + "这款面霜敏感肌能用吗"
    await hub.sessions.route(Handover(await customer_conversation(hub, "🌸小美", "wmEmoji"), "acme-wecom", first, [],
                                      group="presales"))
    item = page.locator("#session-list li.session").first
    await expect(item.locator(".avatar")).to_have_text("🌸")
    await item.click()
    await expect(page.locator("#profile .avatar")).to_have_text("🌸")
    await expect(page.locator("#profile .profile-name")).to_have_text("🌸小美")

    await page.click("#ticket-btn")
    await expect(page.locator("#ticket-title")).to_have_value(title)
    await page.select_option("#ticket-type", "return")
    await page.click("#ticket-submit")
    await expect(page.locator("#ticket-dialog")).to_have_count(0)
    tickets = (await (await client.get("/api/tickets", headers=API)).json())["tickets"]
    assert [t["title"] for t in tickets] == [title]
    assert not [e for e in errors if "500" not in e], errors


async def test_a_reply_too_long_for_an_official_account_says_so(client, hub, browser):  # noqa: ANN001
    """An Official Account takes 2,048 UTF-8 bytes (about 682 Chinese characters): a reply of 700 was
    refused with 发送失败：消息内容无效 (content invalid), and the counter said nothing below 1,500
    characters, so the agent could not tell what was wrong with it."""
    alice = await make_user(hub, "alice", groups=("presales",))
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base_url(client), "alice")
    await go_online(page, hub, alice.id)
    async with hub.db.write() as conn:
        conv = (await conn.execute(Conversation.__table__.insert().values(
            account_id="acme-oa", channel="oa", thread="", peer_id="oLong", created_at=hub.clock.now()))
                ).inserted_primary_key[0]
    await hub.sessions.route(Handover(conv, "acme-oa", "退货流程是什么", [], group="presales"))
    await page.locator("#session-list li.session").first.click()
    text = "您好" * 350  # 700 characters, 2,100 bytes
    await page.fill("#reply", text)
    await expect(page.locator("#char-count")).to_contain_text("2100 / 2048")
    await page.click("#send-btn")
    await expect(page.locator("#toasts .toast.error")).to_contain_text("内容过长")
    await expect(page.locator("#reply")).to_have_value(text)


async def test_a_session_transferred_back_to_its_sender_stays_in_the_list(client, hub, browser):  # noqa: ANN001
    """Alice, alone of 售前 online, hands a session to her own group: nobody else can take it, so the hub
    gives it back to her (session.removed, then session.new, both before the transfer's ack). The
    dialog then took the session out of her list as transferred: the hub had her hold a customer her
    console no longer showed."""
    alice = await make_user(hub, "alice", groups=("presales",))
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base_url(client), "alice")
    await go_online(page, hub, alice.id)
    session = await hub.sessions.route(Handover(await customer_conversation(hub, "王女士", "wmBackToMe"), "acme-wecom",
                                                "快递到哪了", [], group="presales"))
    item = page.locator("#session-list li.session")
    await item.first.click()
    await page.click("#transfer-btn")
    await page.click("#transfer-dialog .tab[data-tab=group]")
    await page.locator("#transfer-groups button.pick", has_text="presales").click()
    await page.click("#transfer-submit")
    await expect(page.locator("#transfer-dialog")).to_be_hidden()
    assert hub.sessions.dispatcher.agent_of(session["id"]) == alice.id
    await expect(item).to_have_count(1)
    await expect(item.first).to_have_attribute("data-id", str(session["id"]))
    await expect(page.locator("#toasts .toast").last).to_contain_text("回到")


async def carols_session_alice_watching(client, hub, browser, name: str, peer: str, text: str):  # noqa: ANN001, ANN201
    """Carol (online, presales) holds the new session of customer ``name`` (``peer``), whose advisor she
    is; Alice has the console open, online. Returns (page, errors, alice, carol, session)."""
    carol = await make_user(hub, "carol", groups=("presales",))
    await hub.sessions.set_status(carol, "online")
    alice = await make_user(hub, "alice", groups=("presales",))
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base_url(client), "alice")
    await go_online(page, hub, alice.id)
    session = await hub.sessions.route(Handover(await customer_conversation(hub, name, peer), "acme-wecom", text, [],
                                                group="presales", advisor_id=carol.id))
    return page, errors, alice, carol, session


async def test_the_transfer_note_shows_beside_the_session_it_came_with(client, hub, browser):  # noqa: ANN001
    """The note a colleague wrote in the transfer dialog shows in the customer pane of the agent who got
    the session (it went nowhere)."""
    page, errors, alice, carol, session = await carols_session_alice_watching(client, hub, browser, "李先生",
                                                                             "wmNoteUI", "发票怎么开")
    assert session["agent_id"] == carol.id
    await hub.sessions.transfer(carol, session["id"], to_agent=alice.id, note="客户要退货，已核对订单")
    await page.locator("#session-list li.session").first.click()
    await expect(page.locator("#profile")).to_contain_text("转接备注客户要退货，已核对订单")
    await expect(page.locator("#profile")).to_contain_text("转接自carol")
    assert not errors, errors


async def test_a_transferred_session_already_answered_shows_no_wait(client, hub, browser):  # noqa: ANN001
    """A session handed on after its agent answered: the customer waits for nothing (last_agent_at is
    after last_customer_at), but a session 待接入 showed 等待 since its handover, turning red after
    3 minutes, as if the customer had been left unanswered all along."""
    page, errors, alice, carol, session = await carols_session_alice_watching(client, hub, browser, "赵女士",
                                                                             "wmAnswered", "能开发票吗")
    await hub.sessions.reply(carol, session["id"], "可以的，我请同事帮您开", "c-answered")
    await hub.sessions.transfer(carol, session["id"], to_agent=alice.id, note="开发票")
    item = page.locator("#session-list li.session").first
    await expect(item.locator(".state")).to_have_text("待接入")
    await expect(item.locator(".time")).to_have_count(1)
    await expect(item.locator(".wait")).to_have_count(0)
