"""The agent console in a real browser (headless Chromium via Playwright): log in, go online, a
customer writes over an encrypted WeCom callback, the agent opens the session, replies with Enter,
and the reply reaches the (stand-in) platform API. A second test drives the rest of the console:
message types, the customer pane, suggestions, shortcuts, presence, resume after a dropped
connection, resync, transfer and close. Screenshots go to artifacts/console-*.png."""
from __future__ import annotations

import pathlib
import struct
import zlib

import pytest

import agent_ui.views
from hub.app import create_app
from hub.callbacks import xmlcodec
from tests.conftest import WECOM
from tests.helpers import count_messages, post, wait_for
from tests.rt_helpers import Agent, login, make_user, server_url
from tests.wechat_client import text_xml

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]
ARTIFACTS = pathlib.Path(__file__).resolve().parent.parent / "artifacts"
VIEWPORT = {"width": 1440, "height": 900}


@pytest.fixture
async def client(aiohttp_client, hub_config, clock):
    """The hub app with the console's routes (setup is idempotent: fine once hub/app.py wires it too)."""
    app = create_app(hub_config, clock)
    agent_ui.views.setup(app)
    return await aiohttp_client(app)


async def new_page(browser, errors: list[str]):  # noqa: ANN001, ANN201
    ctx = await browser.new_context(viewport=VIEWPORT, locale="zh-CN", timezone_id="Asia/Shanghai")
    page = await ctx.new_page()
    page.set_default_timeout(8000)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    return page


async def log_in(page, base: str, username: str) -> None:  # noqa: ANN001
    await page.goto(base + "/login")
    await page.fill("#username", username)
    await page.fill("#password", f"{username}-password")
    await page.click("#login-submit")
    await page.wait_for_url("**/console")
    from playwright.async_api import expect
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")


async def agent_online(client, hub, browser, errors: list[str], username: str = "alice"):  # noqa: ANN001, ANN201
    """A new agent (of the default group, presales) logged in to the console and online: the page."""
    user = await make_user(hub, username)
    await hub.settings.set("default_group", "presales")
    page = await new_page(browser, errors)
    await log_in(page, str(client.server.make_url("")).rstrip("/"), username)
    await go_online(page, hub, user.id)
    return page


async def go_online(page, hub, user_id: int) -> None:  # noqa: ANN001
    await page.select_option("#status", "online")
    await wait_for(lambda: any(a.id == user_id and a.status == "online" for a in hub.sessions.dispatcher.agents()))


async def shot(page, name: str) -> None:  # noqa: ANN001
    await page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"))


def xml(to: str, frm: str, msg_type: str, msg_id: int, **fields: str) -> str:
    return xmlcodec.render({"ToUserName": to, "FromUserName": frm, "CreateTime": 1_700_000_000 + msg_id % 100000,
                            "MsgType": msg_type, "MsgId": str(msg_id), **fields})


def png(width: int = 160, height: int = 120) -> bytes:
    """A small gradient PNG (what the image CDN answers in these tests)."""
    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (220 - x // 2, 232 - y // 3, 250))
                    for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def test_agent_answers_a_customer_in_the_console(client, hub, standin, wecom, browser):
    from playwright.async_api import expect
    alice = await make_user(hub, "alice")
    await hub.settings.set("default_group", "presales")
    base = str(client.server.make_url("")).rstrip("/")
    errors: list[str] = []
    page = await new_page(browser, errors)

    # not logged in: / and /console lead to the login page
    await page.goto(base + "/")
    assert page.url == base + "/login"
    await page.goto(base + "/console")
    assert page.url == base + "/login"
    await page.fill("#username", "alice")
    await page.fill("#password", "not-her-password")
    await page.click("#login-submit")
    await expect(page.locator("#login-error")).to_have_text("账号或密码错误")
    await shot(page, "login")
    errors.clear()  # the browser logs the 401 of that wrong password

    await log_in(page, base, "alice")
    await expect(page.locator("#me-name")).to_have_text("alice")
    await go_online(page, hub, alice.id)
    await expect(page.locator("#sessions-empty")).to_be_visible()
    await page.hover(".help")
    await expect(page.locator(".help-pop")).to_be_visible()
    await shot(page, "empty")
    await page.mouse.move(700, 500)

    await post(client, wecom, text_xml(WECOM["receive_id"], "wmCust1", "这款面霜敏感肌能用吗", 20001))
    item = page.locator("#session-list li.session").first
    await expect(item).to_contain_text("wmCust1")
    await expect(item).to_contain_text("企业微信")
    await expect(item.locator(".wait")).to_contain_text("等待")
    await item.click()
    await expect(page.locator("#message-list")).to_contain_text("这款面霜敏感肌能用吗")
    await expect(page.locator("#chat-name")).to_have_text("wmCust1")
    await expect(page.locator("#accept-btn")).to_be_visible()

    await page.fill("#reply", "您好，可以放心使用~")
    await page.press("#reply", "Enter")
    await expect(page.locator("#reply")).to_have_value("")
    await wait_for(lambda: count_messages(hub, direction="out", sender=f"agent:{alice.id}"))
    await hub.outbound.drain()
    assert standin.sent[-1]["body"]["text"]["content"] == "您好，可以放心使用~"
    out = page.locator(".msg.out").last
    await expect(out).to_contain_text("您好，可以放心使用~")
    await expect(out.locator(".delivery")).to_have_text("已送达", timeout=10000)
    await expect(page.locator("#accept-btn")).to_be_hidden()  # replying accepted it
    # a reply the platform refuses says so, and why (pushed: the console does not poll)
    standin.fail_next = [45015]
    await page.fill("#reply", "请问还在吗")
    await page.press("#reply", "Enter")
    failed = page.locator(".msg.out", has_text="请问还在吗")
    await expect(failed.locator(".delivery")).to_have_text("发送失败：客户超过48小时未互动，平台不再允许回复",
                                                          timeout=10000)

    # tag the customer from the customer pane
    await page.click("#tag-add")
    await page.fill("#tag-input", "敏感肌")
    await page.press("#tag-input", "Enter")
    await expect(page.locator("#profile .chip.tag", has_text="敏感肌")).to_be_visible()
    await shot(page, "replied")
    assert not errors, errors


async def test_console_workflow(client, hub, standin, wecom, oa, browser):
    """Message types, customer pane, suggestions, shortcuts, presence, resume, resync, transfer, close."""
    from playwright.async_api import expect
    alice = await make_user(hub, "alice", cap=5)
    carol = await make_user(hub, "carol")
    await make_user(hub, "sam", role="supervisor", groups=("presales",))
    await hub.settings.set("default_group", "presales")

    async def rich_profile(conv):  # noqa: ANN001, ANN202 - what the "Customer 360" provider will send
        lin = conv.peer_id == "wmLin"
        return {"customer_id": 7, "name": "林女士" if lin else conv.peer_id, "vip_level": 2 if lin else 0,
                "identities": [{"kind": "external_userid", "value": conv.peer_id, "account_id": conv.account_id},
                               {"kind": "mobile", "value": "138****6021", "account_id": ""}],
                "paid_total_fen": 128800, "order_count": 4, "last_contact_at": 1718700000,
                "tags": [{"name": "敏感肌", "group": "肤质", "color": "#e0720f", "source": "keyword", "by": "bot"},
                         {"name": "复购", "group": None, "color": None, "source": "rule", "by": "rules"},
                         {"name": "618 活动", "group": "活动", "color": "#2866e8", "source": "manual", "by": "alice"}],
                "orders": [{"order_id": "TB2024061812345678", "platform": "taobao", "status": "shipped",
                            "paid_fen": 29900, "created_at": 1718700000,
                            "items": [{"title": "舒缓修护面霜 50ml", "quantity": 1},
                                      {"title": "温和洁面乳 120g", "quantity": 2}],
                            "logistics_company": "顺丰速运", "tracking_no": "SF1400012345678"},
                           {"order_id": "JD30125588", "platform": "jd", "status": "completed", "paid_fen": 12800,
                            "items": [{"title": "保湿喷雾 150ml", "quantity": 1}]}]}

    hub.sessions.profile = rich_profile

    async def faq(ctx):  # noqa: ANN001, ANN202 - stands in for the bots' FAQ suggestions
        ctx.state["suggestions"] = [
            {"id": 1, "question": "敏感肌可以用吗？", "answer": "这款面霜通过了敏感肌测试，无酒精无香精，可以放心使用。", "score": 92.5},
            {"id": 2, "question": "孕妇可以用吗？", "answer": "成分温和，孕期也可以使用，建议先在耳后试用。", "score": 81},
            {"id": 3, "question": "保质期多久？", "answer": "未开封保质期 3 年，开封后建议 12 个月内用完。", "score": 74}]
        if ctx.message.peer_id == "wmLin":
            ctx.state.setdefault("routing", {})["vip_level"] = 2

    steps = hub.pipeline.inbound_steps  # just before the routing step (after the bots)
    steps.insert(next(i for i, s in enumerate(steps) if "route_step" in s.__qualname__), faq)
    base = server_url(client)
    errors: list[str] = []
    page = await new_page(browser, errors)
    await page.route("https://mmbiz.qpic.cn/**", lambda route: route.fulfill(status=200, content_type="image/png",
                                                                             body=png()))
    await log_in(page, base, "alice")
    await go_online(page, hub, alice.id)
    to = WECOM["receive_id"]
    await post(client, wecom, text_xml(to, "wmLin", "你好，我上周买的面霜，敏感肌能用吗？", 30001))
    await post(client, oa, text_xml("gh_1", "oZhang", "发票怎么开？", 30002))
    await expect(page.locator("#session-list li.session")).to_have_count(2)
    await page.locator("#session-list li.session", has_text="林女士").click()
    for i, (kind, fields) in enumerate([
            ("image", {"PicUrl": "https://mmbiz.qpic.cn/mmbiz_jpg/demo/0", "MediaId": "m1"}),
            ("link", {"Title": "舒缓修护面霜 50ml 商品页", "Description": "官方旗舰店", "Url": "https://shop.example.com/p/1"}),
            ("location", {"Location_X": "31.2304", "Location_Y": "121.4737", "Scale": "15", "Label": "上海市黄浦区人民广场"}),
            ("voice", {"MediaId": "v1", "Format": "amr", "Recognition": "快递什么时候到"})]):
        await post(client, wecom, xml(to, "wmLin", kind, 30010 + i, **fields))
    await expect(page.locator("#message-list .msg.in")).to_have_count(5)
    await expect(page.locator("#message-list img")).to_be_visible()
    await expect(page.locator("#message-list")).to_contain_text("上海市黄浦区人民广场")
    await expect(page.locator("#profile")).to_contain_text("TB2024061812345678")
    await expect(page.locator("#profile")).to_contain_text("¥299.00")
    await expect(page.locator("#profile")).to_contain_text("顺丰速运")
    await expect(page.locator("#chat-badges")).to_contain_text("VIP2")
    await expect(page.locator("#suggestions .suggestion")).to_have_count(3)

    # a supervisor looks at the same session and types: alice sees it
    sam = await Agent(base, await login(client, "sam")).connect()
    try:
        lin_id = int(await page.locator("#session-list li.session.current").get_attribute("data-id"))
        assert (await sam.call("viewing", {"session_id": lin_id}))["ok"]
        await expect(page.locator("#chat-presence")).to_contain_text("sam 正在查看")
        assert (await sam.call("typing", {"session_id": lin_id}))["ok"]
        await expect(page.locator("#typing")).to_contain_text("sam 正在输入")
        # an order changes while the session is open (order sync pushes `order.updated`)
        await hub.push.to_user(alice.id, "order.updated", {"session_id": lin_id, "customer_id": 7, "order": {
            "platform": "jd", "order_id": "JD30125588", "status": "refunding", "refund_status": "refunding",
            "paid_fen": 12800, "created_at": 1718000000, "items": [{"title": "保湿喷雾 150ml", "quantity": 1}]}})
        await expect(page.locator("#profile .order", has_text="JD30125588")).to_contain_text("退款处理中")
        # Alt+1 inserts the first suggestion; the quick-reply picker inserts a canned text
        await page.focus("#reply")
        await page.keyboard.press("Alt+Digit1")
        await expect(page.locator("#reply")).to_have_value("这款面霜通过了敏感肌测试，无酒精无香精，可以放心使用。")
        await page.keyboard.type("您可以先在耳后试用。")
        await shot(page, "workspace")
        await page.click("#quick-btn")
        await expect(page.locator("#quick-pop")).to_be_visible()
        await shot(page, "quick-replies")
        await page.keyboard.press("Escape")
        await expect(page.locator("#quick-pop")).to_be_hidden()
        await page.click("#accept-btn")
        await expect(page.locator("#accept-btn")).to_be_hidden()
        await page.press("#reply", "Control+Enter")
        await wait_for(lambda: count_messages(hub, direction="out", sender=f"agent:{alice.id}"))

        # Alt+↓ goes to the next session, Alt+↑ back; drafts stay with their session
        await page.fill("#reply", "草稿")
        await page.keyboard.press("Alt+ArrowDown")
        await expect(page.locator("#chat-name")).to_have_text("oZhang")
        await expect(page.locator("#chat-badges")).to_contain_text("公众号")
        await expect(page.locator("#reply")).to_have_value("")
        await page.keyboard.press("Alt+ArrowUp")
        await expect(page.locator("#chat-name")).to_have_text("林女士")
        await expect(page.locator("#reply")).to_have_value("草稿")
        await page.fill("#reply", "")

        # the connection drops; a message arrives meanwhile; the resume replays it
        await page.evaluate("Hub.socket.disconnect()")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "reconnecting")
        await expect(page.locator("#conn")).to_contain_text("重新连接中")
        await shot(page, "reconnecting")
        await post(client, wecom, text_xml(to, "wmLin", "断线期间发的消息", 30050))
        await hub.pipeline.drain()
        await page.evaluate("Hub.socket.connect()")
        await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
        await expect(page.locator("#message-list")).to_contain_text("断线期间发的消息")
        # an unknown epoch (the hub restarted) -> resync -> the list is reloaded
        await page.evaluate("Hub.socket.disconnect(); Hub.state.epoch = 'stale';"
                            "Hub.state.sessions.delete(Number(document.querySelectorAll('#session-list li.session')[1].dataset.id));"
                            "Hub.renderAll(); Hub.socket.connect()")
        await expect(page.locator("#session-list li.session")).to_have_count(2)
    finally:
        await sam.close()

    # transfer the OA session to carol (she must be online to appear selectable)
    carol_page = await new_page(browser, errors)
    await log_in(carol_page, base, "carol")
    await go_online(carol_page, hub, carol.id)
    await page.locator("#session-list li.session", has_text="oZhang").click()
    await page.click("#transfer-btn")
    await expect(page.locator("#transfer-dialog")).to_be_visible()
    await page.locator("#transfer-agents button.pick", has_text="carol").click()
    await page.fill("#transfer-note", "发票问题，麻烦跟进")
    await shot(page, "transfer")
    await page.click("#transfer-dialog .tab[data-tab=group]")
    await expect(page.locator("#transfer-groups")).to_contain_text("presales")
    await shot(page, "transfer-group")
    await page.keyboard.press("Escape")
    await expect(page.locator("#transfer-dialog")).to_be_hidden()
    await page.click("#transfer-btn")
    await page.locator("#transfer-agents button.pick", has_text="carol").click()
    await page.click("#transfer-submit")
    await expect(page.locator("#session-list li.session")).to_have_count(1)
    await expect(carol_page.locator("#session-list li.session")).to_contain_text("oZhang")

    # close the remaining one with a reason
    await page.locator("#session-list li.session").first.click()
    await page.click("#close-btn")
    await page.check("input[name=close-reason][value=no_response]")
    await shot(page, "close")
    await page.click("#close-submit")
    await expect(page.locator("#session-list li.session")).to_have_count(0)
    await expect(page.locator("#chat-empty")).to_be_visible()
    assert not [e for e in errors if "favicon" not in e], errors


async def test_dense_list_and_long_content_do_not_overflow(client, hub, wecom, oa, browser):
    """A busy agent at 1440x900: many sessions, long names and unbroken text stay inside their boxes."""
    from playwright.async_api import expect
    alice = await make_user(hub, "alice", cap=12)
    await hub.settings.set("default_group", "presales")
    base = server_url(client)
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in(page, base, "alice")
    await go_online(page, hub, alice.id)
    long_word = "https://item.taobao.com/item.htm?id=" + "7" * 90
    for i in range(10):
        sim, to = (wecom, WECOM["receive_id"]) if i % 2 else (oa, "gh_1")
        peer = f"wmVeryLongExternalUserIdentifier{i:02d}xxxxxxxxxxxxxxxxxxxx"
        text = f"第{i + 1}位客户：我想问一下订单什么时候发货，已经等了三天了，麻烦帮忙查一下物流信息谢谢 {long_word if i == 0 else ''}"
        await post(client, sim, text_xml(to, peer, text, 40000 + i))
    await expect(page.locator("#session-list li.session")).to_have_count(10)
    await page.locator("#session-list li.session", has_text="第1位客户").click()
    await page.fill("#reply", "好的，我马上帮您查询。" * 6)
    await shot(page, "dense")
    overflow = await page.evaluate("""() => {
        const bad = [];
        if (document.documentElement.scrollWidth > innerWidth) bad.push('page scrolls sideways');
        for (const sel of ['.sessions', '.chat', '.profile', '.topbar', '.chat-head', '.composer']) {
            const el = document.querySelector(sel);
            if (el && el.scrollWidth > el.clientWidth + 1) bad.push(sel + ' overflows ' + el.scrollWidth + '>' + el.clientWidth);
        }
        for (const b of document.querySelectorAll('.bubble')) {
            const box = document.querySelector('#messages').getBoundingClientRect(), r = b.getBoundingClientRect();
            if (r.right > box.right + 1 || r.left < box.left - 1) bad.push('bubble outside the chat');
        }
        return bad;
    }""")
    assert overflow == [], overflow

    # a long conversation: the bundle brings the latest 20, "load older" pages back with `history`
    first = "wmVeryLongExternalUserIdentifier00" + "x" * 20  # the first customer, on the Official Account
    for i in range(22):
        await post(client, oa, text_xml("gh_1", first, f"追问 {i + 1}", 41000 + i))
    await expect(page.locator("#message-list")).to_contain_text("追问 22")
    await page.reload()
    await page.locator("#session-list li.session", has_text=first).click()
    await expect(page.locator("#message-list")).to_contain_text("追问 22")
    await expect(page.locator("#message-list")).not_to_contain_text("第1位客户")
    await page.click("#older-btn")
    await expect(page.locator("#message-list")).to_contain_text("第1位客户")
    await expect(page.locator("#older-btn")).to_be_hidden()
    assert not errors, errors


async def test_an_event_lost_on_its_way_is_asked_for_again(client, hub, wecom, browser):
    """An event that does not arrive (an emit lost between hub processes, or overtaken by a later
    one): the console sees the gap in the sequence and asks for what it missed, without reloading."""
    from playwright.async_api import expect
    errors: list[str] = []
    page = await agent_online(client, hub, browser, errors)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmGap", "第一条", 40001))
    await page.locator("#session-list li.session").first.click()
    await expect(page.locator("#message-list")).to_contain_text("第一条")

    real_emit, dropped = hub.push.sio.emit, []

    async def lossy(name, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if name == "message.new" and not dropped:
            dropped.append(name)
            return None
        return await real_emit(name, *args, **kwargs)

    hub.push.sio.emit = lossy
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmGap", "第二条（路上丢了）", 40002))
    await wait_for(lambda: dropped)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmGap", "第三条", 40003))
    await expect(page.locator("#message-list")).to_contain_text("第三条")
    await expect(page.locator("#message-list")).to_contain_text("第二条（路上丢了）")
    assert not errors, errors
