"""Summarize a py-spy raw (collapsed stacks) profile, e.g. the one bench/push.py --profile writes.

    python bench/push_profile.py FILE [--top 25] [--grep SUBSTRING ...]

Prints the sample total, the task entry points (the frame right under ``Handle._run``: which
coroutine or callback the loop was running), the top functions by inclusive and by self samples,
and, for each --grep, the samples whose stack contains it.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

LINE = re.compile(r"^(.*) (\d+)$")


def frames(stack: str) -> list[str]:
    # "func (file:line)" -> "func (file)" so lines of one function add up
    return [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("file")
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--grep", action="append", default=[])
    args = ap.parse_args()
    total = 0
    self_c: Counter = Counter()
    incl: Counter = Counter()
    entry: Counter = Counter()
    greps: Counter = Counter()
    with open(args.file, encoding="utf-8", errors="replace") as fh:
        for raw in fh:
            m = LINE.match(raw.rstrip("\n"))
            if not m:
                continue
            stack, n = m.group(1), int(m.group(2))
            fs = frames(stack)
            total += n
            self_c[fs[-1]] += n
            for f in set(fs):
                incl[f] += n
            idx = next((i for i, f in enumerate(fs) if f.startswith("Handle._run")), None)
            entry[fs[idx + 1] if idx is not None and idx + 1 < len(fs) else fs[-1]] += n
            for g in args.grep:
                if g in stack:
                    greps[g] += n
    pc = lambda n: f"{n:6d} {100 * n / total:5.1f}%"  # noqa: E731
    print(f"{total} samples")
    print("\n-- task entry points (frame under Handle._run)")
    for f, n in entry.most_common(args.top):
        print(f"{pc(n)}  {f}")
    print("\n-- inclusive")
    for f, n in incl.most_common(args.top):
        print(f"{pc(n)}  {f}")
    print("\n-- self")
    for f, n in self_c.most_common(args.top):
        print(f"{pc(n)}  {f}")
    if greps:
        print("\n-- stacks containing")
        for g in args.grep:
            print(f"{pc(greps[g])}  {g}")


if __name__ == "__main__":
    main()
