"""CSRF protection for requests a browser authenticates with the session cookie.

A state-changing request (POST, PUT, PATCH, DELETE) that carries the session cookie and no
``Authorization: Bearer`` header must

* come from the hub's own origin (``Origin``, else ``Referer``, when the browser sends one), and
* carry ``X-CSRF-Token``: an HMAC of the session token (so nothing is stored, and a page on another
  site, which cannot read the HttpOnly session cookie, cannot compute it).

The token reaches the pages in the readable cookie ``hub_csrf`` (set at login and refreshed on any
request that has a session cookie), and agent_ui/static/util.js adds the header to every same-origin
state-changing ``fetch``. Bearer-token clients are exempt (a browser cannot send that header
cross-site without a CORS preflight, which the hub never grants), and so are the platform callbacks
and order webhooks (signed, no cookies) and Socket.IO (its handshake checks Origin, hub/realtime.py).
Login carries no session yet: only its origin is checked (login CSRF).
"""
from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlsplit

from aiohttp import web

from .errors import HubError
from .privacy.transport import from_trusted_proxy, is_https

SESSION_COOKIE = "hub_session"  # hub.realtime.COOKIE (not imported: realtime imports the app's parts)
CSRF_COOKIE = "hub_csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
EXEMPT_PREFIXES = ("/callbacks/", "/webhooks/", "/socket.io/")
ORIGIN_ONLY = frozenset({"/api/login"})


def csrf_token(session_token: str) -> str:
    """The CSRF token of a login session (derived, so the same in every process)."""
    return hmac.new(session_token.encode(), b"scrm-hub csrf v1", hashlib.sha256).hexdigest()


def _hosts(request: web.Request) -> set[str]:
    """The hub's own host names: ``Host``, and ``X-Forwarded-Host`` when a trusted proxy sent it (any
    client can send the header)."""
    hosts = {request.host.lower()}
    forwarded = request.headers.get("X-Forwarded-Host", "")
    if forwarded and from_trusted_proxy(request):
        hosts.add(forwarded.split(",")[0].strip().lower())
    return hosts


def same_origin(request: web.Request) -> bool | None:
    """True/False when the browser said where the request comes from; None when it did not."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if not source:
        return None
    if source == "null":
        return False  # sandboxed frames, data: URLs, some cross-site redirects
    return urlsplit(source).netloc.lower() in _hosts(request)


def check(request: web.Request) -> None:
    """Raise 403 when an unsafe, cookie-authenticated request is cross-site or lacks its token."""
    if request.method not in UNSAFE_METHODS or request.path.startswith(EXEMPT_PREFIXES):
        return
    if request.headers.get("Authorization", "").startswith("Bearer "):
        return  # authenticated by that token, not the cookie (auth_views.request_token); Basic & co. are not
    session = request.cookies.get(SESSION_COOKIE)
    if request.path in ORIGIN_ONLY or session:
        if same_origin(request) is False:
            raise HubError(403, "csrf_origin", "cross-site request refused")
    if not session or request.path in ORIGIN_ONLY:
        return
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent or not hmac.compare_digest(sent.encode("ascii", "replace"), csrf_token(session).encode()):
        raise HubError(403, "csrf_token", f"missing or wrong {CSRF_HEADER} (reload the page)")


def hand_out(request: web.Request, response: web.StreamResponse) -> None:
    """Keep the readable ``hub_csrf`` cookie in step with the session cookie (``Secure`` as that one is:
    over TLS, directly or through a trusted proxy)."""
    if response.prepared or request.path.startswith(EXEMPT_PREFIXES):
        return
    new = response.cookies.get(SESSION_COOKIE)
    if new is not None:
        if new.value:
            response.set_cookie(CSRF_COOKIE, csrf_token(new.value), samesite="Strict", secure=is_https(request),
                                path="/", max_age=new["max-age"] or None)
        else:
            response.del_cookie(CSRF_COOKIE, path="/")
        return
    session = request.cookies.get(SESSION_COOKIE)
    if session and request.cookies.get(CSRF_COOKIE) != csrf_token(session):
        response.set_cookie(CSRF_COOKIE, csrf_token(session), samesite="Strict", secure=is_https(request), path="/")
