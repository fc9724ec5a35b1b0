"""Benchmark live push: encrypted WeCom callback POST -> the agent's Socket.IO ``message.new``.

One hub process (``python -m hub serve``) on a fresh SQLite file, configured with a TOML file
(``HUB_CONFIG``: ``[settings]`` default_group = "g1", queue_notify = false, long accept /
unanswered timeouts so no session moves during the run; ``[[accounts]]`` the bench WeCom corp).
The platform APIs the hub calls (token, profile, sends) are the stand-in of
tests/platform_standin.py in its own process, so everything stays on loopback.

Before the hub starts, the agents (group g1, cap 5) and the FAQ of tests/fixtures/faq_zh.json are
written into the database with hub.users.add_user / KnowledgeBase (one password hash for all the
agents, with cheap scrypt parameters: the hub's login path is unchanged, the bench just does not
spend 50 ms of hub CPU per login). Separate processes:

* agents (1-2 processes, python-socketio AsyncClient over WebSocket): each agent logs in over HTTP
  (POST /api/login), connects with ``auth={"token": ...}``, sets ``status`` online and records
  ``time.time()`` for every ``session.new`` and inbound ``message.new``, keyed by the bench id
  embedded in the text (``[b<id>] ...`` / ``[n<id>] ...``);
* a load generator (aiohttp, 64 connections): pre-encrypts signed WeCom text callbacks (not
  measured), then sends them on a fixed schedule (request i at t0 + i/rate; it reports how well it
  kept the schedule) or, for the new-session phase, as fast as its connections allow.

Phases:

1. New sessions: ``--customers`` brand-new customers write once (a few paced, to warm the hub up,
   then a burst). Each message goes through identification (profile fetch from the stand-in),
   the bots (handover words, keyword rules, FAQ matching: the texts are chosen so the FAQ is not
   confident, so a human gets them) and routing; ``new_sessions_per_s`` is how fast ``session.new``
   events arrive at the agents (count / (last arrival - first send)).
2. Sweep: for each rate, customers that now hold a session write at that steady rate for
   ``--duration`` seconds (round robin over the customers). Latency = agent receive time -
   scheduled send time (same machine, same clock), so a late sender or a queued connection counts
   against the hub, never hides it. A rate passes when p99 <= 100 ms and delivered == sent
   (a message still missing after the drain wait counts as lost, and as infinitely late in p99).
   The full run stops at the first failure once the target rate (1000/s) has been tested, then
   bisects between the last pass and the first failure (or halves below a failure); --quick runs
   every listed rate.

Per step it also prints how well the sender kept its schedule, the callback ack latency and the
CPU of each process (plus ``other``: the rest of the machine, for shared boxes).

Prints human-readable lines, then one JSON line last (agents, rate_per_s = the highest passing
rate or else the best tested, p50_ms / p99_ms / delivered / sent at that rate, per-rate results,
new_sessions_per_s, ...).

    python bench/push.py            # 200 agents, 800 customers, 10 s per rate
    python bench/push.py --quick    # 50 agents, 200 customers, 2 rates x 4 s, < 45 s wall
    python bench/push.py --profile DIR   # py-spy records the hub during the 1000/s step
                                         # (and the new-session burst); summarize with
                                         # python bench/push_profile.py DIR/push-hub-1000.txt
    python bench/push.py --hub-cmd "python bench/push_hub_ab.py"   # A/B patches (see that file)
"""

# This file is the command line; it also runs the helper processes (--role). The code lives in
# push_run.py (orchestrator: processes, phases, sweep), push_agents.py (the agents process),
# push_loadgen.py (the load generator process), push_scenario.py (target, hub config, database set-up,
# bench ids), push_procs.py (JSON-lines helper processes, CPU meter, py-spy) and push_report.py
# (percentiles, DB totals, the summary lines and the JSON line).

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import standin_server  # noqa: E402  (after the path set-up above)
from bench.push_agents import agents_main  # noqa: E402
from bench.push_loadgen import loadgen_main  # noqa: E402
from bench.push_run import orchestrate  # noqa: E402
from bench.push_scenario import TARGET_RATE  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50 agents, 200 customers, rates 500,1000 x 4 s (< 45 s)")
    ap.add_argument("--agents", type=int, help="connected agents (default 200, quick 50)")
    ap.add_argument("--agent-procs", type=int, default=2, help="processes the agents are split over (1-2)")
    ap.add_argument("--cap", type=int, default=5, help="concurrent sessions per agent")
    ap.add_argument("--customers", type=int, help="customers with a live session (default 4 per agent)")
    ap.add_argument("--rates", help="comma-separated messages/s to sweep (default 250,...,3000; quick 500,1000)")
    ap.add_argument("--duration", type=float, help="seconds per rate (default 10, quick 4)")
    ap.add_argument("--refine", type=int, help="bisection steps after the first failing rate (default 2, quick 0)")
    ap.add_argument("--conns", type=int, default=64, help="load generator connections")
    ap.add_argument("--seed", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (DB, config, logs)")
    ap.add_argument("--profile", metavar="DIR", help="py-spy records the hub during the --profile-rate step "
                    "into DIR/push-hub-<rate>.txt (raw collapsed stacks)")
    ap.add_argument("--profile-rate", type=int, default=TARGET_RATE)
    ap.add_argument("--profile-hz", type=int, default=200)
    ap.add_argument("--profile-flags", default="--gil", help="extra py-spy record flags (default --gil)")
    ap.add_argument("--hub-cmd", default="", help="command that runs the hub CLI (default: PYTHON -m hub)")
    ap.add_argument("--role", choices=["agents", "loadgen", "standin"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--users", help=argparse.SUPPRESS)
    ap.add_argument("--password", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.role == "standin":
        standin_server(args.port)
    elif args.role == "agents":
        asyncio.run(agents_main(args))
    elif args.role == "loadgen":
        asyncio.run(loadgen_main(args))
    else:
        asyncio.run(orchestrate(args))


if __name__ == "__main__":
    main()
