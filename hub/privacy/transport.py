"""Whether a request reached the hub over TLS: directly, or through a trusted reverse proxy that says
so in ``X-Forwarded-Proto`` (the login cookie is then marked ``Secure``). Trusted proxies: the
config's ``trusted_proxies`` or ``HUB_TRUSTED_PROXIES`` (addresses / CIDR networks, comma-separated)."""
from __future__ import annotations

import ipaddress
import os
from typing import Iterable

from aiohttp import web


def _trusted(remote: str, proxies: Iterable[str]) -> bool:
    try:
        ip = ipaddress.ip_address((remote or "").strip())
    except ValueError:
        return False
    for item in proxies:
        try:
            if ip in ipaddress.ip_network(item.strip(), strict=False):
                return True
        except ValueError:
            continue
    return False


def from_trusted_proxy(request: web.Request) -> bool:
    """The direct peer is a trusted reverse proxy: what it says in ``X-Forwarded-*`` may be believed."""
    from ..audit import _trusted_proxies
    proxies = _trusted_proxies(request) or tuple(os.environ.get("HUB_TRUSTED_PROXIES", "").split(","))
    return _trusted(request.remote or "", [p for p in proxies if p.strip()])


def is_https(request: web.Request) -> bool:
    if request.secure:
        return True
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return proto == "https" and from_trusted_proxy(request)
