"""Does the platform reach the hub? Per account: the last callback received, the last URL verification
(success or failure) and the last rejected callback with its reason.

The callback path pays one dict update (its routes' wrapper looks at the answer the handler gave);
a background task writes what changed to ``account_status`` at most every ``FLUSH_EVERY`` seconds, so
the admin console of any process sees the stamps of every process.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, Iterable

from aiohttp import web
from sqlalchemy import select

from .clock import Clock
from .db import Database, retry_busy
from .models import AccountStatus
from .tasks import cancel_and_wait, repeat

log = logging.getLogger("hub.account_status")
status_t = AccountStatus.__table__
FLUSH_EVERY = 3.0


@dataclass(frozen=True)
class Stamp:
    last_callback_at: float | None = None
    last_verify_at: float | None = None
    last_verify_ok: bool | None = None
    last_failure_at: float | None = None
    last_failure: str = ""

    def merge(self, other: "Stamp") -> "Stamp":
        """The newer of each pair of facts."""
        def newer(a: float | None, b: float | None) -> bool:
            return b is not None and (a is None or b > a)
        out = self
        if newer(out.last_callback_at, other.last_callback_at):
            out = replace(out, last_callback_at=other.last_callback_at)
        if newer(out.last_verify_at, other.last_verify_at):
            out = replace(out, last_verify_at=other.last_verify_at, last_verify_ok=other.last_verify_ok)
        if newer(out.last_failure_at, other.last_failure_at):
            out = replace(out, last_failure_at=other.last_failure_at, last_failure=other.last_failure)
        return out

    def as_json(self) -> dict[str, Any]:
        return {"last_callback_at": self.last_callback_at, "last_verify_at": self.last_verify_at,
                "last_verify_ok": self.last_verify_ok, "last_failure_at": self.last_failure_at,
                "last_failure": self.last_failure}


def stamp_for(method: str, status: int, reason: str, now: float) -> Stamp:
    """What one answered callback says: a GET is a URL verification, a POST a message or event."""
    if method == "GET":
        ok = status == 200
        return Stamp(last_verify_at=now, last_verify_ok=ok,
                     **({} if ok else {"last_failure_at": now, "last_failure": f"验证失败 ({status}): {reason}"[:300]}))
    if status == 200:
        return Stamp(last_callback_at=now)
    return Stamp(last_failure_at=now, last_failure=f"回调被拒 ({status}): {reason}"[:300])


class CallbackStatus:
    def __init__(self, db: Database, clock: Clock, known: Callable[[str], bool]):
        self.db = db
        self.clock = clock
        self.known = known  # only accounts that exist get a row (unknown ids are anyone's guess)
        self._stamps: dict[str, Stamp] = {}
        self._received: dict[str, float] = {}  # last accepted callback, folded into _stamps when read
        self._dirty: set[str] = set()

    def _fold(self) -> None:
        received, self._received = self._received, {}
        for account_id, at in received.items():
            self._stamps[account_id] = self._stamps.get(account_id, Stamp()).merge(Stamp(last_callback_at=at))

    def note(self, account_id: str, method: str, status: int, reason: str) -> None:
        if not account_id or not self.known(account_id):
            return
        if method == "POST" and status == 200:  # the hot path: one float per accepted callback
            self._received[account_id] = self.clock.now()
            self._dirty.add(account_id)
            return
        stamp = stamp_for(method, status, reason, self.clock.now())
        self._stamps[account_id] = self._stamps.get(account_id, Stamp()).merge(stamp)
        self._dirty.add(account_id)

    async def flush(self) -> None:
        if not self._dirty:
            return
        self._fold()
        dirty, self._dirty = self._dirty, set()

        async def write() -> None:
            async with self.db.write() as conn:
                for account_id in sorted(dirty):
                    row = (await conn.execute(select(status_t).where(status_t.c.account_id == account_id))).first()
                    stored = _stamp(row) if row else Stamp()
                    values = {**stored.merge(self._stamps[account_id]).as_json(), "updated_at": self.clock.now()}
                    if row:
                        await conn.execute(status_t.update().where(status_t.c.account_id == account_id).values(**values))
                    else:
                        await conn.execute(status_t.insert().values(account_id=account_id, **values))
        try:
            await retry_busy(write)
        except Exception:
            self._dirty |= dirty  # try again at the next tick
            raise

    async def all(self) -> dict[str, Stamp]:
        """Every process's stamps (the table) merged with this process's newest (not yet flushed)."""
        async with self.db.read() as conn:
            rows = (await conn.execute(select(status_t))).all()
        out = {r.account_id: _stamp(r) for r in rows}
        self._fold()
        for account_id, stamp in self._stamps.items():
            out[account_id] = out.get(account_id, Stamp()).merge(stamp)
        return out


def _stamp(row: Any) -> Stamp:
    return Stamp(row.last_callback_at, row.last_verify_at, row.last_verify_ok, row.last_failure_at,
                 row.last_failure or "")


CALLBACK_STATUS = web.AppKey("callback_status", dict)  # {"t": the running CallbackStatus}
STAMPED = "__hub_stamped__"  # set on the wrapped callback handlers (the route test looks for it)


def tracker_of(app: web.Application) -> CallbackStatus | None:
    return app[CALLBACK_STATUS].get("t") if CALLBACK_STATUS in app else None


def stamped_routes(defs: Iterable[web.AbstractRouteDef]) -> list[web.AbstractRouteDef]:
    """The platform callback routes, each answer noted for its account (hub/http_guard.py says why
    per route). An unexpected error is a logged 500 (never a stack trace), noted as a failure."""
    return [web.RouteDef(d.method, d.path, _stamped(d.handler), d.kwargs) for d in defs]


def _stamped(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
    async def stamp(request: web.Request) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except web.HTTPException:
            raise
        except Exception:  # noqa: BLE001 - never a stack trace to the platform
            log.exception("unhandled error on %s %s", request.method, request.path)
            resp = web.Response(status=500, text="internal error", content_type="text/plain")
        tracker = tracker_of(request.app)
        if tracker is not None:
            reason = resp.text if isinstance(resp, web.Response) and resp.status >= 400 and resp.text else ""
            tracker.note(request.match_info.get("account", ""), request.method, resp.status, reason or "")
        return resp

    setattr(stamp, STAMPED, True)
    return stamp


def install(app: web.Application, every: float = FLUSH_EVERY) -> None:
    """Before the app starts: the callback routes (``stamped_routes``) stamp into the tracker made
    here; a task flushes the stamps."""
    from .app import HUB
    holder: dict[str, CallbackStatus] = {}
    app[CALLBACK_STATUS] = holder

    async def context(app: web.Application):  # noqa: ANN202
        hub = app[HUB]
        tracker = CallbackStatus(hub.db, hub.clock,
                                 lambda account_id: account_id in getattr(hub.accounts, "_accounts", {}))
        holder["t"] = tracker
        task = asyncio.create_task(repeat(lambda: every, tracker.flush, "flushing account callback status"),
                                   name="account-status")
        yield
        await cancel_and_wait(task)
        try:
            await tracker.flush()
        except Exception:  # noqa: BLE001 - shutting down: the stamps are status, not data
            log.warning("last flush of account callback status failed", exc_info=True)

    app.cleanup_ctx.append(context)
