"""The dispatcher's drain under a long queue: a Double 11 rush where one group's queue is long while
agents of another group sit with room (their queue is empty).

Every release (a session closed or transferred), status or cap change and tick drains the queue. The
reference (tests/test_routing_drain.py's ``WalkingDispatcher``, the drain as it was) walks the whole
queue, offering each waiting session to the agents with room; the dispatcher now looks only at the
heads of the groups those agents are in. Both run side by side on the same scenario:

* ``--agents`` presale agents at their cap, ``--idle`` aftersale agents online with room;
* a presale queue of each size in ``--queues``;
* each measured operation is a release by a presale agent (its freed room goes to the next in line)
  followed by a tick (nothing to assign: aftersale has nobody waiting);
* and a rebuild of the dispatcher with that queue (what every process does every second with several
  processes): the sessions enqueued one by one (as rebuilds did) against ``load_queue``.

Prints a line per queue size, then one JSON line: at the longest queue, the median microseconds per
release + tick for both and their ratio, and the median milliseconds per rebuild both ways.

    python bench/routing_drain.py            # queues of 1,000 / 5,000 / 20,000, 400 operations each
    python bench/routing_drain.py --quick    # the same queues, 60 operations each (a few seconds)
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.routing.dispatch import Dispatcher, QueuedSession  # noqa: E402
from tests.test_routing_drain import WalkingDispatcher  # noqa: E402


def scenario(cls: type[Dispatcher], queue: int, agents: int, idle: int) -> tuple[Dispatcher, list[tuple[int, int]]]:
    """A dispatcher with ``agents`` presale agents at cap 1 and ``queue`` presale sessions waiting behind
    them, and ``idle`` aftersale agents with room; returns it and the (agent, session) pairs held."""
    d = cls()
    for aid in range(1, agents + 1):
        d.upsert_agent(aid, groups=["presale"], cap=1)
    for sid in range(1, queue + agents + 1):
        d.enqueue(QueuedSession(sid, "presale", 0, float(sid)))
    for aid in range(1000, 1000 + idle):
        d.upsert_agent(aid, groups=["aftersale"], cap=5)
    return d, [(aid, aid) for aid in range(1, agents + 1)]  # agent i took session i


def measure(cls: type[Dispatcher], queue: int, ops: int, agents: int, idle: int) -> list[float]:
    d, held = scenario(cls, queue, agents, idle)
    times = []
    for i in range(ops):
        agent, sid = held[i % len(held)]
        t = time.perf_counter()
        got = d.release(agent, sid)
        d.tick(float(i))
        times.append((time.perf_counter() - t) * 1e6)
        assert len(got) == 1 and got[0].agent_id == agent, got  # the next in line went to the freed agent
        held[i % len(held)] = (agent, got[0].session_id)
    return times


def rebuild(queue: int, agents: int, idle: int, bulk: bool) -> float:
    """Milliseconds to rebuild a dispatcher holding ``queue`` waiting presale sessions."""
    sessions = [QueuedSession(sid, "presale", 0, float(sid)) for sid in range(agents + 1, queue + agents + 1)]
    t = time.perf_counter()
    d = Dispatcher()
    for aid in range(1, agents + 1):
        d.upsert_agent(aid, groups=["presale"], cap=1, sessions=[aid])
    for aid in range(1000, 1000 + idle):
        d.upsert_agent(aid, groups=["aftersale"], cap=5)
    if bulk:
        d.load_queue(sessions)
    else:
        for q in sessions:
            d.enqueue(q)
    return (time.perf_counter() - t) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="60 operations per queue size")
    ap.add_argument("--queues", default="1000,5000,20000", help="presale queue lengths")
    ap.add_argument("--ops", type=int, help="operations measured per queue size (default 400, quick 60)")
    ap.add_argument("--agents", type=int, default=50, help="presale agents (all at their cap)")
    ap.add_argument("--idle", type=int, default=20, help="aftersale agents with room")
    args = ap.parse_args()
    ops = args.ops or (60 if args.quick else 400)
    started = time.perf_counter()
    out: dict[str, float] = {}
    for queue in (int(q) for q in args.queues.split(",")):
        # alternate the two, twice each, so a slow moment of the machine does not favour one
        walk, heads = [], []
        for _ in range(2):
            walk += measure(WalkingDispatcher, queue, ops // 2, args.agents, args.idle)
            heads += measure(Dispatcher, queue, ops // 2, args.agents, args.idle)
        w, h = statistics.median(walk), statistics.median(heads)
        print(f"queue {queue:6d}: walk {w:9.1f} us   heads {h:7.1f} us per release + tick   ({w / h:,.0f}x)")
        one, bulk = [], []
        for _ in range(3 if args.quick else 7):
            one.append(rebuild(queue, args.agents, args.idle, bulk=False))
            bulk.append(rebuild(queue, args.agents, args.idle, bulk=True))
        o, b = statistics.median(one), statistics.median(bulk)
        print(f"              rebuild: one by one {o:7.1f} ms   load_queue {b:6.1f} ms   ({o / b:,.1f}x)")
        out = {"queue": queue, "walk_us_per_op": round(w, 1), "heads_us_per_op": round(h, 1),
               "speedup": round(w / h, 1), "rebuild_one_by_one_ms": round(o, 1), "rebuild_bulk_ms": round(b, 1),
               "rebuild_speedup": round(o / b, 1)}
    out.update(ops=ops, agents=args.agents, idle_agents=args.idle, quick=args.quick,
               wall_s=round(time.perf_counter() - started, 1))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
