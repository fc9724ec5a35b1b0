"""Benchmark order sync: bulk CSV import, then the customer profile beside a session.

1. Generates a CSV file (streamed to disk, never held in memory) of N orders over C customers in the
   hub's CSV format (``hub.orders.custom``): one line per item, ~5% of orders with two lines, GMT+8
   times within the last 300 days, yuan amounts, masked receiver phones, a plain ``buyer_phone`` for
   half of the customers; customer 0 has 500 orders.
2. Imports it into a fresh SQLite file (WAL; the hub's ``Database``) with
   ``hub.orders.csv_import.import_csv`` — the function ``POST /api/orders/import`` runs — through an
   ``OrderSync`` with the real ``Settings`` and ``CustomerService`` (identity resolution, no-regress
   checks, batched rule tags VIP/复购/category included in the timing). Reports rows (CSV lines) per
   second and the importing process's peak memory: ``resource.getrusage(RUSAGE_SELF).ru_maxrss``
   (whole process, the interpreter and libraries included).
3. Profile lookup: ``CustomerService.get(customer_id)`` (identities, tags and the 5 latest orders via
   ``recent_orders``) for the customer with 500 orders, ``--lookups`` times; p50/p99 in ms.

Targets: ≥ 20,000 rows/s, peak < 300 MB, profile p99 < 10 ms. Prints human-readable lines, then
one JSON line last (``rows`` = CSV data lines, ``orders`` = orders written; ``import_cpu_s`` = CPU
time of the process during the import and ``load_avg_1m`` the machine's load when it ended: on a
shared machine, wall-clock rows/s drops when other processes take the CPU).

    python bench/orders.py            # 1,000,000 orders over 200,000 customers
    python bench/orders.py --quick    # 100,000 orders over 20,000 customers, < 45 s
"""
from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub.clock import Clock  # noqa: E402
from hub.customers.service import CustomerService  # noqa: E402
from hub.db import Database  # noqa: E402
from hub.models import orders as _order_tables  # noqa: E402,F401 - the order tables
from hub.orders import store  # noqa: E402
from hub.orders.csv_import import import_csv  # noqa: E402
from hub.orders.custom import CSV_COLUMNS  # noqa: E402
from hub.orders.sync import OrderSync  # noqa: E402
from hub.push import MemoryStreams, Push  # noqa: E402
from hub.settings import Settings  # noqa: E402

TARGET_ROWS_PER_S, TARGET_PEAK_MB, TARGET_P99_MS = 20_000, 300, 10.0
WHALE_ORDERS = 500
PRODUCTS = [("水光精华", "护肤", "199.00"), ("舒缓面霜", "护肤", "259.00"), ("玻尿酸面膜", "护肤", "99.00"),
            ("婴儿纸尿裤", "母婴", "139.00"), ("宝宝护臀膏", "母婴", "49.90"), ("清爽防晒霜", "防晒", "129.00"),
            ("氨基酸洁面乳", "清洁", "69.00"), ("温和卸妆油", "清洁", "119.00"), ("紧致眼霜", "护肤", "329.00")]
STATUSES = ["completed"] * 14 + ["shipped"] * 3 + ["paid", "refunded", "closed"]
HEADER = list(CSV_COLUMNS) + ["buyer_phone"]


class NoSio:
    async def emit(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        return None


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def gmt8(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(epoch + 8 * 3600))


def generate(path: Path, orders: int, customers: int, seed: int = 7) -> int:
    """Write the CSV; returns the number of data lines."""
    rnd = random.Random(seed)
    now = time.time()
    lines = 0
    whale_every = max(1, orders // WHALE_ORDERS)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(HEADER)
        for i in range(orders):
            c = 0 if i % whale_every == 0 and i // whale_every < WHALE_ORDERS else 1 + rnd.randrange(customers - 1)
            created = now - rnd.uniform(3600, 300 * 86400)
            status = rnd.choice(STATUSES)
            items = [rnd.choice(PRODUCTS)] + ([rnd.choice(PRODUCTS)] if rnd.random() < 0.05 else [])
            paid_total = sum(int(p[2].replace(".", "")) for p in items)
            paid = f"{paid_total // 100}.{paid_total % 100:02d}"
            platform = ("taobao", "jd", "youzan", "douyin")[c % 4]
            for n, (title, category, price) in enumerate(items):
                w.writerow([platform, f"{platform[0].upper()}{i:09d}", f"shop-{platform}", f"b{c:08d}", f"买家{c % 997}",
                            status, "", "", paid, "", "", gmt8(created), gmt8(created + 30), "", "",
                            gmt8(created + 86400), "张**", f"138****{c % 10000:04d}", "浙江省杭州市**路**号", "", "",
                            title, f"sku-{title}", "", f"{i}-{n}", "1", price, price, category,
                            f"139{c:08d}" if c % 2 else ""])
                lines += 1
    return lines


async def run(args: argparse.Namespace, work: Path) -> dict:
    csv_path = work / "orders.csv"
    t0 = time.perf_counter()
    lines = generate(csv_path, args.orders, args.customers)
    gen_s = time.perf_counter() - t0
    print(f"generated {lines:,} lines / {args.orders:,} orders over {args.customers:,} customers "
          f"({csv_path.stat().st_size / 1e6:.0f} MB) in {gen_s:.1f} s")
    db = Database(f"sqlite+aiosqlite:///{work / 'hub.db'}")
    await db.create_schema()
    clock = Clock()
    settings = Settings(db, clock)
    push = Push(NoSio(), MemoryStreams())
    customers = CustomerService(db, clock, push, settings)
    customers.orders = store.recent_orders
    sync = OrderSync(db, clock, settings, customers, push)
    base_mb = maxrss_mb()
    t0, cpu0 = time.perf_counter(), time.process_time()
    with open(csv_path, "rb") as f:
        result = await import_csv(sync, f)
    import_s, import_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    peak_mb = maxrss_mb()
    print(f"imported {result['imported']:,} orders ({result['lines']:,} lines, {result['rejected_total']} rejected, "
          f"{result['customers']:,} customers) in {import_s:.1f} s ({import_cpu:.1f} s CPU): "
          f"{result['lines'] / import_s:,.0f} rows/s; "
          f"peak RSS {peak_mb:.0f} MB (before import {base_mb:.0f} MB)")
    async with db.read() as conn:
        whale = (await conn.exec_driver_sql(
            "SELECT customer_id FROM orders WHERE buyer_id = 'b00000000' LIMIT 1")).scalar()
        whale_orders = (await conn.exec_driver_sql(
            f"SELECT count(*) FROM orders WHERE customer_id = {int(whale)}")).scalar()
    await customers.get(whale)  # warm
    times = []
    for _ in range(args.lookups):
        t = time.perf_counter()
        profile = await customers.get(whale)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    p50, p99 = times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]
    print(f"profile of a customer with {whale_orders} orders: p50 {p50:.2f} ms, p99 {p99:.2f} ms over "
          f"{args.lookups} lookups (tags: {', '.join(t['name'] for t in profile['tags'])})")
    db_mb = sum(p.stat().st_size for p in work.glob("hub.db*")) / 1e6
    await db.dispose()
    rows_per_s = result["lines"] / import_s
    out = {"bench": "orders", "quick": args.quick, "rows": result["lines"], "orders": result["imported"],
           "customers": result["customers"], "rejected": result["rejected_total"], "import_s": round(import_s, 2),
           "import_cpu_s": round(import_cpu, 2), "load_avg_1m": round(os.getloadavg()[0], 2),
           "rows_per_s": round(rows_per_s), "peak_mb": round(peak_mb, 1), "peak_measure": "ru_maxrss",
           "profile_orders": whale_orders, "profile_p50_ms": round(p50, 3), "profile_p99_ms": round(p99, 3),
           "lookups": args.lookups, "db_mb": round(db_mb), "generate_s": round(gen_s, 1)}
    out["targets_met"] = rows_per_s >= TARGET_ROWS_PER_S and peak_mb < TARGET_PEAK_MB and p99 < TARGET_P99_MS
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100k orders over 20k customers")
    ap.add_argument("--orders", type=int)
    ap.add_argument("--customers", type=int)
    ap.add_argument("--lookups", type=int, default=200)
    ap.add_argument("--dir", help="work directory (default: a temporary one, removed afterwards)")
    args = ap.parse_args()
    args.orders = args.orders or (100_000 if args.quick else 1_000_000)
    args.customers = args.customers or max(2, args.orders // 5)
    work = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="orders-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        out = asyncio.run(run(args, work))
    finally:
        if not args.dir:
            shutil.rmtree(work, ignore_errors=True)
    out["wall_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(out, ensure_ascii=False))


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
