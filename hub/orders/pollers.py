"""Incremental pull by modified time, with a stored watermark (table ``order_watermarks``).

One pass of a source (``Poller.run_once``) walks windows ``[watermark − overlap, end]`` with
``end ≤ now − lag`` and at most ``max_window`` long (Taobao allows one day per call, facts §1.1).
Inside a window it reads page 1 for the total, then pages from the LAST page back to the first, as
Taobao's doc asks (results are sorted by modified time; an order modified during the walk leaves the
window, which shifts later entries towards page 1 — walking backwards, that can only repeat an
order, never skip one). JD is walked the same way (``dateType=0`` = by modified time).

Each page is committed in ONE transaction together with the cursor (window + next page), and the
watermark moves to the window's end only with the commit of its last page: an exception between a
page's fetch and its commit leaves both where they were, and the next pass resumes at that page.
Orders are upserted with the no-regress rule, so overlaps and repeats are harmless. An order that
does not parse is logged and skipped (it is fetched again on its next modification).

Source options (in its ``order_sources`` entry): ``page_size`` (100), ``overlap`` (300 s), ``lag``
(60 s), ``max_window`` (86400 s), ``since`` (epoch of the first window's start; default now − 1 day),
``max_windows`` per pass (48), ``detail_concurrency`` (4).
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from sqlalchemy import select

from ..models.orders import OrderWatermark
from .errors import PayloadError

log = logging.getLogger(__name__)
watermarks = OrderWatermark.__table__


async def load_watermark(db: Any, source: str) -> tuple[float, dict[str, Any]] | None:
    async with db.read() as conn:
        row = (await conn.execute(select(watermarks).where(watermarks.c.source == source))).first()
    if row is None:
        return None
    try:
        cursor = json.loads(row.cursor or "{}")
    except ValueError:
        cursor = {}
    return row.modified_at, cursor if isinstance(cursor, dict) else {}


class Poller:
    def __init__(self, sync: Any, client: Any):
        self.sync, self.client, self.cfg = sync, client, client.cfg
        self.source = client.source

    def _num(self, key: str, default: float) -> float:
        try:
            return float(self.cfg.get(key, default))
        except (TypeError, ValueError):
            return default

    async def run_once(self) -> dict[str, Any]:
        """One pass; returns what it did. Raises on a gateway or database failure (nothing after the
        last committed page is lost or skipped: the next pass resumes there)."""
        async with self.sync.lock(self.source):
            return await self._run()

    async def _run(self) -> dict[str, Any]:
        stats: dict[str, Any] = {"source": self.source, "windows": 0, "pages": 0, "orders": 0, "changed": 0,
                                 "rejected": 0}
        size = max(1, min(int(self._num("page_size", 100)), 100))
        overlap, lag = self._num("overlap", 300), self._num("lag", 60)
        max_window = max(60.0, self._num("max_window", 86400))
        now = self.sync.clock.now()
        state = await load_watermark(self.sync.db, self.source)
        if state is None:
            mark, cursor = self._num("since", now - 86400), {}
        else:
            mark, cursor = state
        for _ in range(int(self._num("max_windows", 48))):
            if cursor.get("end") is not None:
                start, end, resume = float(cursor["start"]), float(cursor["end"]), int(cursor.get("next_page") or 0)
            else:
                start = max(0.0, mark - overlap)
                end = min(now - lag, start + max_window)
                resume = 0
                if end <= mark:
                    break
            await self._window(start, end, resume, mark, size, stats)
            mark, cursor = max(mark, end), {}
            stats["windows"] += 1
            if end >= now - lag:
                break
        stats["watermark"] = mark
        return stats

    async def _window(self, start: float, end: float, resume: int, mark: float, size: int,
                      stats: dict[str, Any]) -> None:
        total, first = await self.client.list_page(start, end, 1, size)
        last = max(1, -(-total // size))
        page = min(resume, last) if resume else last
        while page >= 1:
            items = first if last == 1 else (await self.client.list_page(start, end, page, size))[1]
            orders = await self._details(items, stats)
            done = page == 1
            cursor = {} if done else {"start": start, "end": end, "next_page": page - 1}
            changes = await self.sync.commit_page(self.source, orders, max(mark, end) if done else mark, cursor)
            stats["pages"] += 1
            stats["orders"] += len(orders)
            stats["changed"] += len(changes)
            page -= 1

    async def _details(self, items: list[Any], stats: dict[str, Any]) -> list[Any]:
        gate = asyncio.Semaphore(max(1, int(self._num("detail_concurrency", 4))))

        async def one(item: Any) -> Any:
            async with gate:
                try:
                    return await self.client.detail(item)
                except PayloadError as exc:
                    log.warning("%s: skipping an order that does not parse: %s", self.source, exc)
                    stats["rejected"] += 1
                    return None

        results = await asyncio.gather(*(one(i) for i in items), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r  # nothing of this page is committed: the pass stops here
        latest: dict[tuple[str, str], Any] = {}
        for order in results:  # one copy per order (a page may repeat one): the newest
            if order is not None:
                key = (order.platform, order.order_id)
                if key not in latest or order.modified_at >= latest[key].modified_at:
                    latest[key] = order
        return list(latest.values())
