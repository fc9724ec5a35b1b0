"""Routing rules (pure): parsing a rule and its round trip through JSON, validation errors that name
the field, every condition kind and their AND, and `decide` — position order, disabled rules skipped,
first match wins entirely, the default group and the VIP-level priority."""
from __future__ import annotations

import dataclasses

import pytest

from hub.routing import (Actions, Condition, RoutingInput, Rule, RuleError, decide, default_priority, parse_rule,
                         rule_to_json)


def customer(**kw) -> RoutingInput:
    base = dict(account_id="acme-wecom", platform="wecom", channel="spring-fair", tags=frozenset({"老客户"}),
                vip_level=0, first_message="你好，我想问一下退款进度", in_business_hours=True)
    base.update(kw)
    return RoutingInput(**base)


def rule(conditions: list, rid: int = 1, position: int = 0, enabled: bool = True, **actions) -> Rule:
    return parse_rule({"name": f"r{rid}", "enabled": enabled, "conditions": conditions,
                       "actions": actions or {"group": f"g{rid}"}}, id=rid, position=position)


# ---- rules: parsing and validation --------------------------------------------------------------------

def test_parse_and_round_trip() -> None:
    data = {"name": " VIP 退款 ", "conditions": [
        {"kind": "vip_min", "value": 2}, {"kind": "keywords_any", "value": ["退款", "退货"]},
        {"kind": "channel", "value": [17, "fair"]}, {"kind": "business_hours", "value": False}],
        "actions": {"group": "refund", "priority": 50, "agent_id": 7, "add_tags": ["退款意向"]}}
    r = parse_rule(data, id=3, position=2)
    assert r == Rule(3, "VIP 退款", 2, True, (
        Condition("vip_min", 2), Condition("keywords_any", ("退款", "退货")), Condition("channel", ("17", "fair")),
        Condition("business_hours", False)), Actions("refund", 50, 7, ("退款意向",)))
    assert parse_rule(rule_to_json(r), id=r.id, position=r.position) == r
    assert parse_rule({**rule_to_json(r), "id": 99, "position": 99}, id=3, position=2) == r  # storage owns id/pos


@pytest.mark.parametrize("patch, field", [
    ({"name": ""}, "name"),
    ({"name": None}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"enabled": "yes"}, "enabled"),
    ({"colour": "red"}, "colour"),
    ({"conditions": {"kind": "vip_min"}}, "conditions"),
    ({"conditions": [{"kind": "vip_min", "value": 1}, {"kind": "weather", "value": 1}]}, "conditions[1].kind"),
    ({"conditions": [{"kind": "vip_min", "value": 1}, {"kind": "vip_min", "value": "3"}]}, "conditions[1].value"),
    ({"conditions": [{"kind": "vip_min", "value": -1}]}, "conditions[0].value"),
    ({"conditions": [{"kind": "vip_min", "value": True}]}, "conditions[0].value"),
    ({"conditions": [{"kind": "vip_min"}]}, "conditions[0].value"),
    ({"conditions": [{"kind": "vip_min", "value": 1, "op": ">"}]}, "conditions[0].op"),
    ({"conditions": ["vip"]}, "conditions[0]"),
    ({"conditions": [{"kind": "tags_any", "value": []}]}, "conditions[0].value"),
    ({"conditions": [{"kind": "tags_all", "value": "vip"}]}, "conditions[0].value"),
    ({"conditions": [{"kind": "tags_none", "value": ["ok", " "]}]}, "conditions[0].value[1]"),
    ({"conditions": [{"kind": "keywords_any", "value": [3]}]}, "conditions[0].value[0]"),
    ({"conditions": [{"kind": "platform", "value": ["wecom", "wechat"]}]}, "conditions[0].value[1]"),
    ({"conditions": [{"kind": "business_hours", "value": "yes"}]}, "conditions[0].value"),
    ({"conditions": [{"kind": "account", "value": [None]}]}, "conditions[0].value[0]"),
    ({"actions": None}, "actions"),
    ({"actions": {}}, "actions"),
    ({"actions": {"add_tags": []}}, "actions"),
    ({"actions": {"group": ""}}, "actions.group"),
    ({"actions": {"priority": -1}}, "actions.priority"),
    ({"actions": {"priority": 1001}}, "actions.priority"),
    ({"actions": {"priority": "high"}}, "actions.priority"),
    ({"actions": {"agent_id": 0}}, "actions.agent_id"),
    ({"actions": {"agent_id": "7"}}, "actions.agent_id"),
    ({"actions": {"add_tags": ["ok", ""]}}, "actions.add_tags[1]"),
    ({"actions": {"group": "g", "queue": "x"}}, "actions.queue"),
])
def test_validation_errors_name_the_field(patch: dict, field: str) -> None:
    data = {"name": "rule", "conditions": [], "actions": {"group": "g"}, **patch}
    if patch.get("actions", 0) is None:
        del data["actions"]
    with pytest.raises(RuleError) as exc:
        parse_rule(data)
    assert isinstance(exc.value, ValueError)
    assert exc.value.field == field
    assert str(exc.value).startswith(f"{field}: ")


def test_each_action_alone_is_enough() -> None:
    for actions in ({"group": "g"}, {"priority": 0}, {"agent_id": 1}, {"add_tags": ["t"]}):
        assert parse_rule({"name": "n", "actions": actions}).conditions == ()


# ---- rules: every condition kind ----------------------------------------------------------------------

@pytest.mark.parametrize("kind, value, hit, miss", [
    ("account", ["acme-wecom", "acme-oa"], {}, {"account_id": "other"}),
    ("platform", ["wecom", "kf"], {"platform": "kf"}, {"platform": "oa"}),
    ("channel", ["spring-fair", 12], {"channel": "12"}, {"channel": None}),
    ("channel", ["spring-fair"], {}, {"channel": "autumn"}),
    ("tags_any", ["VIP", "老客户"], {}, {"tags": frozenset({"新客户"})}),
    ("tags_all", ["VIP", "老客户"], {"tags": frozenset({"VIP", "老客户", "x"})}, {}),
    ("tags_none", ["黑名单"], {}, {"tags": frozenset({"黑名单", "老客户"})}),
    ("vip_min", 2, {"vip_level": 2}, {"vip_level": 1}),
    ("vip_min", 0, {"vip_level": 0}, {"vip_level": -1}),
    ("keywords_any", ["退款", "退货"], {}, {"first_message": "你好，在吗"}),
    ("keywords_any", ["vip"], {"first_message": "我是VIP会员"}, {"first_message": "v i p"}),
    ("keywords_any", ["vip"], {"first_message": "我是ＶＩＰ会员"}, {"first_message": ""}),  # full-width folds
    ("business_hours", True, {}, {"in_business_hours": False}),
    ("business_hours", False, {"in_business_hours": False}, {}),
])
def test_each_condition_kind(kind: str, value, hit: dict, miss: dict) -> None:
    rules = [rule([{"kind": kind, "value": value}], group="special")]
    got = decide(rules, customer(**hit), "default")
    assert (got.group, got.matched_rule_id) == ("special", 1), got.trace
    got = decide(rules, customer(**miss), "default")
    assert (got.group, got.matched_rule_id) == ("default", None)
    assert "no match" in got.trace[0]


def test_conditions_are_anded() -> None:
    rules = [rule([{"kind": "vip_min", "value": 3}, {"kind": "platform", "value": ["oa"]}], group="vip-oa")]
    assert decide(rules, customer(vip_level=3, platform="oa"), "d").group == "vip-oa"
    assert decide(rules, customer(vip_level=3, platform="wecom"), "d").group == "d"
    assert decide(rules, customer(vip_level=2, platform="oa"), "d").group == "d"


# ---- rules: decide ------------------------------------------------------------------------------------

def test_position_order_not_list_order_and_disabled_skipped() -> None:
    catch_all = rule([], rid=1, position=9, group="general")
    refund = rule([{"kind": "keywords_any", "value": ["退款"]}], rid=2, position=1, group="refund")
    vip = rule([{"kind": "vip_min", "value": 1}], rid=3, position=0, enabled=False, group="vip")
    got = decide([catch_all, refund, vip], customer(vip_level=5), "default")
    assert (got.group, got.matched_rule_id) == ("refund", 2)
    assert got.trace[0] == "rule #3 'r3': skipped (disabled)"
    assert got.trace[1] == "rule #2 'r2': matched"
    assert all("r1" not in line for line in got.trace)  # later rules are not consulted
    assert decide([catch_all, refund, vip], customer(first_message="hi"), "default").group == "general"


def test_first_match_wins_entirely() -> None:
    tagger = rule([{"kind": "tags_any", "value": ["老客户"]}], rid=1, position=0, add_tags=["回访"], priority=5)
    vip = rule([], rid=2, position=1, group="vip", agent_id=8, add_tags=["vip"])
    got = decide([vip, tagger], customer(vip_level=4), "default")
    # the first match sets no group: default group, its own priority and tags; rule 2 is not merged in
    assert got == dataclasses.replace(got, group="default", priority=5, agent_id=None, add_tags=("回访",),
                                      matched_rule_id=1)
    assert "group 'default' from default group" in got.trace
    assert "priority 5 from rule #1" in got.trace
    got = decide([vip, tagger], customer(tags=frozenset()), "default")
    assert (got.group, got.agent_id, got.add_tags, got.matched_rule_id) == ("vip", 8, ("vip",), 2)
    assert "exclusive agent 8 from rule #2" in got.trace


def test_default_group_and_vip_priority() -> None:
    got = decide([], customer(vip_level=3), "售前")
    assert (got.group, got.priority, got.agent_id, got.add_tags, got.matched_rule_id) == ("售前", 30, None, (), None)
    assert got.trace == ("group '售前' from default group", "priority 30 from vip level 3")
    assert default_priority(0) == 0 < default_priority(1) < default_priority(5)
    assert default_priority(-2) == 0 and default_priority(10**6) == 1000
    set_prio = [rule([], group="g", priority=0)]
    assert decide(set_prio, customer(vip_level=9), "d").priority == 0  # an explicit rule priority wins
