"""An FAQ export edited in Excel and imported again: it updates the entries (it added every one a
second time, and the bot kept the old answers), keeps the disabled ones disabled, opens in Excel
(BOM, formula guard) and comes back as it went out; a file past the callbacks' 64 KiB cap imports."""
from __future__ import annotations

import json

from tests.conftest import auth

FAQS = [{"question": "包邮吗？", "similar": ["运费多少"], "answer": "满99元包邮。", "category": "物流"},
        {"question": "=HYPERLINK(\"http://evil.example\",\"点此\")", "answer": "-1+1 是一个算式", "category": "@SUM(1)"},
        {"question": "停售的套装还有吗", "answer": "已停售。", "enabled": False}]


async def _import(client, body, fmt: str = "csv"):  # noqa: ANN001, ANN202
    resp = await client.post(f"/api/faq/import?format={fmt}", data=body, headers=auth())
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def _faqs(client) -> list[dict]:  # noqa: ANN001
    return (await (await client.get("/api/faq", headers=auth())).json())["faqs"]


async def test_an_edited_export_imported_again_updates_the_entries(client, hub):
    assert (await _import(client, json.dumps(FAQS), "json"))["imported"] == 3
    exported = await (await client.get("/api/faq/export", headers=auth())).read()
    text = exported.decode("utf-8")
    assert text.startswith("\ufeff")  # Excel reads UTF-8 without one as GBK
    assert "'=HYPERLINK" in text and "'-1+1" in text and "'@SUM(1)" in text  # shown as text, not run
    assert text.splitlines()[0] == "\ufeffquestion,similar,answer,category,enabled"
    edited = text.replace("满99元包邮。", "全场满59元包邮。")
    result = await _import(client, edited.encode("utf-8"))
    assert (result["imported"], result["updated"], result["rejected"]) == (0, 3, [])
    faqs = {f["question"]: f for f in await _faqs(client)}
    assert len(faqs) == 3 and faqs["包邮吗？"]["answer"] == "全场满59元包邮。"
    assert faqs["停售的套装还有吗"]["enabled"] is False
    assert faqs[FAQS[1]["question"]]["answer"] == "-1+1 是一个算式" and faqs[FAQS[1]["question"]]["category"] == "@SUM(1)"
    matched = await (await client.post("/api/faq/match", json={"text": "包邮吗"}, headers=auth())).json()
    assert "59" in json.dumps(matched, ensure_ascii=False)
    again = await (await client.get("/api/faq/export?format=json", headers=auth())).json()
    assert [e["enabled"] for e in again] == [True, True, False]


async def test_a_similar_question_may_not_hold_the_csv_separator(client, hub):
    resp = await client.post("/api/faq", json={"question": "套装", "answer": "有", "similar": ["A|B 套装还有吗"]},
                             headers=auth())
    assert resp.status == 400 and (await resp.json())["field"] == "similar"


async def test_an_import_larger_than_the_callback_cap(client, hub):
    many = [{"question": f"第{i}个常见问题：这款面霜适合什么肤质使用呢", "answer": "适合所有肤质，敏感肌请先在耳后试用。" * 3}
            for i in range(400)]
    body = json.dumps(many, ensure_ascii=False).encode()
    assert len(body) > 64 * 1024
    assert (await _import(client, body, "json"))["imported"] == 400
