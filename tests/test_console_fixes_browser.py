"""The agent console in headless Chromium, cases of its event stream and pending replies: ticket and
alert events count for the resume point, a reply kept through an internal error, a supervisor's reply,
a restarted hub's stream, transfer/close with a reply pending, a timed-out reply that went through,
Alt shortcuts under a dialog, the wait timer on server times, alerts reloaded on resync, search's
"load older" clicked twice."""
from __future__ import annotations

import asyncio

from playwright.async_api import expect

from tests.conftest import WECOM
from tests.helpers import count_messages, messages, post, wait_for
from tests.rt_helpers import make_user, server_url
from tests.test_realtime import desk  # noqa: F401 - a fixture
from tests.test_console_browser import go_online, log_in, new_page
from tests.wechat_client import text_xml


async def online(client, hub, browser, errors: list[str], username: str = "alice", **kw):  # noqa: ANN001, ANN201
    user = await make_user(hub, username, **kw)
    await hub.settings.set("default_group", "presales")
    page = await new_page(browser, errors)
    await log_in(page, server_url(client), username)
    await go_online(page, hub, user.id)
    return page, user


async def customer_session(client, hub, wecom, page, peer: str = "wmCust", text: str = "你好", msg_id: int = 50001):  # noqa: ANN001, ANN201
    await post(client, wecom, text_xml(WECOM["receive_id"], peer, text, msg_id))
    item = page.locator("#session-list li.session", has_text=peer)
    await item.click()
    await expect(page.locator("#message-list")).to_contain_text(text)
    return int(await item.get_attribute("data-id"))


def ticket(tid: int, updated_at: float, **kw) -> dict:  # noqa: ANN003
    return {"ticket": {"id": tid, "title": "破损退货", "status": "open", "priority": "normal", "group": "presales",
                       "assignee_id": None, "due_at": None, "overdue_at": None, "updated_at": updated_at, **kw}}


def alert(aid: int, session_id: int | None, **kw) -> dict:  # noqa: ANN003
    return {"id": aid, "kind": "first_reply", "rule_name": "首响 60 秒", "session_id": session_id, "state": "open",
            "agent_id": None, "detail": {}, **kw}


async def test_ticket_and_alert_events_move_the_resume_point(client, hub, wecom, browser):  # noqa: ANN001
    errors: list[str] = []
    page, alice = await online(client, hub, browser, errors)
    sid = await customer_session(client, hub, wecom, page)
    await hub.push.to_user(alice.id, "ticket.created", ticket(1, 100.0))
    await hub.push.to_user(alice.id, "alert.escalated", alert(7, sid, rule_name="升级规则"))
    await hub.push.to_user(alice.id, "ticket.updated", ticket(1, 101.0, status="in_progress"))
    await hub.push.to_user(alice.id, "alert.raised", alert(8, sid))
    await expect(page.locator("#toasts .toast", has_text="预警升级")).to_have_count(1)
    await expect(page.locator("#toasts .toast", has_text="首响 60 秒")).to_have_count(1)
    last = await hub.push.streams.last_seq(alice.id)
    await asyncio.sleep(1.0)  # past the gap timer (0.7 s): nothing is missing
    assert await page.evaluate("Hub.state.lastSeq") == last
    assert await page.evaluate("Hub.state.ahead.size") == 0
    # a replay of the whole stream (an overlapping resume) applies nothing twice: no second toast
    resumed = await page.evaluate("Hub.call('resume', {epoch: Hub.state.epoch, last_seq: 0})")
    assert resumed["ok"] and resumed["replayed"] == last
    await asyncio.sleep(0.5)
    await expect(page.locator("#toasts .toast", has_text="首响 60 秒")).to_have_count(1)
    await expect(page.locator("#toasts .toast", has_text="预警升级")).to_have_count(1)
    assert await page.evaluate("Hub.state.lastSeq") == last
    assert not errors, errors


async def test_a_reply_queued_before_an_internal_error_is_kept_and_retried_once(client, hub, wecom, browser):  # noqa: ANN001
    """The reply's outbound row was committed, then a later update failed (an ``internal`` ack): the
    console keeps it as unsent, and the retry (same client_id) does not send it a second time."""
    errors: list[str] = []
    page, alice = await online(client, hub, browser, errors)
    await customer_session(client, hub, wecom, page)
    real_update, failed = hub.sessions._update, []

    async def update_fails_once(session_id, values, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if "last_agent_at" in values and not failed:
            failed.append(session_id)
            raise RuntimeError("database went away after the enqueue")
        return await real_update(session_id, values, *args, **kwargs)

    hub.sessions._update = update_fails_once
    await page.fill("#reply", "稍等，我帮您查一下")
    await page.press("#reply", "Enter")
    pending = page.locator(".msg.out", has_text="稍等，我帮您查一下")
    await expect(pending.locator(".delivery")).to_contain_text("未发出")
    await expect(page.locator("#reply")).to_have_value("")  # not put back to be sent again by hand
    assert await count_messages(hub, direction="out", sender=f"agent:{alice.id}") == 1
    await pending.locator("button.retry").click()
    await expect(page.locator(".msg.out", has_text="稍等，我帮您查一下")).to_have_count(1)
    await expect(page.locator(".msg.out", has_text="稍等，我帮您查一下").locator(".delivery")).not_to_contain_text("未发出")
    assert await count_messages(hub, direction="out", sender=f"agent:{alice.id}") == 1
    assert not [e for e in errors if "favicon" not in e], errors


async def test_a_supervisors_reply_in_an_agents_session_shows_its_delivery(client, hub, wecom, browser):  # noqa: ANN001
    """message.new of a reply goes to the session's holder only: the supervisor who wrote it reads it
    back, and its message.status (which does reach the writer) moves it on from "发送中"."""
    errors: list[str] = []
    page, _alice = await online(client, hub, browser, errors)
    await customer_session(client, hub, wecom, page, peer="wmHeld", text="能便宜点吗")
    sam = await make_user(hub, "sam", role="supervisor", groups=("presales",))
    sup = await new_page(browser, errors)
    await log_in(sup, server_url(client), "sam")
    await sup.goto(server_url(client) + "/console")
    await sup.locator("#session-list li.session", has_text="wmHeld").click()
    await expect(sup.locator("#message-list")).to_contain_text("能便宜点吗")
    await sup.fill("#reply", "我是主管，给您申请了优惠券")
    await sup.press("#reply", "Enter")
    await wait_for(lambda: count_messages(hub, direction="out", sender=f"agent:{sam.id}"))
    mine = sup.locator(".msg.out", has_text="我是主管，给您申请了优惠券")
    await expect(mine.locator(".delivery")).not_to_have_text("发送中…")
    await hub.outbound.drain()
    await expect(mine.locator(".delivery")).to_have_text("已送达")
    await expect(mine).to_have_count(1)
    assert not [e for e in errors if "favicon" not in e], errors


async def test_a_restarted_hubs_stream_forgets_the_old_seqs(client, hub, wecom, browser):  # noqa: ANN001
    """After a hub restart (a new epoch, seqs from 1 again) the seqs the console kept from the old
    stream (a removal at seq 900, a session added at seq 900) neither hide a session nor keep a ghost."""
    errors: list[str] = []
    page, _alice = await online(client, hub, browser, errors)
    sid = await customer_session(client, hub, wecom, page, peer="wmStay", text="还在吗")
    await page.evaluate("""(sid) => {
        const S = Hub.state, e = S.sessions.get(sid);
        Hub.socket.disconnect();
        S.sessions.set(99999, Object.assign({}, e, {s: Object.assign({}, e.s, {id: 99999, peer_id: 'wmGhost'}),
                                                  customer: {name: 'wmGhost'}, addedSeq: 900}));
        S.removedSeq[sid] = 900;      // taken away late in the old stream...
        S.currentId = null;
        S.sessions.delete(sid);       // ...and not in the list any more
        S.epoch = 'before-the-restart'; S.lastSeq = 950;
        Hub.renderAll(); Hub.socket.connect();
    }""", sid)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    await expect(page.locator(f"#session-list li.session[data-id='{sid}']")).to_have_count(1)
    await expect(page.locator("#session-list li.session[data-id='99999']")).to_have_count(0)
    assert not [e for e in errors if "favicon" not in e], errors


async def test_a_reply_failing_after_its_session_closed_shows_in_the_top_bar(client, hub, wecom, browser):  # noqa: ANN001
    """微信客服 reports a failure after the agent closed the session: the session has left the list, so
    the top bar says whose reply did not arrive and why, until dismissed."""
    errors: list[str] = []
    page, _alice = await online(client, hub, browser, errors)
    await customer_session(client, hub, wecom, page, peer="wmGone", text="退款到了吗", msg_id=50901)
    await page.fill("#reply", "已经退了，请查收")
    await page.press("#reply", "Enter")
    await expect(page.locator(".msg.out", has_text="已经退了").locator(".delivery")).not_to_have_text("发送中…")
    [reply] = await messages(hub, peer_id="wmGone", direction="out", text="已经退了，请查收")
    await page.click("#close-btn")
    await page.click("#close-submit")
    await expect(page.locator("#session-list li.session")).to_have_count(0)
    assert await hub.outbound.failed_after_send(reply.id, 3_000_005, "会话已关闭")
    notice = page.locator("#send-failed")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text("wmGone")
    await expect(notice).to_contain_text("已经退了，请查收")
    await expect(notice).to_contain_text("会话已关闭")
    await notice.locator("button.dismiss").click()
    await expect(notice).to_be_hidden()
    assert not [e for e in errors if "favicon" not in e], errors


async def test_transfer_and_close_wait_for_a_pending_reply(client, hub, wecom, browser):  # noqa: ANN001
    errors: list[str] = []
    page, _alice = await online(client, hub, browser, errors)
    await customer_session(client, hub, wecom, page, peer="wmWait", text="发票呢")
    real_reply, release = hub.sessions.reply, asyncio.Event()

    async def slow_reply(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        await release.wait()
        return await real_reply(*args, **kwargs)

    hub.sessions.reply = slow_reply
    try:
        await page.fill("#reply", "马上给您开")
        await page.press("#reply", "Enter")
        await expect(page.locator(".msg.out", has_text="马上给您开").locator(".delivery")).to_have_text("发送中…")
        await page.click("#transfer-btn")
        await expect(page.locator("#toasts .toast", has_text="未发出")).to_have_count(1)
        await expect(page.locator("#transfer-dialog")).to_be_hidden()
        await page.click("#close-btn")
        await expect(page.locator("#toasts .toast", has_text="未发出")).to_have_count(2)
        await expect(page.locator("#close-dialog")).to_be_hidden()
    finally:
        release.set()
    await expect(page.locator(".msg.out", has_text="马上给您开").locator(".delivery")).not_to_have_text("发送中…")
    await page.click("#close-btn")  # sent: now it may close
    await expect(page.locator("#close-dialog")).to_be_visible()
    assert not [e for e in errors if "favicon" not in e], errors


async def test_a_reply_whose_ack_timed_out_but_went_through_shows_once(client, hub, wecom, browser):  # noqa: ANN001
    """Two replies whose acks take longer than the console's 15 s: A was queued (its message.new came)
    before the timeout, B after it. Neither stays as "未发出" beside its real bubble; nothing is sent twice."""
    errors: list[str] = []
    page, alice = await online(client, hub, browser, errors)
    await customer_session(client, hub, wecom, page, peer="wmSlow", text="在吗")
    real_reply, release, b_go, calls = hub.sessions.reply, asyncio.Event(), asyncio.Event(), []

    async def slow_reply(user, session_id, text, client_id=None):  # noqa: ANN001, ANN202
        calls.append(text)
        if calls.count(text) > 1:  # a re-send (same client_id): no copy may show beside the real bubble meanwhile
            await asyncio.sleep(0.5)  # (a round trip as long as PostgreSQL's can be: else a few ms on SQLite)
            return await real_reply(user, session_id, text, client_id)
        if text == "回复A":  # queued at once, the ack is what is late
            mid = await real_reply(user, session_id, text, client_id)
            await release.wait()
            return mid
        await b_go.wait()  # B: queued only after the console gave up waiting
        return await real_reply(user, session_id, text, client_id)

    hub.sessions.reply = slow_reply
    try:
        for text in ("回复A", "回复B"):
            await page.fill("#reply", text)
            await page.press("#reply", "Enter")
        await expect(page.locator(".msg.out", has_text="回复B").locator(".delivery")).to_contain_text("未发出",
                                                                                                      timeout=20000)
        # A's re-send is under way (its message came before the timeout): no second bubble meanwhile
        assert await page.locator(".msg.out", has_text="回复A").count() == 1
        b_go.set()
        await expect(page.locator(".msg.out:not([data-mid=''])", has_text="回复B")).to_have_count(1)  # its message
        assert await page.locator(".msg.out", has_text="回复B").count() == 1  # and B's re-send under way: no copy
        for text in ("回复A", "回复B"):
            await expect(page.locator(".msg.out", has_text=text)).to_have_count(1)
            await expect(page.locator(".msg.out", has_text=text).locator(".delivery")).not_to_contain_text("未发出")
    finally:
        release.set()
        b_go.set()
    assert await count_messages(hub, direction="out", sender=f"agent:{alice.id}") == 2
    assert not [e for e in errors if "favicon" not in e], errors


async def test_alt_shortcuts_wait_while_a_dialog_is_open(client, hub, wecom, browser):  # noqa: ANN001
    errors: list[str] = []
    page, _alice = await online(client, hub, browser, errors)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmOther", "我先来的", 50101))
    await expect(page.locator("#session-list li.session")).to_have_count(1)
    await customer_session(client, hub, wecom, page, peer="wmMine", text="要转接", msg_id=50102)
    for button, dialog in (("#close-btn", "#close-dialog"), ("#transfer-btn", "#transfer-dialog"),
                           ("#ticket-btn", "#ticket-dialog"), ("#tickets-btn", "#tickets-dialog")):
        await page.click(button)
        await expect(page.locator(dialog)).to_be_visible()
        await page.keyboard.press("Alt+ArrowDown")
        await asyncio.sleep(0.2)
        await expect(page.locator("#chat-name")).to_have_text("wmMine")
        await page.keyboard.press("Escape")
        await expect(page.locator(dialog)).to_be_hidden()
    # the close dialog closes the session it was opened for
    await page.click("#close-btn")
    await page.click("#close-submit")
    await expect(page.locator("#session-list li.session")).to_have_count(1)
    await expect(page.locator("#session-list li.session")).to_contain_text("wmOther")
    assert not [e for e in errors if "favicon" not in e and "Failed to load resource" not in e], errors


async def test_the_wait_timer_stops_on_a_reply_when_the_pc_clock_is_behind(client, hub, wecom, browser):  # noqa: ANN001
    errors: list[str] = []
    await make_user(hub, "alice")
    await hub.settings.set("default_group", "presales")
    page = await new_page(browser, errors)
    await page.add_init_script("(() => { const real = Date.now; Date.now = () => real() - 600000; })()")  # 10 min slow
    await log_in(page, server_url(client), "alice")
    await go_online(page, hub, (await hub_user(hub, "alice")).id)
    await customer_session(client, hub, wecom, page, peer="wmClock", text="多久发货")
    item = page.locator("#session-list li.session", has_text="wmClock")
    await expect(item.locator(".wait")).to_contain_text("等待")
    await page.fill("#reply", "今天就发")
    await page.press("#reply", "Enter")
    await expect(page.locator(".msg.out", has_text="今天就发").locator(".delivery")).not_to_have_text("发送中…")
    await asyncio.sleep(1.2)  # a tick of the wait timers
    await expect(item.locator("[data-wait]")).not_to_contain_text("等待")
    assert not [e for e in errors if "favicon" not in e], errors


async def hub_user(hub, username: str):  # noqa: ANN001, ANN201
    return next(a for a in hub.sessions.agents.values() if a.username == username)


async def test_a_returning_customers_new_session_is_one_unread(client, hub, wecom, browser):  # noqa: ANN001
    errors: list[str] = []
    page, alice = await online(client, hub, browser, errors)
    await hub.settings.set("reopen_window", 0)  # a new session, not the old one reopened
    sid = await customer_session(client, hub, wecom, page, peer="wmBack", text="面霜敏感肌能用吗")
    for i, text in enumerate(("还有小样吗", "在吗")):
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmBack", text, 50201 + i))
    await expect(page.locator("#message-list")).to_contain_text("在吗")
    await page.fill("#reply", "可以的，有小样")
    await page.press("#reply", "Enter")
    await expect(page.locator(".msg.out", has_text="可以的").locator(".delivery")).not_to_have_text("发送中…")
    await hub.sessions.close(alice, sid, "resolved")
    await page.reload()  # nothing open: the new session is not being watched
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    await expect(page.locator("#session-list li.session")).to_have_count(0)
    await asyncio.sleep(1.1)  # the pipeline's clock: the new message is later than the reply
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmBack", "上次的面霜到了，怎么用", 50210))
    item = page.locator("#session-list li.session", has_text="wmBack")
    await expect(item).to_have_count(1)
    assert int(await item.get_attribute("data-id")) != sid
    await expect(item.locator(".unread")).to_have_text("1")
    assert not [e for e in errors if "favicon" not in e], errors


async def test_the_list_shows_each_sessions_latest_message_after_a_reload(client, hub, wecom, browser):  # noqa: ANN001
    """A session not opened since the page loaded showed the session's first message and its handover
    time: after a reload every preview was the customer's opening line, whatever they wrote since."""
    errors: list[str] = []
    page, alice = await online(client, hub, browser, errors)
    for i, text in enumerate(("面霜敏感肌能用吗", "另外保质期多久")):
        await post(client, wecom, text_xml(WECOM["receive_id"], "wmLatest", text, 50301 + i))
    item = page.locator("#session-list li.session", has_text="wmLatest")
    await expect(item.locator(".preview")).to_have_text("另外保质期多久")  # live: from message.new
    await page.reload()
    await expect(page.locator("#conn")).to_have_attribute("data-state", "connected")
    await expect(item.locator(".preview")).to_have_text("另外保质期多久")  # from the list
    await page.fill("#session-filter", "保质期")  # the filter looks at it too
    await expect(page.locator("#session-list li.session")).to_have_count(1)
    assert not [e for e in errors if "favicon" not in e], errors


async def test_a_supervisors_list_is_every_session_with_who_holds_it(client, hub, wecom, browser):  # noqa: ANN001
    """A supervisor's list holds every open session; it was headed "my sessions" and did not say whose."""
    errors: list[str] = []
    page, alice = await online(client, hub, browser, errors)
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmHeld", "请问有货吗", 50401))
    await expect(page.locator("#session-list li.session", has_text="wmHeld")).to_have_count(1)
    await expect(page.locator("#session-list .holder")).to_have_count(0)  # an agent's own: no holder shown
    assert "我的会话" in await page.locator("aside.sessions h2").inner_text()
    await make_user(hub, "sam", role="supervisor", groups=())
    sup = await new_page(browser, errors)
    await log_in(sup, server_url(client), "sam")
    item = sup.locator("#session-list li.session", has_text="wmHeld")
    await expect(item.locator(".holder")).to_have_text(alice.display_name)
    assert "全部会话" in await sup.locator("aside.sessions h2").inner_text()
    assert not [e for e in errors if "favicon" not in e], errors


async def test_alerts_are_reloaded_on_resync(client, hub, wecom, browser):  # noqa: ANN001
    errors: list[str] = []
    page, alice = await online(client, hub, browser, errors)
    sid = await customer_session(client, hub, wecom, page, peer="wmAlert", text="怎么还不回")
    # an alert the console holds but that was cleared while its events could not be recorded
    await page.evaluate("(sid) => { HubAlerts.open.set(999, {id: 999, kind: 'unanswered', session_id: sid,"
                        " state: 'open'}); HubAlerts.paint(); }", sid)
    item = page.locator(f"#session-list li.session[data-id='{sid}']")
    await expect(item).to_have_class(class_re("sla-alert"))
    await hub.push.resync_users({alice.id})
    await expect(item).not_to_have_class(class_re("sla-alert"))
    assert await page.evaluate("HubAlerts.open.size") == 0
    assert not [e for e in errors if "favicon" not in e], errors


def class_re(word: str):  # noqa: ANN201
    import re
    return re.compile(rf"\b{word}\b")


async def test_search_load_older_clicked_twice_loads_one_page(client, hub, browser):  # noqa: ANN001
    from hub.archive.search.wiring import INDEXER
    from tests.helpers import messages
    from tests.test_operator_pages import log_in as log_in_at
    from tests.test_search import archive
    hub.app_indexer = client.server.app[INDEXER]
    await make_user(hub, "sue", role="supervisor", groups=())
    await archive(hub, [f"第{i}条消息" for i in range(250)], peer="wm-long")
    conv_id = (await messages(hub, peer_id="wm-long"))[0].conversation_id
    errors: list[str] = []
    page = await new_page(browser, errors)
    await log_in_at(page, server_url(client), "sue", "/supervisor/search")
    await page.goto(server_url(client) + f"/supervisor/search?conv={conv_id}")
    await expect(page.locator("#conv-note")).to_contain_text("已加载 100 条")
    await page.dblclick("#conv-older")
    await expect(page.locator("#conv-note")).to_contain_text("已加载 200 条")
    await asyncio.sleep(0.5)
    await expect(page.locator("#conv-note")).to_contain_text("已加载 200 条")
    mids = await page.eval_on_selector_all("#conv-messages li.msg", "els => els.map(e => e.dataset.mid)")
    assert len(mids) == len(set(mids)) == 200
    assert not [e for e in errors if "favicon" not in e], errors


async def test_refusals_and_removals_are_told_in_chinese(client, hub, wecom, browser):  # noqa: ANN001
    """A session taken away for an SLA breach or a disabled account, and refusals with no label of their
    own (a field's invalid_*, a thing gone: unknown_*), showed the server's English or a bare code."""
    errors: list[str] = []
    page, _ = await online(client, hub, browser, errors)
    text = await page.evaluate("""() => [
        HubUtil.LABELS.removed.sla_breach, HubUtil.LABELS.removed.agent_disabled,
        HubUtil.errorText({error: "unknown_group", message: "no group 售前组"}),
        HubUtil.errorText({error: "invalid_title", field: "title", message: "title: no NUL character"}),
        HubUtil.errorText({error: "unknown_watch", message: "no watch 9"}),
        HubUtil.errorText({error: "something_new", message: "Something new"})]""")
    assert text[:2] == ["超出服务时限，会话已由主管重新分配", "你的账号已停用，会话已重新排队"]
    assert text[2:5] == ["没有这个技能组", "输入有误（title），请检查后重试", "要操作的对象不存在或已被删除，请刷新"]
    assert text[5] == "Something new"  # nothing to say better: the server's words
    assert not errors, errors


async def test_a_transferred_session_notifies_who_handed_it_on_and_their_note(client, hub, wecom, browser, desk):  # noqa: ANN001
    """The new-session notification of a transferred session said the customer's first message: the
    receiving agent could not tell it came from a colleague, nor read the note, without opening it."""
    await make_user(hub, "bob", display_name="王小明")
    bob = await desk("bob")
    assert (await bob.call("status", {"status": "online"}))["ok"]
    await post(client, wecom, text_xml(WECOM["receive_id"], "wmHanded", "发票开错了", 50101))
    [bundle] = await bob.wait("session.new")
    errors: list[str] = []
    page, alice = await online(client, hub, browser, errors)
    await page.evaluate("() => { window._alerts = []; Hub.alertNew = (n, t) => window._alerts.push([n, t]); }")
    ack = await bob.call("transfer", {"session_id": bundle["session"]["id"], "to_agent": alice.id,
                                      "note": "发票问题，麻烦跟进"})
    assert ack["ok"], ack
    await wait_for(lambda: page.evaluate("window._alerts.length"))
    [[name, text]] = await page.evaluate("window._alerts")
    assert "wmHanded" in name and text == "转接自 王小明：发票问题，麻烦跟进"
    assert errors == []
