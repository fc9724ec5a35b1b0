"""Wires order sync into the app (routes, workers, the customer profile's order list)."""
from __future__ import annotations

from aiohttp import web


def install(app: web.Application) -> None:
    """Called by hub.app.create_app; filled in by the order-sync feature."""
    return None
