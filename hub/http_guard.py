"""What every route of the hub's own API and pages goes through: JSON errors and CSRF.

Applied to each route as it is added (``add_routes``), not as aiohttp middlewares: aiohttp runs an
application's middlewares on every request, and the platform callbacks need neither (they are
signed and carry no cookies). Three middleware layers cost a callback about 10 µs, 5% of what the
hub spends on one (bench/callbacks.py, with and without). The callback routes get their own wrapper
instead (hub/account_status.py ``stamped_routes``); tests/test_http_guard.py checks that every
route of the app has one or the other.

* A ``HubError`` becomes its JSON answer; anything unexpected a logged 500 without a stack trace.
* State-changing requests authenticated by the session cookie pass the CSRF check (hub/csrf.py),
  and the answer keeps the readable CSRF cookie in step with the session.
"""
from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Iterable

from aiohttp import web

from . import csrf
from .errors import HubError

log = logging.getLogger("hub.api")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
GUARDED = "__hub_guarded__"  # set on the wrapped handlers (the route test looks for it)


def guard(handler: Handler) -> Handler:
    """The handler with JSON errors and the CSRF check around it."""
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            csrf.check(request)
            response = await handler(request)
            csrf.hand_out(request, response)
            return response
        except HubError as exc:
            return web.json_response(exc.as_json(), status=exc.status)
        except web.HTTPException:
            raise
        except Exception:  # noqa: BLE001 - never a stack trace to the client
            log.exception("unhandled error on %s %s", request.method, request.path)
            return web.json_response({"error": "internal", "message": "internal error"}, status=500)

    setattr(guarded, GUARDED, True)
    guarded.__name__ = getattr(handler, "__name__", "handler")
    return guarded


def guarded(defs: Iterable[web.AbstractRouteDef]) -> list[web.AbstractRouteDef]:
    """Route definitions with their handlers guarded (static files pass through unchanged)."""
    return [web.RouteDef(d.method, d.path, guard(d.handler), d.kwargs) if isinstance(d, web.RouteDef) else d
            for d in defs]


def add_routes(app: web.Application, defs: Iterable[web.AbstractRouteDef]) -> Any:
    """``app.router.add_routes`` with every handler guarded: how the hub's API and pages are added."""
    return app.router.add_routes(guarded(defs))
