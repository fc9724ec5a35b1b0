"""Benchmark archive search: the hub's full-text index vs LIKE '%q%' on the same archive, same run.

Builds a hub SQLite database under /tmp with N Chinese customer-service messages (default
1,000,000; --quick 100,000) over 4 accounts (unequal sizes) and 20,000 conversations, generated
from a vocabulary of real customer-service phrases in Zipf-like proportions (common words such as
退款/物流 in ~10% of messages, mid ones such as 发票/尺码 in ~0.5%, rare ones such as 过敏/急用 in
~0.01%). Then:

* indexes it with the hub's own indexer (hub/archive/search/indexer.py, the same catch-up the CLI
  runs) and reports the rate;
* times the hub's search (hub/archive/search/query.py through Database.read_heavy, as the API runs
  it: first page of 50, newest first, account filter, every hit highlighted) for common, mid and rare
  words and for substrings crossing jieba word boundaries (款到 = 退款|到账), and, in the same run on
  the same file, ``SELECT ... WHERE account_id = ? AND text LIKE '%q%' ORDER BY id DESC LIMIT 50``;
* checks recall: for every query, the complete result set (all pages) against everything LIKE finds;
* measures what indexing costs the callback path: bench/callbacks.py run with the hub's indexer on
  and off (HUB_SEARCH_INDEXER), interleaved, side by side.

Prints human-readable lines, then one JSON line last.

    python bench/search.py            # 1,000,000 messages
    python bench/search.py --quick    # 100,000 messages, < 45 s
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ACCOUNTS = (("brand-wecom", 0.45), ("brand-oa", 0.30), ("outlet-wecom", 0.15), ("kids-oa", 0.10))
CONVERSATIONS = 20_000
PRODUCTS = ("水光精华", "舒缓面霜", "修护乳液", "焕亮爽肤水", "氨基酸洁面乳", "玻尿酸面膜", "紧致眼霜", "清爽防晒霜",
            "温和卸妆油", "滋养身体乳", "婴儿纸尿裤", "宝宝护臀膏", "烟酰胺精华", "维C安瓶", "羊绒大衣", "牛仔裤")
# (weight, phrases): every draw picks a group by weight, then a phrase of it; "{p}" is a product, "{n}" a number
PHRASES = (
    (30.0, ("你好", "在吗", "请问", "亲", "麻烦问一下", "谢谢", "好的", "收到", "嗯嗯", "客服你好")),
    (12.0, ("我的订单什么时候发货", "怎么还没发货", "申请退款", "退款什么时候到账", "帮我查下物流", "物流一直没更新",
            "快递到哪了", "快递员联系不上", "退款到账了吗", "物流信息显示已签收")),
    (20.0, ("{p}多少钱", "{p}有货吗", "{p}适合什么肤质", "{p}怎么用", "{p}保质期多久", "{p}是正品吗",
            "订单号{n}", "{p}有小样吗", "{p}和之前的版本有什么区别", "{p}可以便宜点吗")),
    (0.9, ("能开发票吗", "发票抬头写错了", "尺码偏大还是偏小", "帮我换个尺码", "优惠券用不了", "优惠券过期了",
           "我要换货", "换货怎么寄回", "能以旧换新吗", "直播间的赠品没收到")),
    (0.004, ("用了{p}过敏了", "过敏了怎么办", "急用能加急吗", "明天急用", "我要投诉", "再不处理就投诉",
             "收到的{p}变质了", "东西变质了", "打12315", "包装破损漏液了")),
)
ENDINGS = ("", "", "", "？", "。", "！", "，", "～", "呢", "呀")
CALLBACK_TARGET_RATE = 6000  # callbacks/s the hub is built for (bench/callbacks.py)
QUERIES = {  # class -> queries (all with the account filter)
    "common": ("退款", "物流", "发货", "快递"),
    "mid": ("发票", "尺码", "优惠券", "换货"),
    "rare": ("过敏", "急用", "投诉", "变质"),
    # substrings crossing jieba word boundaries (in no jieba token): 退款|到账, 物流|信息, 发票|抬头, 过敏|了
    "cross": ("款到", "流信", "票抬", "敏了"),
}


def generate(path: Path, count: int, seed: int = 2024) -> dict[str, int]:
    """Fill the hub's tables (schema already created) with accounts, conversations and messages."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    now = time.time()
    for acc, _ in ACCOUNTS:
        conn.execute("INSERT INTO accounts (id, platform, name, token, encoding_aes_key, receive_id, secret, created_at,"
                     " updated_at) VALUES (?, ?, ?, 'tok', ?, ?, '', ?, ?)",
                     (acc, "oa" if acc.endswith("oa") else "wecom", acc, "k" * 43, "wx" + acc, now, now))
    accounts = rng.choices([a for a, _ in ACCOUNTS], [w for _, w in ACCOUNTS], k=CONVERSATIONS)
    conn.executemany("INSERT INTO conversations (id, account_id, channel, thread, peer_id, created_at) "
                     "VALUES (?, ?, ?, '', ?, ?)",
                     [(i + 1, a, "oa" if a.endswith("oa") else "wecom", f"peer{i}", now) for i, a in enumerate(accounts)])
    weights = [w for w, _ in PHRASES]
    groups = [g for _, g in PHRASES]
    start = now - 3 * 365 * 86400  # three years of archive: no cut-off by age
    step = (now - start) / count
    batch: list[tuple] = []
    per_account = {a: 0 for a, _ in ACCOUNTS}
    for i in range(count):
        parts = []
        for g in rng.choices(groups, weights, k=rng.randint(1, 4)):
            phrase = rng.choice(g)
            if "{" in phrase:
                phrase = phrase.format(p=rng.choice(PRODUCTS), n=rng.randint(10 ** 11, 10 ** 12 - 1))
            parts.append(phrase + rng.choice(ENDINGS))
        conv = rng.randrange(CONVERSATIONS) + 1
        acc = accounts[conv - 1]
        per_account[acc] += 1
        out = rng.random() < 0.35
        ts = start + i * step
        batch.append((i + 1, acc, conv, "oa" if acc.endswith("oa") else "wecom", "out" if out else "in", "text",
                      f"peer{conv - 1}", "agent:7" if out else "customer", f"m:{i}", "".join(parts), int(ts), ts))
        if len(batch) == 20_000:
            _insert(conn, batch)
            batch = []
    _insert(conn, batch)
    conn.execute("COMMIT")
    conn.close()
    return per_account


def _insert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    conn.executemany("INSERT INTO messages (id, account_id, conversation_id, channel, direction, kind, peer_id, sender, "
                     "dedup_key, text, data, raw, sent_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{}', '', ?, ?)",
                     rows)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


LIKE_PAGE = ("SELECT m.id, m.conversation_id, m.text, m.created_at FROM messages m "
             "WHERE m.account_id = :a AND m.text LIKE :p ORDER BY m.id DESC LIMIT 50")
LIKE_ALL = "SELECT id FROM messages WHERE account_id = :a AND text LIKE :p"


async def measure_queries(db_url: str, reps: int, like_reps: int) -> dict:
    from sqlalchemy import text

    from hub.archive.search.api import render_hit
    from hub.archive.search.query import SearchFilters, search
    from hub.auth_views import SERVICE_USER
    from hub.db import Database

    db = Database(db_url)
    account = ACCOUNTS[0][0]
    filters = SearchFilters(account=account)
    out: dict = {"classes": {}, "fts_ms": [], "like_ms": [], "recall_found": 0, "recall_like": 0, "extra": 0}
    try:
        for cls, queries in QUERIES.items():
            fts_ms: list[float] = []
            like_ms: list[float] = []
            hits: dict[str, int] = {}
            for q in queries:
                like_param = {"a": account, "p": f"%{q}%"}
                for r in range(reps + 2):  # two warm-ups
                    t = time.perf_counter()
                    page = await search(db, q, filters, 50)
                    rendered = [render_hit(row, page.terms, SERVICE_USER) for row in page.rows]
                    elapsed = (time.perf_counter() - t) * 1000
                    if r >= 2:
                        fts_ms.append(elapsed)
                for r in range(like_reps + 1):  # one warm-up
                    t = time.perf_counter()
                    async with db.read_heavy() as conn:
                        like_page = (await conn.execute(text(LIKE_PAGE), like_param)).all()
                    elapsed = (time.perf_counter() - t) * 1000
                    if r >= 1:
                        like_ms.append(elapsed)
                assert [row.id for row in page.rows] == [row.id for row in like_page], f"first page differs: {q}"
                assert all("<mark>" in h["highlight"] for h in rendered)
                # recall: every page of the hub's search against everything LIKE finds
                found: list[int] = []
                before = None
                while True:
                    p = await search(db, q, filters, 200, before)
                    found += [row.id for row in p.rows]
                    if p.next_before is None:
                        break
                    before = p.next_before
                async with db.read_heavy() as conn:
                    like_all = {row.id for row in (await conn.execute(text(LIKE_ALL), like_param)).all()}
                out["recall_found"] += len(like_all & set(found))
                out["recall_like"] += len(like_all)
                out["extra"] += len(set(found) - like_all)
                assert found == sorted(found, reverse=True) and len(found) == len(set(found))
                hits[q] = len(like_all)
            out["classes"][cls] = {
                "hits": hits, "p50_ms": round(statistics.median(fts_ms), 3), "p99_ms": round(pct(fts_ms, 99), 3),
                "like_p50_ms": round(statistics.median(like_ms), 2), "like_p99_ms": round(pct(like_ms, 99), 2),
                "speedup": round(statistics.median(like_ms) / statistics.median(fts_ms), 1)}
            out["fts_ms"] += fts_ms
            out["like_ms"] += like_ms
    finally:
        await db.dispose()
    return out


async def build_index(db_url: str) -> tuple[int, float, float]:
    """(texts indexed, wall seconds, CPU seconds of this process) for a catch-up from nothing."""
    from hub.archive.search.indexer import SearchIndexer, ensure_index
    from hub.clock import Clock
    from hub.db import Database
    db = Database(db_url)
    try:
        await ensure_index(db)
        t, cpu = time.perf_counter(), time.process_time()
        n = await SearchIndexer(db, Clock(), batch=2000).catch_up()
        return n, time.perf_counter() - t, time.process_time() - cpu
    finally:
        await db.dispose()


def callbacks_run(indexer: str, quick: bool) -> dict:
    env = {**os.environ, "HUB_SEARCH_INDEXER": indexer}
    args = ["--runs", "1", "--duration", "2", "--warmup", "0.5"] if quick else ["--runs", "1", "--duration", "8"]
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "callbacks.py"), *args], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("{")]
    if run.returncode != 0 or not lines:
        raise RuntimeError(f"bench/callbacks.py failed ({run.returncode}): {run.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="100,000 messages, one short callbacks pair (< 45 s)")
    ap.add_argument("--messages", type=int, help="archive size (default 1,000,000; quick 100,000)")
    ap.add_argument("--reps", type=int, help="timed repetitions per query (default 40; quick 15)")
    ap.add_argument("--no-callbacks", action="store_true", help="skip the indexer-vs-callbacks measurement")
    ap.add_argument("--keep", action="store_true", help="keep the database under /tmp")
    args = ap.parse_args()
    count = args.messages or (100_000 if args.quick else 1_000_000)
    reps = args.reps or (15 if args.quick else 40)
    like_reps = 2 if args.quick else 5
    wall0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-", dir="/tmp"))
    path = tmp / "hub.db"
    db_url = f"sqlite+aiosqlite:///{path}"
    try:
        from hub.db import Database

        async def schema() -> None:
            db = Database(db_url)
            await db.create_schema()
            await db.dispose()

        asyncio.run(schema())
        t = time.perf_counter()
        per_account = generate(path, count)
        gen_s = time.perf_counter() - t
        print(f"generated {count:,} messages in {gen_s:.1f} s ({', '.join(f'{a} {n:,}' for a, n in per_account.items())})")
        indexed, index_s, index_cpu = asyncio.run(build_index(db_url))
        size_mb = path.stat().st_size / 1e6
        cpu_us = index_cpu / indexed * 1e6
        # the most indexing could take from callbacks at the target rate if it never backed off
        worst = 1 / (1 + CALLBACK_TARGET_RATE * cpu_us / 1e6)
        print(f"indexed {indexed:,} texts in {index_s:.1f} s ({indexed / index_s:,.0f}/s with the hub's indexer, "
              f"{cpu_us:.0f} us CPU each: never backing off, it would leave {worst:.0%} of the throughput at "
              f"{CALLBACK_TARGET_RATE}/s); db {size_mb:.0f} MB")
        res = asyncio.run(measure_queries(db_url, reps, like_reps))
        for cls, c in res["classes"].items():
            print(f"{cls:6}: search p50 {c['p50_ms']:.2f} ms p99 {c['p99_ms']:.2f} ms | LIKE p50 {c['like_p50_ms']:.1f} ms "
                  f"p99 {c['like_p99_ms']:.1f} ms | x{c['speedup']} | hits {c['hits']}")
        recall = res["recall_found"] / res["recall_like"] if res["recall_like"] else 1.0
        p50, p99 = statistics.median(res["fts_ms"]), pct(res["fts_ms"], 99)
        like_p50, like_p99 = statistics.median(res["like_ms"]), pct(res["like_ms"], 99)
        rare = res["classes"]["rare"]
        print(f"all   : search p50 {p50:.2f} ms p99 {p99:.2f} ms ({len(res['fts_ms'])} searches) | "
              f"LIKE p50 {like_p50:.1f} ms p99 {like_p99:.1f} ms | recall {recall:.4f} "
              f"({res['recall_found']:,}/{res['recall_like']:,}; {res['extra']} found beyond LIKE)")
        cb: dict = {}
        if not args.no_callbacks:
            pairs = 1 if args.quick else 2
            on, off = [], []
            for i in range(pairs):  # interleaved: on, off, off, on
                for mode in (("on", "off") if i % 2 == 0 else ("off", "on")):
                    r = callbacks_run(mode, args.quick)
                    (on if mode == "on" else off).append(r["callbacks_per_s"])
                    print(f"callbacks with indexer {mode:3}: {r['callbacks_per_s']:.0f}/s p99 {r['p99_ms']} ms")
            cb = {"callbacks_indexer_on_per_s": statistics.median(on), "callbacks_indexer_off_per_s": statistics.median(off),
                  "callbacks_ratio_on_off": round(statistics.median(on) / statistics.median(off), 3)}
            print(f"callback throughput with the indexer / without: {cb['callbacks_ratio_on_off']:.1%} "
                  f"(target >= 80%)")
        wall = time.perf_counter() - wall0
        meets = {"p99": p99 <= 10.0, "speedup_rare": rare["speedup"] >= 50, "recall": recall == 1.0,
                 **({"callbacks": cb["callbacks_ratio_on_off"] >= 0.8} if cb else {})}
        print("targets: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in meets.items()) + f"; wall {wall:.1f} s; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(json.dumps({
            "messages": count, "accounts": len(ACCOUNTS), "page": 50, "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
            "like_p50_ms": round(like_p50, 2), "like_p99_ms": round(like_p99, 2),
            "speedup": rare["speedup"], "speedup_all_p50": round(like_p50 / p50, 1), "recall": recall,
            "found_beyond_like": res["extra"], "classes": res["classes"], "index_build_s": round(index_s, 1),
            "index_msgs_per_s": round(indexed / index_s), "index_cpu_us_per_msg": round(cpu_us, 1),
            "callbacks_worst_case_ratio_at_target_rate": round(worst, 3), "generate_s": round(gen_s, 1), "db_mb": round(size_mb),
            **cb, "meets": meets, "quick": args.quick, "reps": reps, "wall_s": round(wall, 1),
            "load_avg_1m": round(os.getloadavg()[0], 2)}, ensure_ascii=False))
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            for f in tmp.glob("*"):
                f.unlink()
            tmp.rmdir()


if __name__ == "__main__":
    main()
