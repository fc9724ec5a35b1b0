"""The live supervisor dashboard: one snapshot (``GET /api/supervisor/dashboard``) and the same snapshot
pushed as ``dashboard.update`` to the ``supervisors`` room whenever a session changes.

Queue and agents come live from the dispatcher (one process) or from the database (several processes:
each one's dispatcher may be a resync behind the others, the database is the view they share, and a
Redis slot lets one of them push per ``PUSH_EVERY``, not each its own copy); sessions waiting for a
first reply from the database;
today's figures and the brand's health (hub/supervisor/stats.py) are recomputed at most every
``FIGURES_EVERY`` seconds (and at least every ``FIGURES_MAX_AGE``), so a burst of session changes costs
one push per ``PUSH_EVERY`` and one recomputation per few seconds.
"""
from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

from aiohttp import web
from sqlalchemy import select

from ..auth_views import require_user
from ..errors import bad_request
from ..http_guard import add_routes
from ..models import ServiceSession
from ..models.base import fixed
from ..privacy.masking import mask_text
from ..push import SUPERVISORS
from ..routing.dispatch import AgentState
from ..scale.claims import worker_name
from ..scale.push_slot import PushSlot
from ..tasks import cancel_and_wait
from ..service.floor import QueueSummary, read_floor, read_queue_summary, summarize
from .metrics import waiting_seconds
from .stats import HealthWindow, Stats

log = logging.getLogger(__name__)
sessions_t = ServiceSession.__table__

PUSH_EVERY = 1.0  # seconds: at most one dashboard.update per second
FIGURES_EVERY = 5.0  # seconds: today's figures recomputed at most this often
FIGURES_MAX_AGE = 60.0  # ... and at least this often (the day rolls over)
HEALTH_EVERY = 60.0  # seconds: the brand's 7-day health figures
HEARTBEAT = 30.0  # seconds between pushes when nothing changes (agent statuses, waiting times)
DEFAULT_FIRST_REPLY_SLA = 120.0  # seconds; setting ``dashboard_first_reply_sla`` overrides
QUEUE_LISTED = 50


class Dashboard:
    def __init__(self, hub: Any, push_every: float = PUSH_EVERY, figures_every: float = FIGURES_EVERY):
        self.hub = hub
        self.stats = Stats(hub.db, hub.clock, hub.settings)
        self.push_every = push_every
        self.figures_every = figures_every
        self._figures: dict[str, Any] | None = None
        self._figures_at = float("-inf")
        self._health: dict[str, Any] | None = None
        self._health_at = float("-inf")
        self._dirty = True
        self._pending: asyncio.TimerHandle | None = None
        self._last_push = float("-inf")  # loop time of the last push (or look for someone to push to)
        self._running = False  # a push_now is under way
        self._lock = asyncio.Lock()
        self.pushes = 0
        self.slot: PushSlot | None = None  # several processes: one push per ``push_every`` among them

    # -- the snapshot ---------------------------------------------------------------------------
    async def snapshot(self, fresh: bool = False) -> dict[str, Any]:
        sla = await self._first_reply_sla()
        figures = await self._current_figures(self.hub.clock.now(), fresh)
        awaiting = await self._awaiting_rows()
        if self.hub.sessions.shared:
            floor = await read_floor(self.hub.db, queue=False)
            queue = await read_queue_summary(self.hub.db, QUEUE_LISTED)
            agents, known = floor.agent_states(), {a.id: a for a in floor.agents}
        else:
            dispatcher = self.hub.sessions.dispatcher
            queue = summarize(dispatcher.queue_snapshot(), QUEUE_LISTED)
            agents, known = list(dispatcher.agents()), self.hub.sessions.agents
        now = self.hub.clock.now()  # after the awaits: queue, agents and waits are read together, at ``now``
        return {"now": now, "sla": {"first_reply": sla}, "queue": _queue(queue, now),
                "agents": self._agents(agents, known), "awaiting_first_reply": _awaiting(awaiting, now, sla), **figures}

    async def _first_reply_sla(self) -> float:
        value = await self.hub.settings.get("dashboard_first_reply_sla")
        try:
            sla = float(value) if value is not None else DEFAULT_FIRST_REPLY_SLA
        except (TypeError, ValueError, OverflowError):
            return DEFAULT_FIRST_REPLY_SLA
        # infinite is no JSON (the page could not read the snapshot); NaN, 0 and below mean nothing
        return sla if math.isfinite(sla) and sla > 0 else DEFAULT_FIRST_REPLY_SLA

    async def _current_figures(self, now: float, fresh: bool) -> dict[str, Any]:
        async with self._lock:  # one recomputation at a time; the others reuse it
            age = now - self._figures_at
            if (self._figures is None or fresh or age >= FIGURES_MAX_AGE or age < 0
                    or (self._dirty and age >= self.figures_every)):
                self._dirty = False
                health_age = now - self._health_at
                if self._health is None or fresh or health_age >= HEALTH_EVERY or health_age < 0:
                    # a 7-day scan (~2 s on 280k messages, off the loop): it barely moves within a minute
                    self._health = await self.stats.health(now, HealthWindow())
                    self._health_at = now
                self._figures = {"today": await self.stats.today(now), "health": self._health, "figures_at": now}
                self._figures_at = now
            return self._figures

    def _agents(self, agents: list[AgentState], known: dict[int, Any]) -> list[dict[str, Any]]:
        """``known``: each agent's user (a UserInfo or a users row: username, display_name, role)."""
        out = []
        for a in agents:
            info = known.get(a.id)
            if info is not None and info.role != "agent" and a.cap == 0:
                continue  # supervisors and admins who take no sessions are not on the floor
            out.append({"id": a.id, "username": info.username if info else str(a.id),
                        "display_name": (info.display_name or info.username) if info else str(a.id),
                        "status": a.status, "load": a.load, "cap": a.cap, "groups": sorted(a.groups)})
        return sorted(out, key=lambda a: (a["status"] == "offline", a["display_name"]))

    async def _awaiting_rows(self) -> list[Any]:
        async with self.hub.db.read() as conn:
            return (await conn.execute(select(
                sessions_t.c.id, sessions_t.c.conversation_id, sessions_t.c.agent_id, sessions_t.c.group,
                sessions_t.c.state, sessions_t.c.handover_at, sessions_t.c.first_message)
                .where(sessions_t.c.state.in_(fixed("assigned", "active"))).where(sessions_t.c.first_reply_at.is_(None))
                .order_by(sessions_t.c.handover_at).limit(200))).all()

    # -- live -----------------------------------------------------------------------------------
    async def on_session_change(self, change: Any) -> None:
        """A SessionService observer: something committed; push soon (coalesced)."""
        self._dirty = True
        self.changed()

    def watched(self) -> bool:
        """Someone may be looking: a supervisor or admin has a socket on this process, or several
        processes serve sockets (one of the others may hold a supervisor's: ``watched_anywhere``)."""
        presence = self.hub.presence
        if presence.shared is not None:
            return True
        return presence.supervisor_online()

    async def watched_anywhere(self) -> bool:
        """A supervisor or admin has a socket on some process (Redis counts them per process); when
        Redis cannot say, assume so."""
        presence = self.hub.presence
        if presence.supervisor_online():
            return True
        if presence.shared is None:
            return False
        return await presence.shared.supervisors_online() is not False

    def changed(self) -> None:
        if self._pending is not None or self._running:
            return
        if not self.watched():
            return  # nobody to push to: no day walk under load; a supervisor who connects loads a snapshot
        loop = asyncio.get_running_loop()
        delay = max(0.0, self.push_every - (loop.time() - self._last_push))
        self._pending = loop.call_later(delay, lambda: asyncio.ensure_future(self.push_now()))

    async def push_now(self) -> None:
        self._pending = None
        loop = asyncio.get_running_loop()
        self._last_push = loop.time()  # the last attempt: changes meanwhile wait out ``push_every``
        self._running = True
        try:
            if not await self.watched_anywhere():
                return  # nobody to push to (a supervisor who connects loads a snapshot)
            if self.slot is not None and (wait := await self.slot.take()) > 0:
                # another process pushed just now: push ours when its slot frees
                self._pending = loop.call_later(wait, lambda: asyncio.ensure_future(self.push_now()))
                return
            snap = await self.snapshot()
            await self.hub.push.to_room(SUPERVISORS, "dashboard.update", snap)
            self.pushes += 1
        except Exception:  # noqa: BLE001 - the next change tries again
            log.exception("dashboard push failed")
            return
        finally:
            self._running = False
        if self._dirty:  # figures were too fresh to recompute: once more when they may be
            self.changed()

    async def heartbeat(self, every: float = HEARTBEAT) -> None:
        while True:
            await asyncio.sleep(every)
            self.changed()


def _queue(queue: QueueSummary, now: float) -> dict[str, Any]:
    return {"total": queue.total, "per_group": queue.per_group, "oldest_enqueued_at": queue.oldest,
            "longest_wait": waiting_seconds(queue.oldest, now),
            "waiting": [{"session_id": q.session_id, "group": q.group, "priority": q.priority,
                         "enqueued_at": q.enqueued_at, "advisor_id": q.agent_id} for q in queue.head]}


def _awaiting(rows: list[Any], now: float, sla: float) -> list[dict[str, Any]]:
    out = []
    for r in rows:
        waited = waiting_seconds(r.handover_at, now) or 0.0
        out.append({"session_id": r.id, "conversation_id": r.conversation_id, "agent_id": r.agent_id,
                    "group": r.group, "state": r.state, "handover_at": r.handover_at, "waiting": waited,
                    "over_sla": waited > sla, "first_message": mask_text((r.first_message or "")[:80])})
    return out


DASHBOARD = web.AppKey("dashboard", Dashboard)


async def get_dashboard(request: web.Request) -> web.Response:
    """?fresh=1 recomputes today's figures now (otherwise they may be a few seconds old)."""
    await require_user(request, "supervisor", "admin")
    fresh = request.query.get("fresh", "0")
    if fresh not in ("0", "1"):
        raise bad_request("invalid_fresh", "fresh must be 0 or 1", "fresh")
    return web.json_response(await request.app[DASHBOARD].snapshot(fresh=fresh == "1"))


async def get_health(request: web.Request) -> web.Response:
    """?days=7 (1..90): the brand's health figures over another window."""
    await require_user(request, "supervisor", "admin")
    try:
        days = float(request.query.get("days", "7"))
    except ValueError:
        raise bad_request("invalid_days", "days must be a number", "days") from None
    if not 1 <= days <= 90:
        raise bad_request("invalid_days", "days must be within 1..90", "days")
    return web.json_response(await request.app[DASHBOARD].stats.health(window=HealthWindow(days=days)))


def routes() -> list[web.RouteDef]:
    return [web.get("/api/supervisor/dashboard", get_dashboard), web.get("/api/supervisor/health", get_health)]


def install(app: web.Application) -> None:
    """After the hub's cleanup context in create_app (app[HUB] exists when ours runs)."""
    add_routes(app, routes())

    async def dashboard_context(app: web.Application):  # noqa: ANN202
        hub = hub_of_app(app)
        dash = Dashboard(hub)
        redis = getattr(hub.push.streams, "redis", None)
        if redis is not None:
            dash.slot = PushSlot(redis, "hub:dashboard:push", dash.push_every, worker_name(hub.config.worker_id))
        app[DASHBOARD] = dash
        hub.sessions.observers.append(dash.on_session_change)
        task = asyncio.create_task(dash.heartbeat(), name="dashboard-heartbeat")
        yield
        if dash._pending is not None:
            dash._pending.cancel()
        await cancel_and_wait(task)

    app.cleanup_ctx.append(dashboard_context)


def hub_of_app(app: web.Application) -> Any:
    from ..app import HUB
    return app[HUB]


__all__ = ["Dashboard", "DASHBOARD", "install"]
