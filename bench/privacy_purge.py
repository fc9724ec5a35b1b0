"""Benchmark: callback latency while the retention purge removes a large backlog.

One hub app in this process (its event loop is shared by the callbacks and the purge, as in
production) on a fresh SQLite file, ``--old`` archived messages 400 days old in 2,000 conversations
and a 180-day retention policy. Encrypted WeCom text callbacks from new customers are posted at
``--rate`` per second, four at a time at most, first with nothing else running ("idle"), then while
``Purger.run_once`` deletes the backlog in its bounded batches ("purging"). Reported: callback latency
p50/p99 in both phases side by side, their ratio, the purge's duration and rows per second, and
that every old message went while every new one stayed.

    python bench/privacy_purge.py            # 50,000 old messages
    python bench/privacy_purge.py --quick    # 2,000 old messages (< 45 s)

Prints human-readable lines, then one JSON line last.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession  # noqa: E402
from aiohttp.test_utils import TestServer  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from hub.app import HUB, create_app  # noqa: E402
from hub.callbacks import xmlcodec  # noqa: E402
from hub.callbacks.crypto import MessageCrypto, sign  # noqa: E402
from hub.config import AccountConfig, HubConfig  # noqa: E402
from hub.models import Conversation, Message, RetentionPolicy  # noqa: E402
from hub.privacy.purge import PURGE_BATCH, Purger  # noqa: E402

ACCOUNT, CORP_ID, TOKEN = "bench", "wwbench0123456789", "scrmBenchToken2024"
AES_KEY = "k3Xq9vB2mN7pR4tY8wZ1cF6hJ0lD5sG3aE2uI9oP7yT"
DAY = 86400.0


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * (len(s) - 1))))] if s else float("nan")


async def seed(hub, old: int) -> None:  # noqa: ANN001
    now = hub.clock.now()
    at = now - 400 * DAY
    async with hub.db.write() as conn:
        await conn.execute(Conversation.__table__.insert(), [
            {"account_id": ACCOUNT, "channel": "wecom", "thread": "", "peer_id": f"old-{i}", "created_at": at}
            for i in range(2000)])
    first_conv = 1
    chunk = 5000
    for start in range(0, old, chunk):
        rows = [{"account_id": ACCOUNT, "conversation_id": first_conv + (i % 2000), "channel": "wecom",
                 "direction": "in", "kind": "text", "peer_id": f"old-{i % 2000}", "sender": "customer",
                 "dedup_key": f"old:{i}", "text": f"一年多以前的消息 {i} 订单咨询", "data": "{}", "raw": "",
                 "sent_at": int(at), "created_at": at + i * 0.001} for i in range(start, min(old, start + chunk))]
        async with hub.db.write() as conn:
            await conn.execute(Message.__table__.insert(), rows)
    async with hub.db.write() as conn:
        await conn.execute(RetentionPolicy.__table__.insert().values(
            account_id="*", messages_days=180, media_days=180, orders_days=None, updated_at=now, updated_by="bench"))


class Sender:
    def __init__(self, session: ClientSession, base: str):
        self.session, self.base = session, base
        self.crypto = MessageCrypto(AES_KEY, CORP_ID)
        self.n = 0

    async def one(self) -> float:
        self.n += 1
        xml = xmlcodec.render({"ToUserName": CORP_ID, "FromUserName": f"new-{self.n}", "CreateTime": int(time.time()),
                               "MsgType": "text", "Content": f"你好，面霜可以退货吗 {self.n}", "MsgId": str(10 ** 9 + self.n)})
        ts, nonce = str(int(time.time())), os.urandom(4).hex()
        enc = self.crypto.encrypt(xml)
        body = f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName><Encrypt><![CDATA[{enc}]]></Encrypt></xml>"
        t0 = time.perf_counter()
        async with self.session.post(f"{self.base}/callbacks/wecom/{ACCOUNT}", data=body.encode(), params={
                "msg_signature": sign(TOKEN, ts, nonce, enc), "timestamp": ts, "nonce": nonce}) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        return time.perf_counter() - t0

    async def paced(self, rate: float, until: "asyncio.Future | None", count: int) -> list[float]:
        """Callbacks at ``rate``/s (at most 4 in flight) until ``until`` is done, or ``count`` of them."""
        out: list[float] = []
        sem = asyncio.Semaphore(4)
        tasks = []

        async def go() -> None:
            async with sem:
                out.append(await self.one())

        i = 0
        start = time.perf_counter()
        while (until is None and i < count) or (until is not None and not until.done()):
            tasks.append(asyncio.create_task(go()))
            i += 1
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        await asyncio.gather(*tasks)
        return out


async def main_async(old: int, rate: float, idle_count: int, batch: int) -> dict:
    logging.basicConfig(level=logging.ERROR)
    tmp = tempfile.mkdtemp(prefix="bench-purge-")
    os.environ.setdefault("HUB_SECRET_KEY", "bench-secret-key-0123456789")
    os.environ["HUB_PURGE_INTERVAL"] = "0"
    config = HubConfig(database_url=f"sqlite+aiosqlite:///{tmp}/hub.db", wecom_api_base="http://127.0.0.1:9",
                       oa_api_base="http://127.0.0.1:9", api_token="bench",
                       accounts=(AccountConfig(ACCOUNT, "wecom", "bench", TOKEN, AES_KEY, CORP_ID, "s"),),
                       settings=(("queue_notify", False),))
    server = TestServer(create_app(config))
    await server.start_server()
    hub = server.app[HUB]
    t0 = time.perf_counter()
    await seed(hub, old)
    print(f"seeded {old} messages 400 days old in {time.perf_counter() - t0:.1f}s")
    async with ClientSession() as session:
        sender = Sender(session, str(server.make_url("")).rstrip("/"))
        await sender.paced(rate, None, 20)  # warm-up
        idle = await sender.paced(rate, None, idle_count)
        print(f"idle phase: {len(idle)} callbacks", flush=True)
        purger = Purger(hub.db, hub.clock, interval=0, batch=batch)
        t1 = time.perf_counter()
        purge_task = asyncio.ensure_future(purger.run_once(by="bench"))
        during = await sender.paced(rate, purge_task, 0)
        run = await purge_task
        purge_s = time.perf_counter() - t1
    await hub.pipeline.drain()
    async with hub.db.read() as conn:
        left_old = (await conn.execute(select(func.count()).select_from(Message.__table__).where(
            Message.__table__.c.peer_id.like("old-%")))).scalar()
        new = (await conn.execute(select(func.count()).select_from(Message.__table__).where(
            Message.__table__.c.peer_id.like("new-%") & (Message.__table__.c.direction == "in")))).scalar()
    await server.close()
    res = {
        "old_messages": old, "batch": batch, "purged": run["counts"].get("messages", 0), "old_left": left_old,
        "new_kept": new, "new_sent": sender.n, "rate_per_s": rate,
        "idle_callbacks": len(idle), "purging_callbacks": len(during),
        "idle_p50_ms": round(pct(idle, 50) * 1000, 2), "idle_p99_ms": round(pct(idle, 99) * 1000, 2),
        "purging_p50_ms": round(pct(during, 50) * 1000, 2), "purging_p99_ms": round(pct(during, 99) * 1000, 2),
        "purge_s": round(purge_s, 2), "purge_rows_per_s": round(run["counts"].get("messages", 0) / purge_s),
    }
    res["p99_ratio"] = round(res["purging_p99_ms"] / res["idle_p99_ms"], 2) if res["idle_p99_ms"] else None
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--old", type=int)
    ap.add_argument("--rate", type=float, default=30.0, help="callbacks per second")
    ap.add_argument("--batch", type=int, default=PURGE_BATCH, help=f"rows per purge transaction (default {PURGE_BATCH})")
    args = ap.parse_args()
    old = args.old or (2_000 if args.quick else 50_000)
    res = asyncio.run(main_async(old, args.rate, 150 if args.quick else 600, args.batch))
    print(f"callbacks idle:    p50 {res['idle_p50_ms']} ms  p99 {res['idle_p99_ms']} ms  ({res['idle_callbacks']})")
    print(f"callbacks purging: p50 {res['purging_p50_ms']} ms  p99 {res['purging_p99_ms']} ms  "
          f"({res['purging_callbacks']})  p99 ratio {res['p99_ratio']}")
    print(f"purge: {res['purged']} of {res['old_messages']} old messages in {res['purge_s']} s "
          f"({res['purge_rows_per_s']} rows/s); old left {res['old_left']}, new kept {res['new_kept']}/{res['new_sent']}")
    print(json.dumps(res))


if __name__ == "__main__":
    main()
