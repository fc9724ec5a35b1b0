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
    assert (await resp.json()) == {"imported": 1, "rejected": []}
    faqs = (await (await client.get("/api/faq", headers=auth())).json())["faqs"]
    assert [(f["question"], f["similar"], f["answer"], f["category"]) for f in faqs] == [
        ("发票怎么开", ["开发票", "要发票"], "下单时备注抬头即可", "售后")]

    utf8_bom = "\ufeffquestion,answer\n包邮吗,全国包邮\n".encode("utf-8")
    resp = await client.post("/api/faq/import", data=utf8_bom, headers={**auth(), "Content-Type": "text/csv"})
    assert (await resp.json()) == {"imported": 1, "rejected": []}

    junk = b"question,answer\n\x81\x20\xff\xfe,x\n"  # neither UTF-8 nor GB18030
    resp = await client.post("/api/faq/import", data=junk, headers={**auth(), "Content-Type": "text/csv"})
    assert resp.status == 200
    body = await resp.json()
    assert body["imported"] == 0 and body["rejected"][0]["line"] == 1
    assert "UTF-8" in body["rejected"][0]["message"]
