"""Wires channel codes into the app (routes, the pipeline step applying a scan/add, the welcome
provider, the staff-schedule worker)."""
from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from ..http_guard import add_routes
from ..models import channels as _models  # noqa: F401 - the tables exist before the schema is created
from ..tasks import cancel_and_wait
from .api import CHANNELS, routes
from .service import ChannelService
from .step import ChannelStep

log = logging.getLogger(__name__)
SCHEDULE_INTERVAL = 60.0  # seconds between checks of the WeCom staff schedules


async def _schedule_loop(svc: ChannelService, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await svc.apply_schedules()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - try again at the next tick
            log.exception("applying channel staff schedules failed")


def install(app: web.Application) -> None:
    """Called by hub.app.create_app after the hub's own cleanup context (so app[HUB] exists when ours runs)."""
    add_routes(app, routes())

    async def channels_context(app: web.Application):  # noqa: ANN202
        from ..app import HUB
        hub = app[HUB]
        svc = ChannelService(hub.db, hub.clock, hub.api, hub.accounts)
        step = ChannelStep(hub.db, svc, hub.customers)
        app[CHANNELS] = svc
        steps = hub.pipeline.inbound_steps
        # before the bots: they read ctx.state["channel_code"] and the welcome; after identify (customer_id)
        steps.insert(steps.index(hub.bots.step) if hub.bots.step in steps else len(steps), step.step)
        hub.bots.welcome_provider = step.welcome
        task = asyncio.create_task(_schedule_loop(svc, SCHEDULE_INTERVAL), name="channel-schedules")
        yield
        await cancel_and_wait(task)

    app.cleanup_ctx.append(channels_context)
