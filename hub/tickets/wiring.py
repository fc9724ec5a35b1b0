"""Wires work orders into the app: routes, the service (after the hub starts), overdue timers rebuilt."""
from __future__ import annotations

from aiohttp import web

from ..http_guard import add_routes
from ..models import tickets as _models  # noqa: F401 - the tables exist before the schema is created
from .api import TICKETS, routes
from .service import TicketService


def install(app: web.Application) -> None:
    """Called by hub.app.create_app after the hub's own cleanup context (so app[HUB] exists when ours runs)."""
    add_routes(app, routes())

    async def tickets_context(app: web.Application):  # noqa: ANN202
        from ..app import HUB
        hub = app[HUB]
        svc = TicketService(hub.db, hub.clock, hub.push, hub.timers, hub.settings, hub.sessions.agents)
        await svc.load()
        app[TICKETS] = svc
        yield

    app.cleanup_ctx.append(tickets_context)
