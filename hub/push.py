"""Live push to agents: per-user event streams with sequence numbers, emitted over Socket.IO.

Every event to a user gets the next ``seq`` of that user's stream and is kept in a bounded
buffer, so a client that reconnects (network drop, laptop sleep) sends ``(epoch, last_seq)`` and
gets everything it missed, in order, nothing doubled. ``epoch`` names the stream's lifetime: a
client whose epoch is unknown (the hub restarted, or it fell behind the buffer) is told to
``resync`` and reloads its state through the API instead.
"""
from __future__ import annotations

import logging
import secrets
from collections import deque
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    seq: int
    name: str
    payload: dict[str, Any]

    def wire(self, epoch: str) -> dict[str, Any]:
        return {"seq": self.seq, "epoch": epoch, **self.payload}


class MemoryStreams:
    """The embedded (single-process) stream store."""

    def __init__(self, keep: int = 5000):
        self.epoch = secrets.token_hex(6)
        self.keep = keep
        self._seq: dict[int, int] = {}
        self._buf: dict[int, deque[StreamEvent]] = {}

    async def append(self, user_id: int, name: str, payload: dict[str, Any]) -> StreamEvent:
        seq = self._seq.get(user_id, 0) + 1
        self._seq[user_id] = seq
        event = StreamEvent(seq, name, payload)
        self._buf.setdefault(user_id, deque(maxlen=self.keep)).append(event)
        return event

    async def since(self, user_id: int, epoch: str | None, last_seq: int) -> list[StreamEvent] | None:
        """Events after ``last_seq``; None when they cannot be replayed (unknown epoch, or trimmed)."""
        if epoch != self.epoch:
            return None
        buf = self._buf.get(user_id, deque())
        if last_seq >= self._seq.get(user_id, 0):
            return []
        if not buf or buf[0].seq > last_seq + 1:
            return None
        return [e for e in buf if e.seq > last_seq]

    async def last_seq(self, user_id: int) -> int:
        return self._seq.get(user_id, 0)

    async def start(self) -> None:
        """Nothing to connect (RedisStreams, its multi-process twin, connects here)."""

    async def stop(self) -> None:
        """Nothing to close."""


class Push:
    """Emits events to users (sequenced, resumable) and to rooms (groups, supervisors: live only).

    ``streams`` is ``MemoryStreams`` in a single process, or ``hub.scale.redis_streams.RedisStreams``
    when several processes share Redis (same interface)."""

    def __init__(self, sio: Any, streams: Any):
        self.sio = sio
        self.streams = streams
        self.sent = 0
        self.lost = 0  # events not recorded (Redis down): their users are told to resync later
        if hasattr(streams, "on_recovered"):
            streams.on_recovered = self.resync_users

    async def to_user(self, user_id: int, name: str, payload: dict[str, Any]) -> StreamEvent:
        try:
            event = await self.streams.append(user_id, name, payload)
        except Exception as exc:  # noqa: BLE001 - the user resyncs when the stream store is back
            self.lost += 1
            log.warning("event %s to user %s not recorded: %s", name, user_id, exc)
            return StreamEvent(0, name, payload)
        try:
            await self.sio.emit(name, event.wire(self.streams.epoch), room=user_room(user_id))
            self.sent += 1
        except Exception as exc:  # noqa: BLE001 - the event stays in the stream for a resume
            log.warning("emit %s to user %s failed: %s", name, user_id, exc)
        return event

    async def to_room(self, room: str, name: str, payload: dict[str, Any], skip_sid: str | None = None) -> None:
        try:
            await self.sio.emit(name, payload, room=room, skip_sid=skip_sid)
        except Exception as exc:  # noqa: BLE001
            log.warning("emit %s to %s failed: %s", name, room, exc)

    async def resync_users(self, user_ids: set[int]) -> None:
        """Tell these users' consoles to reload their state (they missed events)."""
        for user_id in user_ids:
            await self.sio.emit("resync", {"epoch": self.streams.epoch, "seq": await self.streams.last_seq(user_id)},
                                room=user_room(user_id))

    async def replay(self, sid: str, user_id: int, epoch: str | None, last_seq: int) -> int:
        """Send a reconnecting client what it missed; returns how many, or -1 after telling it to resync."""
        events = await self.streams.since(user_id, epoch, last_seq)
        if events is None:
            await self.sio.emit("resync", {"epoch": self.streams.epoch, "seq": await self.streams.last_seq(user_id)},
                                to=sid)
            return -1
        for event in events:
            await self.sio.emit(event.name, event.wire(self.streams.epoch), to=sid)
        return len(events)


def user_room(user_id: int) -> str:
    return f"user:{user_id}"


def group_room(group: str) -> str:
    return f"group:{group}"


SUPERVISORS = "supervisors"
