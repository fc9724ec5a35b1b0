"""Wiring of the privacy module into the app: its routes, the retention purge worker, and sealing of
account and order-source secrets written in clear (see hub/privacy/secrets.py, order_secrets.py)."""
from __future__ import annotations

import logging
import os

from aiohttp import web

from ..http_guard import add_routes
from . import order_secrets
from . import secrets as sealed
from .api import PURGER, routes
from .erasure_watch import ErasureWatch
from .purge import Purger

log = logging.getLogger(__name__)
ERASURE_WATCH = web.AppKey("privacy_erasure_watch", ErasureWatch)
DEFAULT_INTERVAL = 3600.0  # seconds between purges; HUB_PURGE_INTERVAL (0 = off)


def purge_interval(env: dict[str, str] | None = None) -> float:
    value = (env if env is not None else os.environ).get("HUB_PURGE_INTERVAL", "")
    try:
        return float(value) if value.strip() else DEFAULT_INTERVAL
    except ValueError:
        log.warning("HUB_PURGE_INTERVAL=%r is not a number of seconds; using %s", value, DEFAULT_INTERVAL)
        return DEFAULT_INTERVAL


def install(app: web.Application) -> None:
    """Called by hub.app.create_app after the hub's own cleanup context (app[HUB] exists when ours runs)."""
    add_routes(app, routes())

    async def privacy_context(app: web.Application):  # noqa: ANN202
        from ..app import HUB
        hub = app[HUB]
        ring = sealed.ring_for(hub.db)
        async with hub.db.write() as conn:
            n = await sealed.seal_plaintext(conn, ring, hub.clock.now())
            n_orders = await order_secrets.seal_stored(conn, ring, hub.clock.now())
        if n_orders:
            log.warning("encrypted %d order-source secret(s) stored in clear", n_orders)
            await hub.settings.reload()
        if n:
            log.warning("encrypted the secrets of %d account(s) stored in clear", n)
            await hub.accounts.reload()
        purger = Purger(hub.db, hub.clock, interval=purge_interval())
        app[PURGER] = purger
        purger.start()
        watch = app[ERASURE_WATCH] = ErasureWatch(app, hub.db)
        await watch.start()
        yield
        await watch.stop()
        await purger.stop()

    app.cleanup_ctx.append(privacy_context)
