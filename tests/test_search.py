"""Archive search: recall equal to a substring scan whatever the segmentation (randomised against
LIKE and Python's ``in``), filters, highlighting, paging, export, roles, bad input, the
background indexer and its cursor, and the command line."""
from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import subprocess
import sys

import pytest
from sqlalchemy import select, text, update

from hub.archive.search import query
from hub.archive.search.highlight import highlight
from hub.archive.search.indexer import PASS_LOCK, SearchIndexer, backend
from hub.archive.search.tokens import contains_all, fts5_expression, index_terms, lookup_terms, normalize, parse_query
from hub.archive.search.wiring import INDEXER
from hub.archive.store import ToArchive
from hub.messages import Text
from hub.models import Conversation, Message, SearchCursor
from tests.conftest import OA, ROOT, WECOM, auth
from tests.helpers import post, wait_for
from tests.rt_helpers import login, make_user
from tests.wechat_client import text_xml

WORDS = ("退款", "物流", "快递", "发货", "尺码", "过敏", "优惠券", "发票", "退货", "换货", "到账", "全额", "订单",
         "敏感肌", "面霜", "急用", "客服", "包邮", "小样", "正品", "iPhone", "ＳＫＵ", "2024", "，", "？", "😊")


def sentence(rng: random.Random) -> str:
    return "".join(rng.choice(WORDS) + (" " if rng.random() < 0.1 else "") for _ in range(rng.randint(2, 9)))


async def archive(hub, texts: list[str], account: str = WECOM["id"], peer: str = "u1", channel: str = "wecom",
                  direction: str = "in", sender: str = "customer", start: int = 0) -> list[int]:  # noqa: ANN001
    """Archive texts through the real archive writer (no pipeline job), then index them."""
    items = [ToArchive(account, Text(channel=channel, peer_id=peer, sent_at=1_700_000_000 + i, msg_id=f"{peer}-{start + i}",
                                     direction=direction, sender=sender, content=t), job=None)
             for i, t in enumerate(texts)]
    saved = await hub.writer.save(items)
    await hub.app_indexer.catch_up()
    return [s.message_id for s in saved]


@pytest.fixture
def hub(client):  # noqa: F811 - the conftest hub plus a handle on the indexer
    from hub.app import HUB
    h = client.server.app[HUB]
    h.app_indexer = client.server.app[INDEXER]
    return h


async def search(client, q: str, **params) -> dict:  # noqa: ANN001
    resp = await client.get("/api/search", params={"q": q, **{k: str(v) for k, v in params.items()}}, headers=auth())
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def all_ids(client, q: str, **params) -> list[int]:  # noqa: ANN001
    ids, before = [], None
    while True:
        page = await search(client, q, limit=200, **params, **({"before": before} if before else {}))
        ids += [r["message_id"] for r in page["results"]]
        before = page["next_before"]
        if before is None:
            return ids


# --- pure -----------------------------------------------------------------------------------------

def test_terms_are_characters_and_neighbour_pairs_within_runs():
    terms = index_terms("退款到账 OK？")
    assert terms.unigrams[:4] == ["退", "款", "到", "账"] and terms.bigrams[:3] == ["退款", "款到", "到账"]
    assert "账o" not in terms.bigrams  # whitespace ends a run
    assert len(terms.bigrams) == 3 + 2  # "ok?" -> ok, k?
    assert index_terms(None).unigrams == [] and index_terms("").bigrams == []


def test_query_terms_normalised_deduplicated_and_bounded():
    assert [t.text for t in parse_query("  ＳＫＵ  sku 款到 ")] == ["sku", "款到"]
    both = parse_query("退款 退款到账")
    assert [t.text for t in lookup_terms(both)] == ["退款到账"]  # a term inside another adds nothing to the lookup
    assert fts5_expression(both) == 'bi : "退款 款到 到账"'
    assert highlight("退款到账了，另一单也要退款", both) == "<mark>退款到账</mark>了，另一单也要<mark>退款</mark>"
    for bad in ("", "   ", " ".join(str(i) * 2 for i in range(9)), "长" * 65):
        with pytest.raises(ValueError):
            parse_query(bad)


def test_highlight_escapes_html_and_marks_every_match():
    terms = parse_query("过敏 sku")
    assert highlight("<b>过敏</b> & SKU过敏", terms) == \
        "&lt;b&gt;<mark>过敏</mark>&lt;/b&gt; &amp; <mark>SKU过敏</mark>"
    long = "甲" * 300 + "过敏" + "乙" * 300
    out = highlight(long, terms)
    assert out.startswith("…") and out.endswith("…") and "<mark>过敏</mark>" in out and len(out) < 200
    assert highlight("Ｓｋｕ", terms) == "<mark>Ｓｋｕ</mark>"  # full width matched, shown as written


# --- through the hub ------------------------------------------------------------------------------

async def test_recall_equals_substring_scan_whatever_the_segmentation(client, hub):
    rng = random.Random(7)
    texts = [sentence(rng) for _ in range(300)]
    ids = await archive(hub, texts)
    by_id = dict(zip(ids, texts))
    queries = ["款到", "额退", "退款到账", "过敏", "敏", "款", "肌面", "券发", "iphone", "PHONE2", "sku", "２０２", "4退",
               "，急", "？", "😊", "😊客", "不存在的词"]
    for _ in range(40):  # random substrings of the texts: most cross word boundaries
        t = rng.choice(texts).replace(" ", "")
        i = rng.randrange(len(t))
        queries.append(t[i:i + rng.randint(1, 6)])
    for q in queries:
        found = await all_ids(client, q)
        expected = sorted((i for i, t in by_id.items() if normalize(q) in normalize(t)), reverse=True)
        assert found == expected, q
        if hub.db.is_sqlite:  # whatever LIKE finds is found (LIKE is ASCII case-insensitive, not width-folding)
            async with hub.db.read() as conn:
                like = {r[0] for r in (await conn.execute(text(
                    "SELECT id FROM messages WHERE text LIKE :p ESCAPE '\\'"),
                    {"p": "%" + q.replace("%", "\\%").replace("_", "\\_") + "%"})).all()}
            assert like <= set(found), q
    multi = await all_ids(client, "退款 过敏")
    assert multi == sorted((i for i, t in by_id.items() if "退款" in t and "过敏" in t), reverse=True)
    assert multi


async def test_page_is_newest_first_keyset_paged_and_highlighted(client, hub):
    ids = await archive(hub, [f"第{i}单 <i>退款</i> 到了吗" for i in range(7)] + ["无关的消息"])
    first = await search(client, "退款", limit=3)
    assert [r["message_id"] for r in first["results"]] == ids[6:3:-1]
    assert first["results"][0]["highlight"] == "第6单 &lt;i&gt;<mark>退款</mark>&lt;/i&gt; 到了吗"
    assert first["terms"] == ["退款"] and first["next_before"] == ids[4]
    second = await search(client, "退款", limit=3, before=first["next_before"])
    third = await search(client, "退款", limit=3, before=second["next_before"])
    assert [r["message_id"] for r in second["results"] + third["results"]] == ids[3::-1][:4]
    assert third["next_before"] is None
    hit = third["results"][0]
    assert hit["conversation_id"] and hit["account_id"] == WECOM["id"] and hit["direction"] == "in"
    assert hit["recalled"] is False and hit["text"] == "第0单 <i>退款</i> 到了吗"


async def test_filters(client, hub, monkeypatch):
    a = await archive(hub, ["过敏了怎么办", "过敏还能退吗"], peer="p1")
    b = await archive(hub, ["我也过敏"], account=OA["id"], peer="p2", channel="oa")
    agent = await make_user(hub, "zoe", "agent")
    c = await archive(hub, ["过敏的话可以退"], peer="p1", direction="out", sender=f"agent:{agent.id}", start=10)
    conv_p1 = (await search(client, "过敏", direction="out"))["results"][0]["conversation_id"]
    async with hub.db.write() as conn:  # what identity resolution and channel codes record on a conversation
        await conn.execute(text("INSERT INTO customers (name, vip_level, paid_total_fen, order_count, created_at, "
                                "legal_hold) VALUES ('顾客', 0, 0, 0, 0, false)"))
        customer = (await conn.execute(text("SELECT max(id) FROM customers"))).scalar()
        await conn.execute(update(Conversation.__table__).where(Conversation.__table__.c.id == conv_p1)
                           .values(customer_id=customer, channel_code="spring-qr"))
    resp = await client.post(f"/api/customers/{customer}/tags", json={"add": ["敏感肌"]}, headers=auth())
    assert resp.status == 200, await resp.text()

    assert await all_ids(client, "过敏") == [*reversed(c), *reversed(b), *reversed(a)]
    assert await all_ids(client, "过敏", account=OA["id"]) == b
    assert await all_ids(client, "过敏", channel="oa") == b
    assert await all_ids(client, "过敏", direction="out") == c
    assert await all_ids(client, "过敏", direction="in", account=WECOM["id"]) == a[::-1]
    assert await all_ids(client, "过敏", customer=customer) == [*c, *a[::-1]]
    assert await all_ids(client, "过敏", tag="敏感肌") == [*c, *a[::-1]]
    assert await all_ids(client, "过敏", tag="没有这个标签") == []
    assert await all_ids(client, "过敏", channel_code="spring-qr") == [*c, *a[::-1]]
    assert await all_ids(client, "过敏", agent=agent.id) == c
    # the same answers when the conversation filters leave too many messages to drive the query (SQLite)
    monkeypatch.setattr(query, "SCOPED_MAX", 0)
    assert await all_ids(client, "过敏", customer=customer) == [*c, *a[::-1]]
    assert await all_ids(client, "过敏", tag="敏感肌", direction="in") == a[::-1]
    assert await all_ids(client, "过敏", agent=agent.id) == c
    assert await all_ids(client, "过敏", channel_code="spring-qr", account=OA["id"]) == []
    async with hub.db.write() as conn:  # archive times: a[0] early, the rest later
        await conn.execute(update(Message.__table__).values(created_at=2000.0))
        await conn.execute(update(Message.__table__).where(Message.__table__.c.id == a[0]).values(created_at=1000.0))
    assert await all_ids(client, "过敏", until=1500) == [a[0]]
    assert await all_ids(client, "过敏", since="1970-01-01T00:25:00Z") == [*reversed(c), *reversed(b), a[1]]


async def test_bad_input_is_a_clear_400(client, hub):
    cases = [({"q": ""}, "invalid_query", "q"), ({"q": "   "}, "invalid_query", "q"),
             ({"q": "x", "direction": "sideways"}, "invalid_direction", "direction"),
             ({"q": "x", "channel": "qq"}, "invalid_channel", "channel"),
             ({"q": "x", "since": "yesterday"}, "invalid_since", "since"),
             ({"q": "x", "since": "2000", "until": "1000"}, "invalid_until", "until"),
             ({"q": "x", "limit": "0"}, "invalid_limit", "limit"), ({"q": "x", "limit": "many"}, "invalid_limit", "limit"),
             ({"q": "x", "customer": "bob"}, "invalid_customer", "customer"),
             ({"q": "x", "before": "1.5"}, "invalid_before", "before"), ({"q": "长" * 65}, "invalid_query", "q")]
    for params, code, field in cases:
        resp = await client.get("/api/search", params=params, headers=auth())
        assert resp.status == 400, params
        body = await resp.json()
        assert (body["error"], body["field"]) == (code, field), params
    quote = await search(client, '"引号" OR * NEAR(')  # FTS syntax in a query is just text
    assert quote["results"] == []


async def test_roles_agents_get_403_supervisors_search_and_export(client, hub):
    ids = await archive(hub, ["发票什么时候开"])
    await make_user(hub, "amy", "agent")
    await make_user(hub, "sue", "supervisor")
    agent = {"Authorization": "Bearer " + await login(client, "amy")}
    sup = {"Authorization": "Bearer " + await login(client, "sue")}
    conv = (await search(client, "发票"))["results"][0]["conversation_id"]
    client.session.cookie_jar.clear()  # the logins left a session cookie
    for path in ("/api/search?q=发票", f"/api/conversations/{conv}/export?format=csv", "/api/watches",
                 "/api/watch-hits"):
        assert (await client.get(path)).status == 401, path
        assert (await client.get(path, headers=agent)).status == 403, path
        assert (await client.get(path, headers=sup)).status == 200, path
    resp = await client.get("/api/search", params={"q": "发票"}, headers=sup)
    assert [r["message_id"] for r in (await resp.json())["results"]] == ids


async def test_conversation_export_csv_and_json(client, hub):
    await archive(hub, ["第一句，含逗号", '第二句 "引号"\n换行', '=HYPERLINK("http://evil.example","点此")'],
                  peer="exp")
    conv = (await search(client, "第一句"))["results"][0]["conversation_id"]
    resp = await client.get(f"/api/conversations/{conv}/export", params={"format": "json"}, headers=auth())
    assert resp.status == 200 and "attachment" in resp.headers["Content-Disposition"]
    body = json.loads(await resp.text())
    assert body["conversation"]["id"] == conv
    assert [m["text"] for m in body["messages"]][:2] == ["第一句，含逗号", '第二句 "引号"\n换行']  # oldest first
    resp = await client.get(f"/api/conversations/{conv}/export", params={"format": "csv"}, headers=auth())
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/csv")
    import csv
    import io
    rows = list(csv.DictReader(io.StringIO((await resp.text()).lstrip("\ufeff"))))
    assert [r["text"] for r in rows][:2] == ["第一句，含逗号", '第二句 "引号"\n换行'] and rows[0]["direction"] == "in"
    # a customer's formula stays text in the supervisor's spreadsheet
    assert rows[2]["text"] == '\'=HYPERLINK("http://evil.example","点此")'
    assert (await client.get(f"/api/conversations/{conv}/export?format=xml", headers=auth())).status == 400
    resp = await client.get("/api/conversations/999999/export?format=csv", headers=auth())
    assert resp.status == 404 and (await resp.json())["error"] == "unknown_conversation"
    assert (await client.get("/api/conversations/abc/export", headers=auth())).status == 400


async def test_background_indexer_finds_new_callbacks_and_resumes_from_its_cursor(client, hub, wecom):
    assert (await post(client, wecom, text_xml("corp", "cust-9", "我对这个面霜过敏了，急用", 9001))).status == 200
    found = await wait_for(lambda: _ids(client, "面霜过敏"), timeout=10)
    assert len(found) == 1
    async with hub.db.read() as conn:
        cursor = (await conn.execute(select(SearchCursor.__table__.c.last_id)
                                     .where(SearchCursor.__table__.c.name == "messages"))).scalar()
    assert cursor >= found[0]
    again = SearchIndexer(hub.db, hub.clock)  # as after a restart: nothing is indexed twice
    assert await again.catch_up() == 0 and await again.cursor() == cursor


async def _ids(client, q: str) -> list[int]:  # noqa: ANN001
    return [r["message_id"] for r in (await search(client, q))["results"]]


async def test_command_line_search_indexes_first_and_prints_json_lines(client, hub, db_url):
    ids = await archive(hub, ["请问包邮吗", "退款到账了吗"])
    async with hub.db.write() as conn:  # as if no indexer had run on this database
        await conn.execute(update(SearchCursor.__table__).values(last_id=0))
        await backend(hub.db).clear(conn)
    run = subprocess.run([sys.executable, "-m", "hub", "archive", "search", "款到", "--json", "--db", db_url],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    assert [(h["message_id"], h["text"]) for h in lines] == [(ids[1], "退款到账了吗")]
    assert lines[0]["conversation_id"] and lines[0]["time"].endswith("+00:00")
    plain = subprocess.run([sys.executable, "-m", "hub", "archive", "search", "包邮", "--db", db_url],
                           cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and "请问包邮吗" in plain.stdout and "1 hit" in plain.stderr
    bad = subprocess.run([sys.executable, "-m", "hub", "archive", "search", " ", "--db", db_url],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "error" in bad.stderr


def test_contains_all_is_the_exact_check():
    assert contains_all("全额退款到账", parse_query("款到 全额"))
    assert not contains_all("退款 到账", parse_query("款到"))  # whitespace: not one substring, as LIKE


async def test_indexer_waits_while_callbacks_pile_up(client, hub):
    indexer = hub.app_indexer
    await indexer.catch_up()
    busy = {"on": True}
    indexer.pressure = lambda: busy["on"]
    indexer.backoff = 0.02
    before = await indexer.cursor()
    saved = await hub.writer.save([ToArchive(WECOM["id"], Text(channel="wecom", peer_id="burst", sent_at=1, msg_id="b1",
                                                             content="压力下也不丢"), job=None)])
    indexer.notify()
    await asyncio.sleep(0.3)
    assert await indexer.cursor() == before  # nothing indexed during the burst
    busy["on"] = False
    await wait_for(lambda: _ids(client, "不丢"), timeout=5)
    assert await indexer.cursor() >= saved[0].message_id


async def test_late_commit_behind_the_cursor_is_indexed_even_after_the_cursor_moved_far_on(client, hub):
    """PostgreSQL: a message whose id was taken before the cursor passed it but that committed only
    after more than LOOKBACK later ones were indexed is still found by the next look back, which
    starts before where the previous look ended (not LOOKBACK before the cursor)."""
    from tests.conftest import ON_POSTGRES
    from hub.archive.search.indexer import LOOKBACK
    if not ON_POSTGRES:
        pytest.skip("one writer on SQLite: ids commit in order")
    indexer = hub.app_indexer
    await indexer.stop()  # this test drives it
    indexer.late_every = 0.0
    first = await hub.writer.save([ToArchive(WECOM["id"], Text(channel="wecom", peer_id="late", sent_at=1, msg_id="l0",
                                                             content="第一条"), job=None)])
    await indexer.catch_up()  # a look back here: the next one starts LOOKBACK before this cursor
    async with hub.db.write() as conn:  # an id taken now, its row committed later (another process)
        reserved = (await conn.execute(text("SELECT nextval(pg_get_serial_sequence('messages', 'id'))"))).scalar()
    await hub.writer.save([ToArchive(WECOM["id"], Text(channel="wecom", peer_id="late", sent_at=2, msg_id=f"l{i}",
                                                      content="后来的"), job=None) for i in range(1, LOOKBACK + 60)])
    indexer.late_every = 3600.0  # the cursor moves on past the reserved id without looking back
    await indexer.catch_up()
    assert await indexer.cursor() > reserved + LOOKBACK
    async with hub.db.write() as conn:
        await conn.execute(text(
            "INSERT INTO messages (id, account_id, conversation_id, channel, direction, kind, peer_id, sender, dedup_key, "
            "text, data, raw, sent_at, created_at) SELECT :id, account_id, conversation_id, channel, direction, kind, "
            "peer_id, sender, 'late-commit', '迟到的消息', data, raw, sent_at, created_at FROM messages WHERE id = :src"),
            {"id": reserved, "src": first[0].message_id})
    assert await _ids(client, "迟到") == []
    indexer.late_every = 0.0
    await indexer.run_once()
    assert await _ids(client, "迟到") == [reserved]


async def test_indexers_of_several_processes_take_turns(client, hub):
    """PostgreSQL: while another process's pass holds the pass lock, a background pass leaves the batch
    to it at once (no wait on the cursor's row, no second read of the batch), and a catch-up (the CLI)
    waits for its turn; then the next pass indexes from where the other ended."""
    from tests.conftest import ON_POSTGRES
    if not ON_POSTGRES:
        pytest.skip("one process on SQLite")
    indexer = hub.app_indexer
    await indexer.stop()
    await indexer.catch_up()
    before = await indexer.cursor()
    saved = await hub.writer.save([ToArchive(WECOM["id"], Text(channel="wecom", peer_id="turns", sent_at=1,
                                                               msg_id=f"t{i}", content="轮流建索引"), job=None)
                                   for i in range(3)])
    other = SearchIndexer(hub.db, hub.clock)  # another process's indexer
    async with hub.db.engine.connect() as holder:  # that process, in the middle of a pass
        await holder.execute(text(f"SELECT pg_advisory_xact_lock({PASS_LOCK}, 0)"))
        started = asyncio.get_running_loop().time()
        assert await other.run_once() == 0
        assert asyncio.get_running_loop().time() - started < 1.0  # told at once, not blocked
        assert await other.cursor() == before and await _ids(client, "轮流") == []
        waiting = asyncio.ensure_future(other.catch_up())
        await asyncio.sleep(0.3)
        assert not waiting.done()  # the CLI's catch-up waits for its turn
        await holder.rollback()  # the other pass ends
    assert await asyncio.wait_for(waiting, 10) == 3
    assert await other.cursor() == saved[-1].message_id
    assert sorted(await _ids(client, "轮流")) == [s.message_id for s in saved]
    assert await indexer.run_once() == 0  # the first indexer goes on from the shared cursor: nothing twice


async def test_a_filter_alone_lists_the_messages_it_leaves(client, hub, oa):
    """No words, a customer (or a day, a tag...): "everything this customer said" was a 400."""
    for i, text_ in enumerate(["我想问下发货时间", "还有优惠吗"]):
        await post(client, oa, text_xml("gh", "oOnly", text_, 6201 + i))
    await post(client, oa, text_xml("gh", "oOther", "别人的问题", 6203))
    await hub.pipeline.drain()
    async with hub.db.read() as conn:
        customer = (await conn.execute(select(Conversation.__table__.c.customer_id).where(
            Conversation.__table__.c.peer_id == "oOnly"))).scalar()
    resp = await client.get("/api/search", params={"customer": str(customer), "limit": "1"}, headers=auth())
    page = await resp.json()
    assert resp.status == 200 and [r["text"] for r in page["results"]] == ["还有优惠吗"] and page["next_before"]
    more = await (await client.get("/api/search", params={"customer": str(customer), "before": str(page["next_before"])},
                                   headers=auth())).json()
    assert [r["text"] for r in more["results"]] == ["我想问下发货时间"] and more["next_before"] is None
    assert not any(r["masked"] for r in page["results"] + more["results"])  # (nothing was masked: admin)
    resp = await client.get("/api/search", headers=auth())  # neither words nor a filter
    assert resp.status == 400 and (await resp.json())["error"] == "invalid_query"


async def test_a_conversations_csv_reads_in_a_spreadsheet(client, hub, oa):
    """The CSV a supervisor opens in Excel had epoch floats for times and agent:3 for who wrote."""
    from datetime import datetime
    from zoneinfo import ZoneInfo
    alice = await make_user(hub, "alice")
    await hub.settings.set("default_group", "presales")
    await hub.sessions.set_status(alice, "online")
    await post(client, oa, text_xml("gh", "oCsv", "转人工", 6301))
    await hub.pipeline.drain()
    async with hub.db.read() as conn:
        conv, sid = (await conn.execute(text("SELECT c.id, s.id FROM conversations c JOIN service_sessions s "
                                             "ON s.conversation_id = c.id WHERE c.peer_id = 'oCsv'"))).first()
    await hub.sessions.reply(alice, sid, "您好")
    body = await (await client.get(f"/api/conversations/{conv}/export", params={"format": "csv"}, headers=auth())).text()
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert [r["sender_name"] for r in rows] == ["客户", "alice"]
    first = datetime.fromtimestamp(float(rows[0]["created_at"]), ZoneInfo("Asia/Shanghai"))
    assert rows[0]["local_time"] == first.strftime("%Y-%m-%d %H:%M:%S")


async def test_an_image_listed_by_a_filter_is_not_marked_masked(client, hub, oa):
    from hub.callbacks import xmlcodec
    image = xmlcodec.render({"ToUserName": "gh", "FromUserName": "oPic", "CreateTime": 1732261000, "MsgType": "image",
                             "PicUrl": "https://img.example.com/p.jpg", "MediaId": "MEDIA", "MsgId": "6401"})
    await post(client, oa, image)
    await hub.pipeline.drain()
    async with hub.db.read() as conn:
        customer = (await conn.execute(select(Conversation.__table__.c.customer_id).where(
            Conversation.__table__.c.peer_id == "oPic"))).scalar()
    page = await (await client.get("/api/search", params={"customer": str(customer)}, headers=auth())).json()
    assert [(r["kind"], r["masked"]) for r in page["results"]] == [("image", False)]
