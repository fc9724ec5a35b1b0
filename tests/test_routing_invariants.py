"""The dispatcher under random operations: seeded runs of agent changes, enqueues, releases, cancels,
requeues, transfers and ticks that check the dispatcher against a model built only from the assignments
it returns (caps, eligibility, queue order and counts), and the indexed queue_position against a scan
of the whole queue. (The drain against a reference walk is in test_routing_drain.py.)"""
from __future__ import annotations

import random

import pytest

from hub.routing import Assignment, DispatchError, Dispatcher, QueuedSession


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
