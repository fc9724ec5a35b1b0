"""Pure routing: rule validation and decisions, and the in-memory dispatcher (with a randomized invariant test)."""
from __future__ import annotations

import dataclasses
import random

import pytest

from hub.routing import (Actions, Assignment, Condition, DispatchError, Dispatcher, QueuedSession, RoutingInput, Rule,
                         RuleError, decide, default_priority, parse_rule, rule_to_json)


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


# ---- dispatcher ---------------------------------------------------------------------------------------

def qs(sid: int, group: str = "sales", priority: int = 0, t: float | None = None, agent: int | None = None):
    return QueuedSession(sid, group, priority, float(sid) if t is None else t, agent)


def team(*agents: tuple[int, int], groups=("sales",), **kw) -> Dispatcher:
    d = Dispatcher(**kw)
    for aid, cap in agents:
        d.upsert_agent(aid, groups=groups, cap=cap)
    return d


def test_least_loaded_first() -> None:
    d = Dispatcher()
    d.upsert_agent(1, groups={"sales"}, cap=5, sessions=[100, 101])
    d.upsert_agent(2, groups={"sales"}, cap=5, sessions=[102])
    assert d.enqueue(qs(1)) == Assignment(1, 2, "sales")
    assert d.enqueue(qs(2)).agent_id == 1  # 2-2 tie: round-robin moves past agent 2
    assert d.enqueue(qs(3)).agent_id == 2  # 3-2: least loaded
    assert (d.load_of(1), d.load_of(2)) == (3, 3)


def test_round_robin_tie_break_per_group() -> None:
    d = team((1, 5), (2, 5), (3, 5), groups=("sales", "support"))
    picks = []
    for sid in range(1, 6):  # release each at once so loads stay equal
        a = d.enqueue(qs(sid))
        picks.append(a.agent_id)
        d.release(a.agent_id, sid)
    assert picks == [1, 2, 3, 1, 2]
    assert d.enqueue(qs(10, "support")).agent_id == 1  # each group rotates on its own
    assert d.enqueue(qs(11)).agent_id == 3  # sales: 1 and 3 tie at 0 load, 3 follows 2


def test_cap_respected_and_queue() -> None:
    d = team((1, 1), (2, 1))
    assert d.enqueue(qs(1)).agent_id == 1
    assert d.enqueue(qs(2)).agent_id == 2
    assert d.enqueue(qs(3)) is None
    assert d.enqueue(qs(4, "support")) is None  # nobody in that group
    assert (d.load_of(1), d.load_of(2)) == (1, 1)
    assert [q.session_id for q in d.queue_snapshot()] == [3, 4]
    assert d.agent_of(3) is None and d.agent_of(1) == 1


@pytest.mark.parametrize("status", ["busy", "away", "offline"])
def test_only_online_agents_take_sessions(status: str) -> None:
    d = Dispatcher()
    d.upsert_agent(1, groups={"sales"}, cap=3, status=status)
    assert d.enqueue(qs(1)) is None and d.enqueue(qs(2)) is None
    assert d.set_status(1, "online") == [Assignment(1, 1, "sales"), Assignment(2, 1, "sales")]
    assert d.set_status(1, status) == []
    assert d.enqueue(qs(3)) is None and d.load_of(1) == 2
    with pytest.raises(DispatchError):
        d.set_status(1, "lunch")


def test_freed_capacity_goes_to_oldest_eligible_at_once() -> None:
    d = team((1, 1))
    d.enqueue(qs(1))
    for q in (qs(10, t=50), qs(11, "support", t=10), qs(12, t=30), qs(13, t=40)):
        assert d.enqueue(q) is None
    assert d.release(1, 1) == [Assignment(12, 1, "sales")]  # oldest sales session; support is not eligible
    assert d.release(1, 999) == []  # not held: harmless no-op
    assert d.release(1, 12) == [Assignment(13, 1, "sales")]
    assert [q.session_id for q in d.queue_snapshot()] == [11, 10]


def test_priority_before_age() -> None:
    d = team((1, 0))
    d.enqueue(qs(1, t=1))
    d.enqueue(qs(2, priority=30, t=9))
    d.enqueue(qs(3, priority=30, t=5))
    d.enqueue(qs(4, priority=10, t=2))
    assert [q.session_id for q in d.queue_snapshot()] == [3, 2, 4, 1]
    assert [a.session_id for a in d.set_cap(1, 3)] == [3, 2, 4]


def test_exclusive_advisor_waits_for_that_agent() -> None:
    d = team((1, 5), (2, 5))
    d.upsert_agent(7, groups={"vip"}, cap=1, status="away", sessions=[])
    assert d.enqueue(qs(1, agent=7)) is None  # sales agents are free but may not take it
    assert d.queue_position(1) == 1
    assert d.set_status(7, "online") == [Assignment(1, 7, "sales")]  # advisor needs no group membership
    assert d.enqueue(qs(2, agent=7)) is None  # advisor full
    assert d.release(7, 1) == [Assignment(2, 7, "sales")]


def test_advisor_fallback_after_wait() -> None:
    d = team((1, 5), advisor_wait=60, now=0)
    d.upsert_agent(7, groups=set(), cap=1, status="offline")
    assert d.enqueue(qs(1, t=0, agent=7)) is None
    assert d.tick(59) == []
    assert d.tick(60) == [Assignment(1, 1, "sales")]
    assert d.enqueue(qs(2, t=0, agent=7)).agent_id == 1  # already past its wait when enqueued
    d.set_status(7, "online")
    assert d.enqueue(qs(3, t=0, agent=7)).agent_id == 7  # the advisor is still preferred when available


def test_requeue_on_offline_keeps_original_order() -> None:
    d = team((1, 2), (2, 0))
    d.enqueue(qs(1, t=1))
    d.enqueue(qs(2, t=2))
    d.enqueue(qs(3, t=1.5))
    assert d.requeue_agent_sessions(1, [qs(1, t=1), qs(2, t=2)]) == []
    assert [q.session_id for q in d.queue_snapshot()] == [1, 3, 2]
    assert [d.queue_position(s) for s in (1, 3, 2)] == [1, 2, 3]
    assert d.load_of(1) == 0 and d.agents()[0].status == "offline"
    assert d.set_cap(2, 2) == [Assignment(1, 2, "sales"), Assignment(3, 2, "sales")]
    assert d.queue_position(2) == 1 and d.queue_position(1) is None
    with pytest.raises(DispatchError):
        d.requeue_agent_sessions(1, [qs(1)])  # held by agent 2


def test_requeue_redistributes_to_others_at_once() -> None:
    d = team((1, 3), (2, 1), (3, 1))
    for sid in (1, 2, 3):
        d.enqueue(qs(sid))
    d.upsert_agent(1, groups={"sales"}, cap=3)
    held = sorted(s for s in (1, 2, 3) if d.agent_of(s) == 1)
    got = d.requeue_agent_sessions(1, [qs(s) for s in held], status="away")
    assert got == [] or all(a.agent_id != 1 for a in got)
    assert d.agents()[0].status == "away"


def test_queue_positions_per_group_and_advisor() -> None:
    d = team((1, 0))
    d.enqueue(qs(1, "sales"))
    d.enqueue(qs(2, "support"))
    d.enqueue(qs(3, "sales", agent=9))
    d.enqueue(qs(4, "sales", priority=5))
    d.enqueue(qs(5, "support"))
    d.enqueue(qs(6, "sales", agent=9))
    assert {s: d.queue_position(s) for s in range(1, 7)} == {1: 2, 2: 1, 3: 1, 4: 1, 5: 2, 6: 2}
    assert d.cancel(4) and not d.cancel(4)
    assert d.queue_position(1) == 1 and d.queue_position(4) is None


def test_assign_direct_for_transfers() -> None:
    d = team((1, 1), (2, 1))
    d.enqueue(qs(1))  # -> 1
    d.enqueue(qs(2))  # -> 2
    d.enqueue(qs(3))  # queued
    with pytest.raises(DispatchError):
        d.assign_direct(3, 1)  # agent 1 is full
    assert d.assign_direct(3, 1, force=True) == [Assignment(3, 1, "sales", forced=True)]
    assert d.load_of(1) == 2 and d.queue_snapshot() == ()
    d.enqueue(qs(4))  # queued: everybody full
    d.upsert_agent(3, groups={"support"}, cap=1)
    # transfer 2 from agent 2 to agent 3: agent 2's freed room goes to the waiting session at once
    assert d.assign_direct(2, 3) == [Assignment(2, 3, None), Assignment(4, 2, "sales")]
    assert d.assign_direct(2, 3) == []  # already there
    with pytest.raises(KeyError):
        d.assign_direct(2, 99)


def test_agents_loading_caps_and_removal() -> None:
    d = Dispatcher()
    assert d.upsert_agent(1, groups={"sales"}, cap=2, sessions=[10, 11, 12]) == []  # loaded above cap
    assert d.enqueue(qs(1)) is None
    assert d.set_cap(1, 3) == []
    assert d.set_cap(1, 4) == [Assignment(1, 1, "sales")]
    with pytest.raises(DispatchError):
        d.upsert_agent(2, groups={"sales"}, cap=1, sessions=[10])  # held by agent 1
    with pytest.raises(DispatchError):
        d.set_cap(1, -1)
    with pytest.raises(DispatchError):
        d.upsert_agent(3, groups="sales", cap=1)  # a bare string would become a set of characters
    with pytest.raises(DispatchError):
        d.enqueue(qs(1))  # already assigned
    assert d.upsert_agent(1, groups={"sales"}, cap=4, sessions=[10]) == []  # resync replaces holdings
    assert d.load_of(1) == 1 and d.agent_of(11) is None
    assert d.remove_agent(1) == (10,)
    assert d.remove_agent(1) == () and d.load_of(1) == 0 and d.agents() == ()
    with pytest.raises(KeyError):
        d.set_status(1, "online")


# ---- randomized invariants ----------------------------------------------------------------------------

GROUPS = ("sales", "support", "vip")


def _eligible(q: QueuedSession, agent, now: float, wait: float | None) -> bool:
    if q.agent_id is not None and (wait is None or q.enqueued_at + wait > now):
        return agent.id == q.agent_id
    return agent.id == q.agent_id or q.group in agent.groups


@pytest.mark.parametrize("seed", range(8))
def test_random_operations_keep_invariants(seed: int) -> None:
    rnd = random.Random(seed)
    wait = rnd.choice([None, 30.0])
    d = Dispatcher(advisor_wait=wait, now=0.0)
    meta: dict[int, QueuedSession] = {}    # every live session as first enqueued
    queued: set[int] = set()               # model of the queue
    held: dict[int, int] = {}              # model: session -> agent
    now, ticked, next_sid = 0.0, 0.0, 1  # ``ticked``: the dispatcher's notion of now

    for step in range(1500):
        before = {a.id: a.load for a in d.agents()}
        op = rnd.random()
        agent_ids = [a.id for a in d.agents()]
        direct: tuple[int, int] | None = None
        out: list[Assignment] = []
        if op < 0.08 or not agent_ids:
            aid = rnd.randint(1, 8)
            out = d.upsert_agent(aid, groups=rnd.sample(GROUPS, rnd.randint(0, 2)), cap=rnd.randint(0, 4),
                                 status=rnd.choice(["online", "online", "busy", "away", "offline"]))
        elif op < 0.18:
            out = d.set_status(rnd.choice(agent_ids), rnd.choice(["online", "online", "busy", "away", "offline"]))
        elif op < 0.25:
            out = d.set_cap(rnd.choice(agent_ids), rnd.randint(0, 4))
        elif op < 0.55:
            now += rnd.uniform(0, 5)
            q = QueuedSession(next_sid, rnd.choice(GROUPS), rnd.choice([0, 0, 10, 30]), now,
                              rnd.choice([None, None, None, rnd.randint(1, 8)]))
            meta[q.session_id], next_sid = q, next_sid + 1
            queued.add(q.session_id)
            a = d.enqueue(q)
            out = [a] if a else []
        elif op < 0.75 and held:
            sid = rnd.choice(sorted(held))
            out = d.release(held.pop(sid), sid)
            del meta[sid]
        elif op < 0.80 and queued:
            sid = rnd.choice(sorted(queued))
            assert d.cancel(sid)
            queued.discard(sid)
            del meta[sid]
        elif op < 0.86:
            aid = rnd.choice(agent_ids)
            mine = [s for s, a in held.items() if a == aid]
            back = rnd.sample(mine, rnd.randint(0, len(mine)))
            for sid in back:
                del held[sid]
                queued.add(sid)
            out = d.requeue_agent_sessions(aid, [meta[s] for s in back], status=rnd.choice(["offline", "away"]))
        elif op < 0.91 and (queued or held):
            sid, aid = rnd.choice(sorted(queued | set(held))), rnd.choice(agent_ids)
            try:
                out = d.assign_direct(sid, aid)
            except DispatchError:
                out = []
            else:
                if out:
                    direct = (sid, aid)
                    queued.discard(sid)
                    held[sid] = aid
                    out = out[1:]
        elif op < 0.95:
            now += rnd.uniform(0, 40)
            ticked = now
            out = d.tick(now)
        else:
            aid = rnd.choice(agent_ids)
            dropped = d.remove_agent(aid)
            assert set(dropped) == {s for s, a in held.items() if a == aid}
            for sid in dropped:
                del held[sid]
                del meta[sid]

        # every assignment moves a waiting session to an agent that had room and may take it
        for a in out:
            assert a.session_id in queued, (step, a)
            assert not a.forced
            queued.discard(a.session_id)
            held[a.session_id] = a.agent_id
        agents = {a.id: a for a in d.agents()}
        for a in out:
            ag = agents[a.agent_id]
            assert ag.status == "online" and ag.load <= ag.cap, (step, ag)
            assert _eligible(meta[a.session_id], ag, ticked, wait), (step, a)
        if direct:
            assert agents[direct[1]].load <= agents[direct[1]].cap

        # the dispatcher agrees with the model built only from returned assignments
        snapshot = d.queue_snapshot()
        assert {q.session_id for q in snapshot} == queued
        # the kept counts and the head agree with the whole queue
        per_group: dict[str, int] = {}
        for q in snapshot:
            per_group[q.group] = per_group.get(q.group, 0) + 1
        assert d.queue_counts() == (len(snapshot), per_group), step
        assert d.queue_head(3) == snapshot[:3]
        assert not queued & set(held)
        assert all(d.agent_of(s) == a for s, a in held.items())
        assert sum(a.load for a in agents.values()) == len(held)
        assert [(-q.priority, q.enqueued_at, q.session_id) for q in snapshot] == \
            sorted((-q.priority, q.enqueued_at, q.session_id) for q in snapshot)
        # no agent grows past its cap
        for ag in agents.values():
            assert ag.load <= max(ag.cap, before.get(ag.id, 0)), (step, ag)
        # no waiting session while an agent that may take it has room
        for q in snapshot:
            for ag in agents.values():
                if ag.status == "online" and ag.load < ag.cap:
                    assert not _eligible(q, ag, ticked, wait), (step, q, ag)
            pos = d.queue_position(q.session_id)
            assert pos is not None and 1 <= pos <= len(snapshot)
    assert next_sid > 300  # the run exercised plenty of sessions


def _scan_position(d: Dispatcher, session_id: int) -> int | None:
    """queue_position by brute force: a walk of the whole queue in order (the reference)."""
    if not d.knows(session_id) or d.agent_of(session_id) is not None:
        return None
    waiting = d.queue_snapshot()
    me = next(q for q in waiting if q.session_id == session_id)
    lane = d._lane(me)
    pos = 0
    for q in waiting:
        pos += d._lane(q) == lane
        if q.session_id == session_id:
            return pos
    raise AssertionError("not in the queue")


def test_queue_position_matches_a_full_scan_through_random_changes():
    """The indexed queue_position (per-group order plus advisor sessions apart) agrees with a scan of
    the whole queue through enqueues, cancels, assignments and advisor fall-backs."""
    rng = random.Random(7)
    d = Dispatcher(advisor_wait=30.0)
    d.upsert_agent(1, groups=["a"], cap=2, status="offline")
    d.upsert_agent(2, groups=["b"], cap=1, status="offline")
    now, next_id = 0.0, 1
    for _ in range(600):
        op = rng.random()
        if op < 0.6:
            d.enqueue(QueuedSession(next_id, rng.choice("abc"), rng.choice((0, 0, 1)), now + rng.random(),
                                    rng.choice((None, None, None, 1, 2))))
            next_id += 1
        elif op < 0.75:
            d.cancel(rng.randrange(1, next_id))
        elif op < 0.8:
            d.set_status(rng.choice((1, 2)), rng.choice(("online", "offline")))
        elif op < 0.85:
            for agent in (1, 2):
                for sid in [s for s in range(1, next_id) if d.agent_of(s) == agent]:
                    d.release(agent, sid)
        else:
            now += rng.choice((1.0, 10.0))
            d.tick(now)
        for q in d.queue_snapshot():
            assert d.queue_position(q.session_id) == _scan_position(d, q.session_id)
    assert len(d.queue_snapshot()) > 20  # the check ran over a real queue
