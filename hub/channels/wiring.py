"""Wires channel codes into the app (routes, the pipeline step applying a scan/add)."""
from __future__ import annotations

from aiohttp import web


def install(app: web.Application) -> None:
    """Called by hub.app.create_app; filled in by the channel-code feature."""
    return None
