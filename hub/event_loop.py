"""The event loop ``serve`` runs on: uvloop when it is installed (``auto``), else asyncio's own.

uvloop (libuv under the same asyncio API) cut the hub's CPU per callback by about a sixth on
bench/callbacks.py (176-198 against 219-230 us, quick runs side by side); ``--loop asyncio`` (or
``HUB_EVENT_LOOP=asyncio``) keeps the standard loop, e.g. to rule the loop out while chasing a bug.
"""
from __future__ import annotations

import asyncio
import importlib

CHOICES = ("auto", "uvloop", "asyncio")


class EventLoopError(ValueError):
    """The configured loop is unknown or not installed."""


def resolve(choice: str) -> str:
    """The loop ``choice`` stands for on this machine: ``uvloop`` or ``asyncio``."""
    choice = (choice or "auto").strip().lower()
    if choice not in CHOICES:
        raise EventLoopError(f"unknown event loop {choice!r} (choose one of {', '.join(CHOICES)})")
    if choice == "asyncio":
        return "asyncio"
    try:
        importlib.import_module("uvloop")
    except ImportError:
        if choice == "uvloop":
            raise EventLoopError("event loop 'uvloop' asked for but uvloop is not installed") from None
        return "asyncio"
    return "uvloop"


def new_event_loop(choice: str) -> tuple[asyncio.AbstractEventLoop, str]:
    """A fresh loop of the kind ``choice`` resolves to, and that kind's name."""
    name = resolve(choice)
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop(), name
    return asyncio.new_event_loop(), name
