"""Wires supervision into the app: the routes, the SLA alert engine and quality checker as session
observers, started (all clocks derived from the archive) once the hub exists."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ..http_guard import add_routes
from ..models import supervisor as _models  # noqa: F401 - the tables exist before the schema is created
from ..tasks import cancel_and_wait
from .alerts import AlertEngine
from .api import SUPERVISION, Supervision, routes
from .quality import QualityChecker

log = logging.getLogger(__name__)


RESYNC_EVERY = 15.0  # seconds between re-derivations of the SLA clocks on PostgreSQL


async def _resync_loop(engine: AlertEngine, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        try:
            await engine.resync()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - try again at the next tick
            log.exception("re-deriving the SLA clocks failed")


def install(app: web.Application) -> None:
    """Called by hub.app.create_app after the hub's own cleanup context (so app[HUB] exists when ours runs)."""
    add_routes(app, routes())

    async def supervision_context(app: web.Application):  # noqa: ANN202
        from ..app import HUB
        hub = app[HUB]
        engine = AlertEngine(hub.db, hub.clock, hub.push, hub.settings, hub.timers, hub.sessions)
        checker = QualityChecker(hub.db, hub.clock, engine.raise_quality)
        await checker.load_rules()
        await engine.start()
        hub.settings.on_change.append(engine.settings_changed)
        hub.sessions.observers.append(engine.on_session_change)
        hub.sessions.observers.append(checker.on_session_change)
        app[SUPERVISION] = Supervision(engine, checker)
        # several processes share PostgreSQL: each learns of sessions changed elsewhere (and takes over
        # the clocks of a process that died) by re-deriving them from the database now and then
        resync = (asyncio.create_task(_resync_loop(engine, RESYNC_EVERY), name="sla-resync")
                  if hub.db.dialect == "postgresql" else None)
        yield
        if resync is not None:
            await cancel_and_wait(resync)
        if engine.settings_changed in hub.settings.on_change:
            hub.settings.on_change.remove(engine.settings_changed)
        for observer in (engine.on_session_change, checker.on_session_change):
            if observer in hub.sessions.observers:
                hub.sessions.observers.remove(observer)

    app.cleanup_ctx.append(supervision_context)
