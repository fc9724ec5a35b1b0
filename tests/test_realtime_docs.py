"""docs/realtime.md documents every Socket.IO event the hub uses: the client events it answers
(hub.realtime.CLIENT_EVENTS) and every event name the server emits anywhere under hub/
(``to_user(..., "name"``, ``to_room(..., "name"``, ``emit("name"``). A new event without a doc entry fails here."""
from __future__ import annotations

import pathlib
import re

from hub.realtime import CLIENT_EVENTS

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "realtime.md"

# the event name is the first string literal after the target argument (which may span lines)
SERVER_EMIT = re.compile(
    r"""\b(?:to_user|to_room)\(\s*[^,()]*(?:\([^()]*\)[^,()]*)*,\s*["']([A-Za-z0-9_.:-]+)["']"""
    r"""|\bemit\(\s*["']([A-Za-z0-9_.:-]+)["']""")


def server_events() -> dict[str, list[str]]:
    """event name -> files that emit it."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "hub").rglob("*.py")):
        for m in SERVER_EMIT.finditer(path.read_text(encoding="utf-8")):
            name = m.group(1) or m.group(2)
            found.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return found


def documented() -> set[str]:
    return set(re.findall(r"`([A-Za-z0-9_.:-]+)`", DOC.read_text(encoding="utf-8")))


def test_the_scan_finds_the_known_events():
    """Guards the regex itself: if it silently stopped matching, the real test would pass vacuously."""
    found = server_events()
    for name in ("session.new", "message.new", "session.removed", "session.closed", "queue.changed", "resync",
                 "presence.viewing", "presence.typing"):
        assert name in found, f"the scan no longer finds {name!r}: fix SERVER_EMIT"
    assert len(CLIENT_EVENTS) >= 10


def test_every_client_event_is_documented():
    missing = sorted(set(CLIENT_EVENTS) - documented())
    assert not missing, f"client events missing from docs/realtime.md (write them as `name`): {missing}"


def test_every_server_event_is_documented():
    docs = documented()
    missing = {name: files for name, files in server_events().items() if name not in docs}
    assert not missing, f"server events missing from docs/realtime.md (write them as `name`): {missing}"
