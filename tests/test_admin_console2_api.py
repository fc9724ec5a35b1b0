"""Operator console, round 2, over the JSON API: SLA rules, quality rules, ticket types and ticket
routing rules are validated with the offending field named, every change leaves an audit row with
before/after, and the change reaches every hub process through the config bus (two apps sharing Redis)."""
from __future__ import annotations

import dataclasses

import pytest

from hub.app import HUB, create_app
from hub.config_bus import CONFIG_BUS
from hub.supervisor.api import SUPERVISION
from hub.tickets.api import TICKETS
from tests.conftest import auth
from tests.helpers import make_groups, wait_for
from tests.rt_helpers import make_user
from tests.test_config_bus import REDIS, _redis_up


async def _audit(client, target: str) -> list[dict]:  # noqa: ANN001
    resp = await client.get("/api/audit", params={"target": target}, headers=auth())
    return (await resp.json())["entries"]


async def _refused(resp) -> str:  # noqa: ANN001
    body = await resp.json()
    assert resp.status == 400, body
    return body["field"]


async def test_sla_rules_validated_audited_and_live(client, hub):
    sue = await make_user(hub, "sla_sue", role="supervisor")
    engine = client.server.app[SUPERVISION].alerts
    bad = [({"kind": "first_reply", "seconds": 0}, "seconds"), ({"kind": "nope", "seconds": 60}, "kind"),
           ({"kind": "first_reply", "seconds": "60"}, "seconds"),
           ({"kind": "first_reply", "seconds": 60, "escalation": "notify"}, "notify_user_id"),
           ({"kind": "avg_reply", "seconds": 60, "escalation": "reassign"}, "escalation"),
           ({"kind": "avg_reply", "seconds": 60, "window": 0}, "window"),
           ({"kind": "first_reply", "seconds": 60, "enabled": "yes"}, "enabled")]
    for body, field in bad:
        assert await _refused(await client.post("/api/sla/rules", json=body, headers=auth())) == field, body
    made = await client.post("/api/sla/rules", json={"name": "首响", "kind": "first_reply", "seconds": 60,
                                                     "escalation": "notify", "notify_user_id": sue.id}, headers=auth())
    rule = await made.json()
    assert made.status == 201 and [r.id for r in engine.rules] == [rule["id"]]
    bad_update = await client.put(f"/api/sla/rules/{rule['id']}", json={"seconds": -5}, headers=auth())
    assert await _refused(bad_update) == "seconds"
    upd = await client.put(f"/api/sla/rules/{rule['id']}", json={"seconds": 90, "enabled": False}, headers=auth())
    assert upd.status == 200 and engine.rules[0].seconds == 90.0 and engine.rules[0].enabled is False
    assert (await client.delete(f"/api/sla/rules/{rule['id']}", headers=auth())).status == 200
    assert engine.rules == []
    assert (await client.delete(f"/api/sla/rules/{rule['id']}", headers=auth())).status == 404
    entries = await _audit(client, f"sla_rule:{rule['id']}")
    assert [e["action"] for e in entries] == ["sla_rule.delete", "sla_rule.update", "sla_rule.create"]
    delete, update, create = entries
    assert create["before"] is None and create["after"]["seconds"] == 60.0
    assert update["before"]["seconds"] == 60.0 and update["after"]["seconds"] == 90.0
    assert update["before"]["enabled"] is True and update["after"]["enabled"] is False
    assert delete["before"]["seconds"] == 90.0 and delete["after"] is None


async def test_quality_rules_validated_audited_and_live(client, hub):
    checker = client.server.app[SUPERVISION].quality
    bad = [({"kind": "forbidden_words", "params": {"words": []}}, "params.words"),
           ({"kind": "forbidden_words", "params": {"words": ["ok", " "]}}, "params.words[1]"),
           ({"kind": "required_phrase", "params": {"phrases": ["您好"], "within_first": 101}}, "params.within_first"),
           ({"kind": "slow_reply", "params": {"seconds": 0}}, "params.seconds"),
           ({"kind": "slow_reply"}, "params"), ({"kind": "other", "params": {}}, "kind")]
    for body, field in bad:
        assert await _refused(await client.post("/api/quality/rules", json=body, headers=auth())) == field, body
    made = await client.post("/api/quality/rules", json={"kind": "anxiety_words", "params": {"words": ["投诉", "315"]}},
                             headers=auth())
    rule = await made.json()
    assert made.status == 201 and rule["name"] == "客户情绪预警"
    assert [r.params["words"] for r in checker.rules] == [["投诉", "315"]]
    upd = await client.put(f"/api/quality/rules/{rule['id']}", json={"params": {"words": ["投诉", "差评"]}},
                           headers=auth())
    assert upd.status == 200 and checker.rules[0].params["words"] == ["投诉", "差评"]
    assert (await client.delete(f"/api/quality/rules/{rule['id']}", headers=auth())).status == 200
    assert checker.rules == []
    entries = await _audit(client, f"quality_rule:{rule['id']}")
    assert [e["action"] for e in entries] == ["quality_rule.delete", "quality_rule.update", "quality_rule.create"]
    assert entries[1]["before"]["params"]["words"] == ["投诉", "315"]
    assert entries[1]["after"]["params"]["words"] == ["投诉", "差评"]


async def test_ticket_types_and_rules_validated_audited_and_live(client, hub):
    await make_groups(hub, "finance", "care", "vip-care")
    svc = client.server.app[TICKETS]
    bad_types = [({"name": "Invoice", "label": "开票"}, "name"), ({"name": "invoice", "label": ""}, "label"),
                 ({"name": "invoice", "label": "开票", "due_hours": 0}, "due_hours"),
                 ({"name": "invoice", "label": "开票", "priority": "asap"}, "priority")]
    for body, field in bad_types:
        assert await _refused(await client.post("/api/ticket-types", json=body, headers=auth())) == field, body
    made = await client.post("/api/ticket-types", json={"name": "invoice", "label": "开发票", "due_hours": 48},
                             headers=auth())
    assert made.status == 201
    dup = await client.post("/api/ticket-types", json={"name": "invoice", "label": "又一个"}, headers=auth())
    assert dup.status == 409 and (await dup.json())["field"] == "name"
    upd = await client.put("/api/ticket-types/invoice", json={"label": "开发票", "due_hours": 24, "priority": "high",
                                                              "group": "finance"}, headers=auth())
    assert upd.status == 200
    assert [t for t in await svc.types() if t.name == "invoice"][0].group == "finance"
    types = await _audit(client, "ticket_type:invoice")
    assert [e["action"] for e in types] == ["ticket_type.update", "ticket_type.create"]
    assert types[0]["before"]["due_hours"] == 48 and types[0]["after"]["due_hours"] == 24

    bad_rules = [({"name": "x"}, "group"), ({"group": "g", "types": ["NOPE"]}, "types"),
                 ({"group": "g", "keywords": [""]}, "keywords")]
    for body, field in bad_rules:
        assert await _refused(await client.post("/api/ticket-rules", json=body, headers=auth())) == field, body
    rule = await (await client.post("/api/ticket-rules", json={"name": "投诉", "group": "care", "types": ["complaint"]},
                                    headers=auth())).json()
    assert [r.group for r in svc.rules] == ["care"]
    upd = await client.put(f"/api/ticket-rules/{rule['id']}", json={"name": "投诉", "group": "vip-care",
                                                                     "keywords": ["315"]}, headers=auth())
    assert upd.status == 200 and svc.rules[0].group == "vip-care"
    assert (await client.delete(f"/api/ticket-rules/{rule['id']}", headers=auth())).status == 200
    assert svc.rules == []
    entries = await _audit(client, f"ticket_rule:{rule['id']}")
    assert [e["action"] for e in entries] == ["ticket_rule.delete", "ticket_rule.update", "ticket_rule.create"]
    assert entries[1]["before"]["group"] == "care" and entries[1]["after"]["group"] == "vip-care"
    assert entries[0]["before"]["keywords"] == ["315"] and entries[0]["after"] is None


async def test_the_lists_on_off_switch_keeps_what_another_operator_saved(client, hub):
    await make_groups(hub, "care", "vip-care")
    """A ticket type's or rule's switch sends ``enabled`` alone: it switches the stored version (the
    whole object the page had loaded, sent back, undid another operator's edit made since)."""
    svc = client.server.app[TICKETS]
    assert (await client.post("/api/ticket-types", json={"name": "invoice", "label": "开发票", "due_hours": 48},
                              headers=auth())).status == 201
    rule = await (await client.post("/api/ticket-rules", json={"name": "投诉", "group": "care", "keywords": ["差评"]},
                                    headers=auth())).json()
    # another operator edits both ...
    assert (await client.put("/api/ticket-types/invoice", json={"label": "开发票", "due_hours": 24},
                             headers=auth())).status == 200
    assert (await client.put(f"/api/ticket-rules/{rule['id']}", json={"name": "投诉", "group": "vip-care",
                                                                      "keywords": ["315"]}, headers=auth())).status == 200
    # ... and this one, on a page loaded before, switches them off
    off = await client.put("/api/ticket-types/invoice", json={"enabled": False}, headers=auth())
    assert off.status == 200 and (await off.json())["due_hours"] == 24
    [invoice] = [t for t in await svc.types() if t.name == "invoice"]
    assert invoice.enabled is False and invoice.due_hours == 24
    off = await client.put(f"/api/ticket-rules/{rule['id']}", json={"enabled": False}, headers=auth())
    assert off.status == 200 and (await off.json())["keywords"] == ["315"]
    assert svc.rules[0].enabled is False and svc.rules[0].group == "vip-care"
    assert (await client.put("/api/ticket-rules/999999", json={"enabled": True}, headers=auth())).status == 404


async def test_group_members_and_caps_through_the_routing_page_apis(client, hub):
    """What the routing page's group editor sends: the members of a group, then an agent's cap."""
    ann = await make_user(hub, "cap_ann", groups=("presales",), cap=5)
    upd = await client.put("/api/groups/presales", json={"members": []}, headers=auth())
    assert upd.status == 200 and (await upd.json())["members"] == []
    assert hub.sessions.agents[ann.id].groups == ()
    bad = await client.put(f"/api/users/{ann.id}", json={"cap": 500}, headers=auth())
    assert bad.status == 400 and (await bad.json())["field"] == "cap"
    ok = await client.put(f"/api/users/{ann.id}", json={"cap": 2}, headers=auth())
    assert ok.status == 200 and hub.sessions.agents[ann.id].cap == 2


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
async def test_rule_changes_reach_the_other_process(aiohttp_client, hub_config, clock):
    config = dataclasses.replace(hub_config, redis_url=REDIS)
    first = await aiohttp_client(create_app(config, clock))
    second = await aiohttp_client(create_app(config, clock))
    sup2, tickets2 = second.server.app[SUPERVISION], second.server.app[TICKETS]
    bus2 = second.server.app[CONFIG_BUS]
    received = bus2.received
    made = await first.post("/api/sla/rules", json={"kind": "unanswered", "seconds": 300}, headers=auth())
    assert made.status == 201
    await wait_for(lambda: [r.seconds for r in sup2.alerts.rules] == [300.0], timeout=5)
    await first.post("/api/quality/rules", json={"kind": "slow_reply", "params": {"seconds": 120}}, headers=auth())
    await wait_for(lambda: [r.kind for r in sup2.quality.rules] == ["slow_reply"], timeout=5)
    await make_groups(first.server.app[HUB], "care")
    await first.post("/api/ticket-rules", json={"group": "care", "keywords": ["投诉"]}, headers=auth())
    await wait_for(lambda: [r.group for r in tickets2.rules] == ["care"], timeout=5)
    assert bus2.received >= received + 3
