"""What the benches share: the bench account, processes (start, stop, health), the platform stand-in,
the message factory (signed, encrypted WeCom text callbacks) and the ``wrk`` runner
(``bench/callbacks.lua``). bench/callbacks.py, scale.py, push.py and alerts.py build on it."""
from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

LUA = ROOT / "bench" / "callbacks.lua"
ACCOUNT = "bench"
CORP_ID = "wwbench0123456789"
TOKEN = "scrmBenchToken2024"
AES_KEY = "k3Xq9vB2mN7pR4tY8wZ1cF6hJ0lD5sG3aE2uI9oP7yT"  # 43 chars
assert len(AES_KEY) == 43

PRODUCTS = ("水光精华", "舒缓面霜", "修护乳液", "焕亮爽肤水", "氨基酸洁面乳", "玻尿酸面膜", "紧致眼霜",
            "清爽防晒霜", "温和卸妆油", "滋养身体乳", "婴儿纸尿裤", "宝宝护臀膏", "烟酰胺精华", "维C安瓶")
QUESTIONS = ("{p}敏感肌可以用吗", "{p}孕妇能用吗", "{p}保质期多久", "{p}什么时候发货", "{p}可以退货吗",
             "{p}有赠品吗", "{p}直播间有优惠吗", "{p}能用优惠券吗", "{p}是正品吗", "{p}适合什么肤质",
             "我买的{p}还没到，帮我查下物流", "{p}用了有点刺痛正常吗", "{p}有小样吗", "{p}多少钱",
             "订单里的{p}少发了一瓶", "{p}和之前的版本有什么区别", "{p}能开发票吗", "{p}什么时候补货")
BEFORE = ("", "", "你好，", "请问", "亲，", "在吗？", "客服你好，", "麻烦问一下，")
AFTER = ("", "", "？", "呀", "呢", "，谢谢", "，急", "～", "。订单号20240618{n:04d}")


def standin_server(port: int) -> None:
    """The platform APIs the hub calls back (token, message sends): tests/platform_standin.py on
    loopback, so outbound work (e.g. queue-position notices) succeeds instead of going to the internet."""
    from aiohttp import web

    from tests.platform_standin import Standin
    web.run_app(Standin().app(), host="127.0.0.1", port=port, access_log=None, print=lambda *_: None)


# ---------------------------------------------------------------------------------------------
# messages

def question(rng: random.Random) -> str:
    """A customer's question, in words the bench's FAQs and keyword rules know."""
    q = rng.choice(QUESTIONS).format(p=rng.choice(PRODUCTS))
    return rng.choice(BEFORE) + q + rng.choice(AFTER).format(n=rng.randrange(10000))


class MessageFactory:
    """Distinct, signed, encrypted WeCom text callbacks (one data-file line each)."""

    def __init__(self, senders: int, seed: int = 11):
        from tests.wechat_client import PlatformSim, text_xml
        self.sim = PlatformSim("wecom", ACCOUNT, TOKEN, AES_KEY, CORP_ID)
        self.text_xml = text_xml
        self.rng = random.Random(seed)
        self.senders = [f"wmBench{i:06d}x{self.rng.randrange(16**6):06x}" for i in range(senders)]
        self.seq = 0
        self.made = 0

    def text(self) -> str:
        return question(self.rng)

    def write(self, path: Path, count: int, every_sender: bool = False) -> int:
        """Write ``count`` new messages to ``path`` (from random senders, or with ``every_sender`` from
        each sender in turn); returns how many were written."""
        ts = str(int(time.time()))
        now = int(ts)
        with open(path, "w", encoding="utf-8") as fh:
            for i in range(count):
                self.seq += 1
                sender = self.senders[i % len(self.senders)] if every_sender else self.rng.choice(self.senders)
                xml = self.text_xml(CORP_ID, sender, self.text(),
                                    7_300_000_000_000_000_000 + self.seq, create_time=now)
                query, body = self.sim.encrypted(xml, timestamp=ts, nonce=f"{self.seq:08x}{self.rng.randrange(16**6):06x}")
                fh.write(f"{self.sim.path}?{urlencode(query)}\t{body.decode()}\n")
        self.made += count
        return count


# ---------------------------------------------------------------------------------------------
# processes

def clean_tmp(tmp: Path, keep: bool) -> None:
    """Remove a bench's temporary directory (the files in it), or with ``keep`` say where it is."""
    if keep:
        print(f"kept {tmp}", file=sys.stderr)
        return
    for f in tmp.glob("*"):
        f.unlink()
    tmp.rmdir()


def process_cpu(stat: Path) -> tuple[str, float]:
    """(command name, utime + stime in seconds) of one process, from its /proc/<pid>/stat."""
    head, tail = stat.read_text().rsplit(")", 1)
    fields = tail.split()
    return head.split("(", 1)[1], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads so far (0 if it is gone)."""
    try:
        return process_cpu(Path(f"/proc/{pid}/stat"))[1]
    except (OSError, IndexError, ValueError):
        return 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    fh = open(log, "wb")
    try:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)  # own process group: killed as a whole
    finally:
        fh.close()


def kill_group(proc: "subprocess.Popen | asyncio.subprocess.Process | None", sig: int = signal.SIGKILL) -> None:
    """Signal a process's group, unless it has ended (a Popen or an asyncio subprocess)."""
    if proc is None or (proc.poll() if isinstance(proc, subprocess.Popen) else proc.returncode) is not None:
        return
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def stop(proc: subprocess.Popen | None, timeout: float = 30.0) -> int | None:
    """SIGTERM, wait, then SIGKILL the process group."""
    if proc is None:
        return None
    if proc.poll() is None:
        kill_group(proc, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_group(proc, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


def wait_healthy(port: int, proc: subprocess.Popen, log: Path, path: str = "/healthz", timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}) during start:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    raise SystemExit(f"server on :{port} not healthy after {timeout}s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def paused(proc: subprocess.Popen):
    """SIGSTOP the hub while a bare server is measured: between its own runs it works off the backlog
    of pipeline jobs its floods left (a core's worth of CPU), which would otherwise be taken from the
    ceiling measured on the same 2 cores. Its timers see the pause as a jump in time, nothing else."""
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(proc.pid, signal.SIGCONT)


def run_wrk(port: int, data: Path, mode: str, seconds: float, threads: int, connections: int,
            procs: list, grace: int = 15, rate: float = 0) -> dict:
    """One wrk run; returns the BENCH_JSON dict of callbacks.lua (plus wrk's text output).
    ``rate`` > 0 paces the requests (that many per second over all threads) instead of flooding.

    ``-d`` is only a safety limit (seconds + grace): the Lua threads stop sending after ``seconds``,
    wait for their outstanding responses and stop themselves. A server that does not answer within
    the grace leaves the run undrained ("drained": false): its unanswered requests are not acked."""
    safety = int(math.ceil(seconds)) + grace
    cmd = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{safety}s", "--timeout", "30s", "--latency",
           "-s", str(LUA), f"http://127.0.0.1:{port}", "--", str(data), mode, f"{seconds}", str(threads)] + ([f"{rate:g}"] if rate > 0 else [])
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    procs.append(proc)
    err_lines: list[str] = []

    def pump_stderr() -> None:
        done = 0
        for line in proc.stderr:  # type: ignore[union-attr]
            if line.strip() == "BENCH_THREAD_DONE":
                done += 1
                if done == threads:
                    # every thread has drained; wake wrk's main thread from its -d sleep.
                    # (repeat: a signal can land on a worker thread that is still returning)
                    for _ in range(40):
                        if proc.poll() is not None:
                            break
                        try:
                            proc.send_signal(signal.SIGINT)
                        except ProcessLookupError:
                            break
                        time.sleep(0.25)
            else:
                err_lines.append(line)

    pump = threading.Thread(target=pump_stderr, daemon=True)
    pump.start()
    out = proc.stdout.read()  # type: ignore[union-attr]
    proc.wait()
    pump.join(5)
    procs.remove(proc)
    for line in out.splitlines():
        if line.startswith("BENCH_JSON "):
            res = json.loads(line[len("BENCH_JSON "):])
            res["wrk_text"] = out
            return res
    raise SystemExit(f"wrk produced no result (rc={proc.returncode}):\n{out}\n{''.join(err_lines)}")
