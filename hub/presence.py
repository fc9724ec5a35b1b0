"""Who is connected, and who is viewing or typing in which session.

An agent whose last socket drops is given a grace period (a laptop waking up, a flaky network)
before being treated as offline, which requeues their sessions. Two people on the same session
see each other: ``presence.viewing`` lists the viewers, ``presence.typing`` says who is typing.
With several hub processes (``shared``: hub/scale/redis_presence.py) an agent still connected to
another process is not gone; if Redis cannot say, the check is made again after another grace period.
Viewers and typing are per process (two people on one session see each other when on one process).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable

from .push import Push, user_room
from .users import UserInfo

log = logging.getLogger(__name__)


class Presence:
    def __init__(self, push: Push, grace: float | Callable[[], float] = 60.0):
        self.push = push
        self.grace = grace  # seconds, or a function giving them (the offline_grace setting, read at each arming)
        self.sockets: dict[int, set[str]] = {}
        self.users: dict[int, UserInfo] = {}
        self.viewing_by_sid: dict[str, int] = {}
        self.viewers: dict[int, dict[str, UserInfo]] = {}  # session -> sid -> user
        self._offline_timers: dict[int, asyncio.TimerHandle] = {}
        self.on_gone: Callable[[UserInfo], Awaitable[None]] | None = None  # set by the session service
        self.shared: Any = None  # RedisPresence when several processes serve agents
        self._supervisors: set[int] = set()  # supervisors and admins who have connected to this process
        self._supervisor_sids: set[str] = set()  # their sockets, as counted in Redis (shared)

    def supervisor_online(self) -> bool:
        """A supervisor or admin has a socket on this process (asked on every session change: a
        walk over every connected agent cost more than the rest of delivering a message)."""
        return any(self.sockets.get(uid) for uid in self._supervisors)

    async def connected(self, user: UserInfo, sid: str) -> None:
        self.sockets.setdefault(user.id, set()).add(sid)
        self.users[user.id] = user
        if user.is_supervisor:
            self._supervisors.add(user.id)
        else:
            self._supervisors.discard(user.id)  # a role changed since their last connection
        if self.shared is not None:
            await self.shared.changed(user.id, len(self.sockets[user.id]))
            if user.is_supervisor:
                self._supervisor_sids.add(sid)
                await self.shared.supervisors_changed(len(self._supervisor_sids))
        timer = self._offline_timers.pop(user.id, None)
        if timer:
            timer.cancel()

    async def disconnected(self, user: UserInfo, sid: str) -> None:
        had = sid in self.sockets.get(user.id, set())
        self.sockets.get(user.id, set()).discard(sid)
        if had and self.shared is not None:
            await self.shared.changed(user.id, len(self.sockets.get(user.id, ())))
            if sid in self._supervisor_sids:
                self._supervisor_sids.discard(sid)
                await self.shared.supervisors_changed(len(self._supervisor_sids))
        await self.viewing(user, sid, None)
        if not self.sockets.get(user.id):
            self._arm_offline(user)

    def share(self, shared: Any, present: Callable[[], list[UserInfo]]) -> None:
        """Several processes: ``shared`` (RedisPresence) publishes this process's sockets; ``present``
        gives the agents not offline, for the sweep."""
        self.shared = shared
        shared.local = lambda: {uid: len(sids) for uid, sids in self.sockets.items()}
        shared.local_supervisors = lambda: len(self._supervisor_sids)

        async def sweep() -> None:
            """Agents not offline with no socket here nor on a live process (theirs was on a process
            that died for good, which nobody else watched): offline after the grace period unless they
            connect, as at a start."""
            for user in present():
                if not self.sockets.get(user.id) and user.id not in self._offline_timers \
                        and await shared.connected_elsewhere(user.id) is False:
                    self._arm_offline(user)

        shared.sweep = sweep

    def expect_back(self, users: list[UserInfo]) -> None:
        """Agents marked present when the hub started: offline after the grace period unless they
        connect (their browser reconnects at once; one closed while the hub was down never does)."""
        for user in users:
            if not self.sockets.get(user.id) and user.id not in self._offline_timers:
                self._arm_offline(user)

    def _arm_offline(self, user: UserInfo) -> None:
        loop = asyncio.get_running_loop()
        grace = self.grace() if callable(self.grace) else self.grace
        self._offline_timers[user.id] = loop.call_later(grace, lambda: asyncio.ensure_future(self._gone(user)))

    async def _gone(self, user: UserInfo) -> None:
        self._offline_timers.pop(user.id, None)
        if self.sockets.get(user.id):
            return
        if self.shared is not None:
            elsewhere = await self.shared.connected_elsewhere(user.id)
            if elsewhere:
                return  # their socket is on another process, which watches it from now on
            if elsewhere is None:
                self._arm_offline(user)  # Redis cannot say: look again later rather than requeue wrongly
                return
        if self.on_gone is not None:
            try:
                await self.on_gone(user)
            except Exception:  # noqa: BLE001
                log.exception("offline handling for user %s failed", user.id)

    async def viewing(self, user: UserInfo, sid: str, session_id: int | None) -> None:
        previous = self.viewing_by_sid.pop(sid, None)
        if previous is not None:
            self.viewers.get(previous, {}).pop(sid, None)
            await self._announce(previous)
        if session_id is not None:
            self.viewing_by_sid[sid] = session_id
            self.viewers.setdefault(session_id, {})[sid] = user
            await self._announce(session_id)

    def viewer_ids(self, session_id: int) -> set[int]:
        return {u.id for u in self.viewers.get(session_id, {}).values()}

    async def _announce(self, session_id: int) -> None:
        people = {u.id: {"id": u.id, "name": u.display_name} for u in self.viewers.get(session_id, {}).values()}
        payload: dict[str, Any] = {"session_id": session_id, "viewers": list(people.values())}
        for sid in list(self.viewers.get(session_id, {})):
            await self.push.to_room(sid, "presence.viewing", payload)

    async def typing(self, user: UserInfo, sid: str, session_id: int) -> None:
        payload = {"session_id": session_id, "user": {"id": user.id, "name": user.display_name}}
        for other_sid, other in list(self.viewers.get(session_id, {}).items()):
            if other_sid != sid:
                await self.push.to_room(other_sid, "presence.typing", payload)


__all__ = ["Presence", "user_room"]
