"""The push bench's helper processes and what is measured about them: the JSON-lines pipe between the
orchestrator and its agents / load generator processes (``jline`` and ``stdin_lines`` on the helper
side, ``Child`` on the orchestrator side), CPU% per process (``CpuMeter``) and py-spy profiles of
the hub (``profile_hub`` / ``end_profile``)."""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import ROOT, cpu_seconds

LINE_LIMIT = 1 << 28  # JSON result lines can be a few MB


def jline(obj) -> None:  # noqa: ANN001
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def stdin_lines():  # noqa: ANN201
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:
            return
        if line.strip():
            yield json.loads(line)


class Child:
    """A helper process speaking JSON lines on stdin/stdout (its stderr goes to a log file)."""

    def __init__(self, name: str, proc: asyncio.subprocess.Process, log: Path):
        self.name, self.proc, self.log = name, proc, log

    @classmethod
    async def spawn(cls, name: str, argv: list[str], log: Path, env: dict[str, str]) -> "Child":
        fh = open(log, "wb")
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv, cwd=ROOT, env=env, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=fh, start_new_session=True, limit=LINE_LIMIT)
        finally:
            fh.close()
        return cls(name, proc, log)

    async def read(self, timeout: float = 60.0) -> dict:
        while True:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)  # type: ignore[union-attr]
            if not line:
                await asyncio.sleep(0.2)
                raise SystemExit(f"{self.name} exited ({self.proc.returncode}):\n{self.log.read_text(errors='replace')[-3000:]}")
            if line.startswith(b"{"):
                return json.loads(line)

    async def call(self, cmd: dict, timeout: float = 120.0) -> dict:
        self.proc.stdin.write((json.dumps(cmd, ensure_ascii=False) + "\n").encode())  # type: ignore[union-attr]
        await self.proc.stdin.drain()  # type: ignore[union-attr]
        return await self.read(timeout)

    async def close(self) -> None:
        if self.proc.returncode is None:
            try:
                await self.call({"cmd": "quit"}, timeout=5)
                await asyncio.wait_for(self.proc.wait(), 5)
            except Exception:  # noqa: BLE001
                pass
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await self.proc.wait()




def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle (from /proc/stat)."""
    try:
        vals = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return (sum(vals[:8]) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


class CpuMeter:
    """CPU% (100 = one core) of the bench's processes over a window, plus ``other``: what the rest of
    the machine used meanwhile (other people's tests on a shared box make every number noisier)."""

    def __init__(self, pids: dict[str, list[int]]):
        self.pids = pids
        self.t0 = time.perf_counter()
        self.m0 = machine_busy_seconds()
        self.c0 = {k: sum(cpu_seconds(p) for p in v) for k, v in pids.items()}

    def done(self) -> dict[str, float]:
        dt = time.perf_counter() - self.t0
        out = {k: round(100 * (sum(cpu_seconds(p) for p in v) - self.c0[k]) / dt, 1) for k, v in self.pids.items()}
        out["other"] = round(max(0.0, 100 * (machine_busy_seconds() - self.m0) / dt - sum(out.values())), 1)
        return out


def profile_hub(pid: int, out: Path, args: argparse.Namespace, spies: list) -> subprocess.Popen:
    """py-spy record (raw collapsed stacks) of the hub until end_profile."""
    out.parent.mkdir(parents=True, exist_ok=True)
    spy = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--rate", str(args.profile_hz), "--format", "raw",
                            "--nonblocking", *args.profile_flags.split(), "-o", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                           env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"})
    spies.append(spy)
    return spy


async def end_profile(spy: subprocess.Popen, spies: list) -> None:
    spy.send_signal(signal.SIGINT)  # py-spy writes its output on Ctrl-C
    await asyncio.to_thread(spy.wait, 30)
    spies.remove(spy)
