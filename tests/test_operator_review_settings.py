"""Operator settings the docs promise (docs/dashboard.md): ``dashboard_first_reply_sla`` and ``timezone``
can be changed through ``PUT /api/settings`` (validated, audited) and take effect on the dashboard."""
from __future__ import annotations

from tests.conftest import auth


async def test_dashboard_settings_are_accepted_validated_and_take_effect(client, hub):
    got = await (await client.get("/api/settings", headers=auth())).json()
    assert {"dashboard_first_reply_sla", "timezone"} <= set(got["keys"])
    assert got["settings"]["dashboard_first_reply_sla"] == 120 and got["settings"]["timezone"] is None

    ok = await client.put("/api/settings", json={"dashboard_first_reply_sla": 300, "timezone": " UTC "},
                          headers=auth())
    body = await ok.json()
    assert ok.status == 200, body
    assert body["settings"]["dashboard_first_reply_sla"] == 300 and body["settings"]["timezone"] == "UTC"
    snap = await (await client.get("/api/supervisor/dashboard?fresh=1", headers=auth())).json()
    assert snap["sla"]["first_reply"] == 300 and snap["today"]["timezone"] == "UTC"

    for change in ({"dashboard_first_reply_sla": 0}, {"dashboard_first_reply_sla": -5},
                   {"dashboard_first_reply_sla": "120"}, {"dashboard_first_reply_sla": True},
                   {"dashboard_first_reply_sla": 8 * 86400}, {"timezone": "Mars/Olympus"},
                   {"timezone": "../etc/passwd"}, {"timezone": 8}):
        resp = await client.put("/api/settings", json=change, headers=auth())
        err = await resp.json()
        assert resp.status == 400 and err["error"] == "invalid_setting", (change, err)
        assert err["field"] == next(iter(change)), (change, err)
    assert hub.settings.cached("timezone") == "UTC" and hub.settings.cached("dashboard_first_reply_sla") == 300

    cleared = await client.put("/api/settings", json={"timezone": ""}, headers=auth())
    assert cleared.status == 200 and (await cleared.json())["settings"]["timezone"] is None
    snap = await (await client.get("/api/supervisor/dashboard?fresh=1", headers=auth())).json()
    assert snap["today"]["timezone"] == "Asia/Shanghai"
    entries = (await (await client.get("/api/audit", params={"action": "settings.update"},
                                       headers=auth())).json())["entries"]
    assert [e["after"] for e in entries][::-1] == [{"dashboard_first_reply_sla": 300, "timezone": "UTC"},
                                                   {"timezone": None}]
