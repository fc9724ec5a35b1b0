"""The dispatcher's drain: the same assignments as a walk of the whole queue in order, without the walk."""
from __future__ import annotations

import random

import pytest

from hub.routing.dispatch import Assignment, Dispatcher, DispatchError, QueuedSession


class WalkingDispatcher(Dispatcher):
    """The reference: the drain as a walk of the whole queue in order, each session offered to the
    agents with room (what the dispatcher did before it looked only at the takeable heads)."""

    def _drain(self) -> list[Assignment]:
        room = {a.id for a in self._agents.values() if a.has_room()}
        out: list[Assignment] = []
        for key in list(self._order):
            if not room:
                break
            q = self._queue[key[2]]
            agent_id = self._pick(q, room)
            if agent_id is not None:
                out.append(self._take(q, agent_id, room))
        return out


class CountingDispatcher(Dispatcher):
    picks = 0

    def _pick(self, q, room):  # noqa: ANN001, ANN202
        self.picks += 1
        return super()._pick(q, room)


GROUPS = ("presale", "aftersale", "vip", "wholesale")


def _random_step(rnd: random.Random, state: dict) -> tuple[str, tuple]:
    """One random operation (name, args) on the live sessions and agents described by ``state``."""
    op = rnd.random()
    agents, queued, held = state["agents"], state["queued"], state["held"]
    if op < 0.1 or not agents:
        aid = rnd.randint(1, 10)
        agents.add(aid)
        return "upsert_agent", (aid, tuple(rnd.sample(GROUPS, rnd.randint(0, 3))), rnd.randint(0, 4),
                                rnd.choice(["online", "online", "online", "busy", "away", "offline"]))
    if op < 0.2:
        return "set_status", (rnd.choice(sorted(agents)), rnd.choice(["online", "online", "away", "offline"]))
    if op < 0.27:
        return "set_cap", (rnd.choice(sorted(agents)), rnd.randint(0, 5))
    if op < 0.6:
        state["now"] += rnd.uniform(0, 5)
        sid = state["next"]
        state["next"] += 1
        return "enqueue", (QueuedSession(sid, rnd.choice(GROUPS), rnd.choice([0, 0, 0, 10, 30]), state["now"],
                                         rnd.choice([None, None, None, None, rnd.randint(1, 10)])),)
    if op < 0.8 and held:
        sid = rnd.choice(sorted(held))
        return "release", (held[sid], sid)
    if op < 0.85 and queued:
        return "cancel", (rnd.choice(sorted(queued)),)
    if op < 0.9 and (queued or held):
        return "assign_direct", (rnd.choice(sorted(queued | set(held))), rnd.choice(sorted(agents)))
    state["now"] += rnd.uniform(0, 40)
    return "tick", (state["now"],)


def _call(d: Dispatcher, name: str, args: tuple):  # noqa: ANN202
    if name == "upsert_agent":
        aid, groups, cap, status = args
        return d.upsert_agent(aid, groups=groups, cap=cap, status=status)
    try:
        return getattr(d, name)(*args)
    except DispatchError as exc:
        return ("refused", str(exc))


@pytest.mark.parametrize("seed", range(6))
def test_drain_assigns_exactly_what_a_walk_of_the_whole_queue_assigns(seed: int) -> None:
    rnd = random.Random(seed)
    wait = rnd.choice([None, 20.0])
    fast, walk = Dispatcher(advisor_wait=wait), WalkingDispatcher(advisor_wait=wait)
    state = {"agents": set(), "queued": set(), "held": {}, "now": 0.0, "next": 1}
    assigned = 0
    for step in range(2500):
        name, args = _random_step(rnd, state)
        got, want = _call(fast, name, args), _call(walk, name, args)
        assert got == want, (step, name, args)
        assert fast.queue_snapshot() == walk.queue_snapshot(), step
        assert fast.round_robin() == walk.round_robin(), step
        assert fast.agents() == walk.agents(), step
        # the model of what is queued and held follows the dispatcher's answers
        state["queued"] = {q.session_id for q in fast.queue_snapshot()}
        state["held"] = {sid: fast.agent_of(sid) for sid in range(1, state["next"]) if fast.agent_of(sid) is not None}
        assigned += len(got) if isinstance(got, list) else got is not None and not isinstance(got, tuple)
    assert assigned > 300 and state["next"] > 700  # plenty of sessions went through both


def test_a_long_queue_of_one_group_is_not_walked_when_only_another_group_has_room() -> None:
    d = CountingDispatcher()
    d.upsert_agent(1, groups=["presale"], cap=3)
    for sid in range(1, 20_004):
        d.enqueue(QueuedSession(sid, "presale", 0, float(sid)))
    for aid in range(2, 12):
        d.upsert_agent(aid, groups=["aftersale"], cap=5)
    d.picks = 0
    assert d.release(1, 1) == [Assignment(4, 1, "presale")]  # the presale agent's freed room: the next in line
    assert d.tick(1e9) == [] and d.set_cap(2, 6) == []  # aftersale has room, nobody waits for it
    assert d.picks == 1, d.picks  # a walk offered all 20,000 waiting sessions to the aftersale agents
    assert d.enqueue(QueuedSession(30_000, "aftersale", 0, 1.0)) == Assignment(30_000, 2, "aftersale")


@pytest.mark.parametrize("seed", range(4))
def test_load_queue_is_the_queue_drained_in_order(seed: int) -> None:
    """A rebuild's bulk load: every session queued, then what agents with room may take assigned in
    queue order (priority first), exactly as the reference walk assigns from the same queue."""
    rnd = random.Random(seed)
    fast, walk = Dispatcher(advisor_wait=30.0, now=100.0), WalkingDispatcher(advisor_wait=30.0, now=100.0)
    for aid in range(1, 9):
        groups, cap = rnd.sample(GROUPS, rnd.randint(0, 2)), rnd.randint(0, 4)
        status = rnd.choice(["online", "online", "away"])
        for d in (fast, walk):
            d.upsert_agent(aid, groups=groups, cap=cap, status=status)
    sessions = [QueuedSession(sid, rnd.choice(GROUPS), rnd.choice([0, 0, 10]), rnd.uniform(0, 200),
                              rnd.choice([None, None, None, rnd.randint(1, 8)])) for sid in range(1, 400)]
    got = fast.load_queue(rnd.sample(sessions, len(sessions)))  # in any order
    for q in sessions:
        walk._push(q)
    assert got == walk._drain() and got  # some were assigned at once
    assert fast.queue_snapshot() == walk.queue_snapshot() and fast.agents() == walk.agents()
    assert fast.queue_counts() == walk.queue_counts()
    for q in fast.queue_snapshot()[:50]:
        assert fast.queue_position(q.session_id) == walk.queue_position(q.session_id)


def test_load_queue_refuses_duplicates_and_changes_nothing() -> None:
    d = Dispatcher()
    d.upsert_agent(1, groups=["presale"], cap=1, status="offline")
    d.load_queue([QueuedSession(1, "presale", 0, 1.0)])
    for bad in ([QueuedSession(2, "presale", 0, 2.0), QueuedSession(2, "presale", 0, 2.0)],
                [QueuedSession(3, "presale", 0, 3.0), QueuedSession(1, "presale", 0, 1.0)]):
        with pytest.raises(DispatchError):
            d.load_queue(bad)
    assert [q.session_id for q in d.queue_snapshot()] == [1]
    assert d.set_status(1, "online") == [Assignment(1, 1, "presale")]
