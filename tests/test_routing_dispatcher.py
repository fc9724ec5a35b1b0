"""The in-memory dispatcher, case by case: least-loaded choice with a per-group round-robin tie-break,
caps and the waiting queue, online status, freed capacity going to the oldest eligible session,
priority before age, exclusive advisors and their fall-back after a wait, requeueing an agent's
sessions, queue positions, direct assignment for transfers, and loading, capping and removing agents."""
from __future__ import annotations

import pytest

from hub.routing import Assignment, DispatchError, Dispatcher, QueuedSession


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
