"""FAQ import over the API: a file as Excel/WPS save it on a Chinese Windows (GBK), or one in no
encoding at all, is read or refused, never a 500."""
from __future__ import annotations

import pytest

from hub.app import create_app
from hub.clock import FakeClock
from tests.conftest import auth


@pytest.fixture
async def client(aiohttp_client, hub_config):
    return await aiohttp_client(create_app(hub_config, FakeClock(1_732_500_000.0)))


async def test_gbk_csv_import_is_read_and_undecodable_file_is_reported(client):
    csv_gbk = "question,similar,answer,category\n发票怎么开,开发票|要发票,下单时备注抬头即可,售后\n".encode("gbk")
    resp = await client.post("/api/faq/import?format=csv", data=csv_gbk,
                             headers={**auth(), "Content-Type": "text/csv"})
    assert resp.status == 200, await resp.text()
    assert (await resp.json()) == {"imported": 1, "updated": 0, "rejected": []}
    faqs = (await (await client.get("/api/faq", headers=auth())).json())["faqs"]
    assert [(f["question"], f["similar"], f["answer"], f["category"]) for f in faqs] == [
        ("发票怎么开", ["开发票", "要发票"], "下单时备注抬头即可", "售后")]

    utf8_bom = "\ufeffquestion,answer\n包邮吗,全国包邮\n".encode("utf-8")
    resp = await client.post("/api/faq/import", data=utf8_bom, headers={**auth(), "Content-Type": "text/csv"})
    assert (await resp.json()) == {"imported": 1, "updated": 0, "rejected": []}

    junk = b"question,answer\n\x81\x20\xff\xfe,x\n"  # neither UTF-8 nor GB18030
    resp = await client.post("/api/faq/import", data=junk, headers={**auth(), "Content-Type": "text/csv"})
    assert resp.status == 200
    body = await resp.json()
    assert body["imported"] == 0 and body["rejected"][0]["line"] == 1
    assert "UTF-8" in body["rejected"][0]["message"]


async def test_rejected_row_is_reported_by_the_line_it_starts_on(client):
    """An answer in quotes spans lines: a bad row was reported by the line it ENDS on, so the import
    dialog showed the tail of its answer as the rejected line (empty lines are still skipped, a row of
    empty cells still rejected)."""
    text = ("question,similar,answer,category\n"
            "发票怎么开,,\"下单时备注抬头，\n发货后三天内开出\",售后\n"  # lines 2-3
            "\n"  # line 4: empty
            ",,\"这一行\n没有问题\n只有答案\",\n"  # lines 5-7: no question
            "包邮吗,,全国包邮,\n"  # line 8
            ",,,\n"  # line 9: empty cells
            "能退吗,,七天无理由,售后,多余\n")  # line 10: too many values
    resp = await client.post("/api/faq/import", data=text.encode(), headers={**auth(), "Content-Type": "text/csv"})
    body = await resp.json()
    assert body["imported"] == 2
    assert [(r["line"], r["field"]) for r in body["rejected"]] == [(5, "question"), (9, "question"), (10, None)]
    lines = text.split("\n")
    assert lines[5 - 1].startswith(",,\"这一行")  # what the import dialog shows for it (rawLine)
