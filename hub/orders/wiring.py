"""Wires order sync into the app: the order tables (imported here, so they exist before the hub
creates the schema), the routes (``hub.orders.api``), the merge hook (orders follow their customer),
the profile's order list (``CustomerService.orders``) and the background pollers.

``install(app)`` is called by ``hub.app.create_app``; its cleanup context runs after the hub's own
(``app[HUB]`` exists), builds the ``OrderSync`` (``app[ORDERS]``), starts the pollers and stops them
on shutdown.
"""
from __future__ import annotations

from typing import Any, AsyncIterator

import aiohttp
from aiohttp import web

from ..customers import register_movable
from ..http_guard import add_routes
from ..models.orders import OrderRow
from . import api, store
from .api import ORDERS
from .sync import OrderSync

__all__ = ["ORDERS", "install"]


def install(app: web.Application) -> None:
    register_movable("orders", OrderRow.__table__)
    add_routes(app, api.routes())

    async def order_sync(app: web.Application) -> AsyncIterator[None]:
        from ..app import HUB  # hub.app imports this module
        hub: Any = app[HUB]
        timeout = aiohttp.ClientTimeout(total=float(getattr(hub.config, "api_timeout", 10) or 10))
        async with aiohttp.ClientSession(timeout=timeout) as http:
            sync = OrderSync.from_hub(hub, http)
            app[ORDERS] = sync
            hub.customers.orders = store.recent_orders
            sync.start()
            try:
                yield
            finally:
                await sync.stop()

    app.cleanup_ctx.append(order_sync)
