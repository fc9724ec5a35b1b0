"""Wires archive search into the app: the routes, the index table, the background indexer and
the keyword-watch pipeline step.

``HUB_SEARCH_INDEXER=off`` runs the hub without its indexer (another process indexes, or to
measure its cost: bench/search.py); searches then see what was indexed before."""
from __future__ import annotations

import os

from aiohttp import web

from ...http_guard import add_routes
from ...models import search as _models  # noqa: F401 - the tables exist before the schema is created
from . import api, watch_api
from .indexer import SearchIndexer, ensure_index
from .watches import WatchService

INDEXER = web.AppKey("search_indexer", SearchIndexer)


def indexer_enabled() -> bool:
    return os.environ.get("HUB_SEARCH_INDEXER", "on").strip().lower() not in ("0", "off", "false", "no")


def install(app: web.Application) -> None:
    """Called by hub.app.create_app after the hub's own cleanup context (so app[HUB] exists when ours runs)."""
    add_routes(app, api.routes())
    add_routes(app, watch_api.routes())

    async def search_context(app: web.Application):  # noqa: ANN202
        from ...app import HUB
        hub = app[HUB]
        await ensure_index(hub.db)
        watches = WatchService(hub.db, hub.clock, hub.push)
        await watches.load()
        app[watch_api.WATCHES] = watches
        steps = hub.pipeline.inbound_steps
        steps.insert(1 if steps else 0, watches.step)  # right after the archive's own step: before the bots
        indexer = SearchIndexer(hub.db, hub.clock)
        indexer.pressure = lambda: bool(hub.pipeline.pressure and hub.pipeline.pressure())
        app[INDEXER] = indexer
        if indexer_enabled():
            hub.writer.on_commit.append(indexer.notify)
            indexer.start()
        yield
        await indexer.stop()

    app.cleanup_ctx.append(search_context)
