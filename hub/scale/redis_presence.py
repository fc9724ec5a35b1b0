"""Which agents have a socket on *any* hub process (Redis), so a socket closing on one process does
not take an agent offline who is still connected to another (a reconnect that landed elsewhere, a
second browser tab).

Per agent a hash ``worker -> open sockets``; per process a heartbeat key with a TTL, so the counts
of a process that died stop counting once its heartbeat expires. The field names the process *run*
(its worker name and a random part): a worker restarted under the same name (after a crash, or a
deploy) must not bring the dead run's counts back to life with its own heartbeat. Dead runs' fields
are removed when a lookup finds them.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)

SUPERVISOR_SOCKETS = "hub:supervisor-sockets"  # worker -> sockets of supervisors and admins open there
HEARTBEAT_TTL = 15  # seconds a process counts as alive after its last heartbeat
HEARTBEAT_EVERY = 5.0


class RedisPresence:
    def __init__(self, redis: Any, worker: str):
        self.redis = redis
        self.worker = f"{worker}#{secrets.token_hex(4)}"  # this run of the worker
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._heartbeat(), name="presence-heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
        try:
            await self.redis.delete(f"hub:worker:{self.worker}")
        except Exception:  # noqa: BLE001
            pass

    async def _beat(self) -> None:
        await self.redis.set(f"hub:worker:{self.worker}", "1", ex=HEARTBEAT_TTL)

    async def _heartbeat(self) -> None:
        while True:
            try:
                await self._beat()
            except Exception as exc:  # noqa: BLE001
                log.warning("presence heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_EVERY)

    async def changed(self, user_id: int, delta: int) -> None:
        """This process gained (+1) or lost (-1) a socket of the user. Best effort."""
        try:
            key = f"hub:presence:{user_id}"
            if delta > 0:  # alive before counting (the heartbeat task may not have run yet)
                await self._beat()
            left = await self.redis.hincrby(key, self.worker, delta)
            if left <= 0:
                await self.redis.hdel(key, self.worker)
        except Exception as exc:  # noqa: BLE001
            log.warning("presence update for user %s failed: %s", user_id, exc)

    async def supervisors_changed(self, delta: int) -> None:
        """This process gained (+1) or lost (-1) a supervisor's or admin's socket. Best effort."""
        try:
            if delta > 0:
                await self._beat()
            if await self.redis.hincrby(SUPERVISOR_SOCKETS, self.worker, delta) <= 0:
                await self.redis.hdel(SUPERVISOR_SOCKETS, self.worker)
        except Exception as exc:  # noqa: BLE001
            log.warning("supervisor presence update failed: %s", exc)

    async def supervisors_online(self) -> bool | None:
        """A supervisor or admin has a socket on some live process; None when Redis cannot say."""
        try:
            return await self._alive(SUPERVISOR_SOCKETS, await self.redis.hgetall(SUPERVISOR_SOCKETS))
        except Exception as exc:  # noqa: BLE001
            log.warning("supervisor presence lookup failed: %s", exc)
            return None

    async def connected_elsewhere(self, user_id: int) -> bool | None:
        """True if another live process holds a socket of the user; None when Redis cannot say."""
        try:
            key = f"hub:presence:{user_id}"
            return await self._alive(key, await self.redis.hgetall(key), skip=self.worker)
        except Exception as exc:  # noqa: BLE001
            log.warning("presence lookup for user %s failed: %s", user_id, exc)
            return None

    async def _alive(self, key: str, counts: dict[Any, Any], skip: str = "") -> bool:
        """Some process run with a positive count in ``counts`` (the hash ``key``: run -> sockets),
        other than ``skip``, is alive (its heartbeat has not expired); dead runs' fields go."""
        workers = [w.decode() if isinstance(w, bytes) else w for w, n in counts.items() if int(n) > 0]
        workers = [w for w in workers if w != skip]
        if not workers:
            return False
        beats = await self.redis.mget([f"hub:worker:{w}" for w in workers])
        dead = [w for w, beat in zip(workers, beats) if beat is None]
        if dead:
            await self.redis.hdel(key, *dead)
        return len(dead) < len(workers)
