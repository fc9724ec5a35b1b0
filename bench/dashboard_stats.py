"""Benchmark the supervisor dashboard's figures on a big archive (SQLite file).

Builds an archive of ``--days`` days of traffic (``--per-day`` customer messages a day across conversations
of ~6 messages, each with a bot answer, half handed to humans with agent replies; orders, bot outcomes),
then times, median of ``--runs``:

* ``today``: today's figures per agent and group (sessions, first response p50/p90, bot time, reply times,
  bot rates) over the last day of traffic;
* ``health``: customer messages answered within 48 h over 7 days + orders linked to a customer;
* ``snapshot``: the whole dashboard snapshot with fresh figures (what a recomputation costs).

    python bench/dashboard_stats.py            # 7 days x 20,000 customer messages a day (~280k messages)
    python bench/dashboard_stats.py --quick    # 7 days x 3,000 (< 45 s)

Prints human-readable lines, then one JSON line last.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.clock import FakeClock  # noqa: E402
from hub.db import Database  # noqa: E402
from hub.settings import Settings  # noqa: E402
from hub.supervisor.stats import Stats  # noqa: E402

NOW = 1_732_500_000.0 + 8 * 3600  # 18:00 in Shanghai: most of a day of traffic today
DAY = 86400.0


def build(path: str, days: int, per_day: int, seed: int = 7) -> dict[str, int]:
    rnd = random.Random(seed)
    con = sqlite3.connect(path)
    con.execute("INSERT INTO accounts (id, platform, name, token, encoding_aes_key, receive_id, secret, created_at,"
                " updated_at) VALUES ('acme', 'wecom', 'Acme', 't', 'k', 'r', '', 0, 0)")
    conversations = max(1, per_day * days // 3)  # three customer messages each
    con.executemany("INSERT INTO conversations (id, account_id, channel, thread, peer_id, created_at, customer_id)"
                    " VALUES (?, 'acme', 'wecom', '', ?, 0, ?)",
                    [(i, f"p{i}", i if rnd.random() < 0.7 else None) for i in range(1, conversations + 1)])
    msgs, sessions, outcomes, orders = [], [], [], []
    mid = 0
    start = NOW - days * DAY
    for cid in range(1, conversations + 1):
        t = start + rnd.random() * (days * DAY - 3600)
        human = rnd.random() < 0.5
        handover = t + rnd.uniform(5, 120)
        agent = rnd.randint(1, 40)
        first_reply = None
        for k in range(3):
            mid += 1
            msgs.append((mid, cid, "in", "customer", t))
            if k == 0:
                outcomes.append((mid, cid, "handover" if human else "faq", t))
            answer = t + rnd.uniform(2, 300)
            if rnd.random() < 0.97:
                mid += 1
                sender = f"agent:{agent}" if human and t >= handover else "bot"
                msgs.append((mid, cid, "out", sender, answer))
                if sender != "bot" and first_reply is None:
                    first_reply = answer
            t = answer + rnd.uniform(10, 900)
        if human:
            sessions.append((cid, "closed", f"g{agent % 5}", agent, handover - rnd.uniform(5, 120), handover,
                             first_reply, t))
        if rnd.random() < 0.3:
            orders.append((f"o{cid}", cid if rnd.random() < 0.8 else None, t))
    con.executemany("INSERT INTO messages (id, account_id, conversation_id, channel, direction, kind, peer_id, sender,"
                    " data, raw, sent_at, created_at) VALUES (?, 'acme', ?, 'wecom', ?, 'text', '', ?, '{}', '', 0, ?)",
                    msgs)
    con.executemany("INSERT INTO service_sessions (conversation_id, account_id, state, \"group\", priority, agent_id,"
                    " vip_level, first_message, suggestions, created_at, handover_at, first_reply_at, closed_at)"
                    " VALUES (?, 'acme', ?, ?, 0, ?, 0, '', '[]', ?, ?, ?, ?)", sessions)
    con.executemany("INSERT INTO bot_outcomes (message_id, conversation_id, account_id, outcome, text, normalized, at)"
                    " VALUES (?, ?, 'acme', ?, '', '', ?)", outcomes)
    con.executemany("INSERT INTO orders (platform, order_id, shop_id, customer_id, buyer_id, buyer_nick, status,"
                    " platform_status, refund_status, total_fen, paid_fen, postage_fen, discount_fen,"
                    " logistics_company, tracking_no, receiver_name, receiver_phone, receiver_address, created_at,"
                    " modified_at, raw, synced_at) VALUES ('taobao', ?, '', ?, '', '', 'paid', '', 'none', 0, 0, 0,"
                    " 0, '', '', '', '', '', ?, 0, '{}', 0)", orders)
    con.commit()
    con.close()
    return {"messages": len(msgs), "sessions": len(sessions), "conversations": conversations, "orders": len(orders)}


async def timed(fn, runs: int) -> tuple[float, object]:  # noqa: ANN001
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = await fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--per-day", type=int, default=20000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:
        args.per_day, args.runs = 3000, 3
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        db = Database(url)
        await db.create_schema()
        t0 = time.perf_counter()
        sizes = build(f"{tmp}/bench.db", args.days, args.per_day)
        print(f"archive: {sizes} built in {time.perf_counter() - t0:.1f} s")
        clock = FakeClock(NOW)
        stats = Stats(db, clock, Settings(db, clock))
        today_ms, today = await timed(stats.today, args.runs)
        health_ms, health = await timed(stats.health, args.runs)
        print(f"today:  {today_ms:8.1f} ms  sessions={today['total']['sessions']} "
              f"frt p50={today['total']['first_response_p50']} s avg reply={today['total']['avg_reply']} s")
        print(f"health: {health_ms:8.1f} ms  48h share={health['answered_48h']['share']} "
              f"(judged {health['answered_48h']['judged']}) linked orders={health['linked_orders']['share']}")
        from hub.supervisor.dashboard import Dashboard
        from hub.routing.dispatch import Dispatcher
        hub = SimpleNamespace(db=db, clock=clock, settings=stats.settings,
                              sessions=SimpleNamespace(dispatcher=Dispatcher(), agents={}))
        dash = Dashboard(hub)
        snap_ms, _ = await timed(lambda: dash.snapshot(fresh=True), args.runs)
        print(f"snapshot (fresh figures): {snap_ms:8.1f} ms")
        await db.dispose()
    print(json.dumps({"messages": sizes["messages"], "sessions": sizes["sessions"], "today_ms": round(today_ms, 1),
                      "health_ms": round(health_ms, 1), "snapshot_fresh_ms": round(snap_ms, 1)}))


if __name__ == "__main__":
    asyncio.run(main())
