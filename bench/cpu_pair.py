"""What a second busy process costs the first on this machine, with no hub in it.

bench/scale.py compares the hub's CPU per callback with one and with two worker processes. Part of
any difference is the machine's, not the hub's: two processes busy at once on the 2 vCPUs share the
host's caches, memory bandwidth and (under a hypervisor) possibly one physical core, so each does
less per CPU-second than one alone. This measures that share for a CPU-bound Python workload of the
hub's kind (dicts, short strings, JSON, SHA-1): the work one process does per CPU-second alone, and
per CPU-second while a second copy runs beside it, in rounds alternated (alone, pair, alone, pair ...)
so a machine that speeds up or slows down during the run affects both sides alike.

``pair_efficiency`` = the median over rounds of (a process's work per CPU-second in a pair) / (the
adjacent alone round's): 1.0 means two processes cost nothing extra per unit of work; 0.88 means a
callback's CPU would read 1 / 0.88 - 1 = 14 % higher with two busy workers than with one, from the
machine alone (``cpu_drift_floor``).

    python bench/cpu_pair.py            # 9 rounds x (3 s alone + 3 s pair)
    python bench/cpu_pair.py --quick    # 4 rounds x (2 s + 2 s), < 45 s

Last line: one JSON object (alone_ops_per_cpu_s, pair_ops_per_cpu_s, pair_efficiency, cpu_drift_floor, ...).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import subprocess
import sys
import time


def work(seconds: float) -> float:
    """Units of work per CPU-second of this process, over ``seconds`` of wall time."""
    table: dict[str, str] = {}
    units = 0
    cpu0, end = time.process_time(), time.monotonic() + seconds
    while time.monotonic() < end:
        for i in range(500):
            key = f"wmBench{i:06d}"
            table[key] = json.dumps({"id": i, "text": key, "k": [i, i + 1]})
            hashlib.sha1(table[key].encode()).digest()
            json.loads(table[key])
        if len(table) > 4096:
            table.clear()
        units += 1
    return units / (time.process_time() - cpu0)


def run_copies(copies: int, seconds: float) -> list[float]:
    """Start ``copies`` worker processes at once; each one's units per CPU-second."""
    procs = [subprocess.Popen([sys.executable, __file__, "--work", str(seconds)], stdout=subprocess.PIPE, text=True)
             for _ in range(copies)]
    return [float(p.communicate()[0]) for p in procs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 rounds x (2 s + 2 s), < 45 s")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--seconds", type=float)
    ap.add_argument("--work", type=float, help=argparse.SUPPRESS)  # a worker process
    args = ap.parse_args()
    if args.work:
        print(work(args.work))
        return
    rounds = args.rounds or (4 if args.quick else 9)
    seconds = args.seconds or (2.0 if args.quick else 3.0)
    started = time.monotonic()
    alone, pair, ratios = [], [], []
    for r in range(rounds):
        [a] = run_copies(1, seconds)
        p = run_copies(2, seconds)
        alone.append(a)
        pair.extend(p)
        ratios.append(statistics.mean(p) / a)
        print(f"round {r + 1}: alone {a:.0f}/cpu-s, pair {p[0]:.0f} + {p[1]:.0f}/cpu-s, ratio {ratios[-1]:.3f}",
              file=sys.stderr)
    efficiency = statistics.median(ratios)
    print(json.dumps({
        "alone_ops_per_cpu_s": round(statistics.median(alone), 1),
        "pair_ops_per_cpu_s": round(statistics.median(pair), 1),
        "pair_efficiency": round(efficiency, 3),
        "cpu_drift_floor": round(1 / efficiency - 1, 3),
        "pair_ratio_runs": [round(x, 3) for x in ratios],
        "rounds": rounds, "seconds": seconds, "quick": args.quick,
        "wall_s": round(time.monotonic() - started, 1),
    }))


if __name__ == "__main__":
    main()
