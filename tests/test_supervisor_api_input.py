"""The supervision API answers bad numbers with a 400 naming the field, never a 500 nor a silent
default: NaN / infinite / overflowing times, ids past BIGINT, a zero limit."""
from __future__ import annotations

import pytest

from tests.conftest import auth

JSON = {**auth(), "Content-Type": "application/json"}


@pytest.mark.parametrize("body,field", [
    ('{"conversation_id": 100000000000000000000000}', "conversation_id"),
    ('{"conversation_id": -5}', "conversation_id"),
    ('{"since": 1' + "0" * 400 + '}', None),  # an integer of 400 digits: refused with the JSON (hub/safe_json.py)
    ('{"since": NaN}', "since"),
    ('{"since": 1e999}', "since"),
    ('{"since": 5, "until": NaN}', "until"),
    ('{"since": 5, "until": -Infinity}', "until"),
])
async def test_quality_run_rejects_bad_numbers(client, body, field):  # noqa: ANN001
    r = await client.post("/api/quality/run", data=body, headers=JSON)
    assert r.status == 400, await r.text()
    answer = await r.json()
    assert answer.get("field") == field and (field or answer["error"] == "invalid_json")


@pytest.mark.parametrize("path", ["/api/quality/results", "/api/quality/summary"])
@pytest.mark.parametrize("query,field", [("since=nan", "since"), ("since=inf", "since"), ("until=-inf", "until"),
                                         ("until=1e999", "until")])
async def test_quality_results_reject_non_finite_times(client, path, query, field):  # noqa: ANN001
    r = await client.get(f"{path}?{query}", headers=auth())
    assert r.status == 400, await r.text()
    assert (await r.json())["field"] == field


@pytest.mark.parametrize("path", ["/api/quality/results", "/api/alerts"])
async def test_a_zero_limit_is_refused_not_taken_for_the_default(client, path):  # noqa: ANN001
    r = await client.get(f"{path}?limit=0", headers=auth())
    assert r.status == 400 and (await r.json())["field"] == "limit"
    assert (await client.get(f"{path}?limit=1", headers=auth())).status == 200


async def test_good_numbers_still_pass(client):  # noqa: ANN001
    r = await client.post("/api/quality/run", json={"since": 0, "until": 1.5e9}, headers=auth())
    assert r.status == 200, await r.text()
    r = await client.post("/api/quality/run", json={"conversation_id": 1}, headers=auth())
    assert r.status == 200 and (await r.json())["sessions"] == 0
    assert (await client.get("/api/quality/results?since=0&until=1e10", headers=auth())).status == 200
