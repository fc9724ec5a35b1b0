"""Which agents have a socket on *any* hub process (Redis), so a socket closing on one process does
not take an agent offline who is still connected to another (a reconnect that landed elsewhere, a
second browser tab).

Per agent a hash ``worker -> open sockets``; per process a heartbeat key with a TTL, so the counts
of a process that died stop counting once its heartbeat expires. The field names the process *run*
(its worker name and a random part): a worker restarted under the same name (after a crash, or a
deploy) must not bring the dead run's counts back to life with its own heartbeat. Dead runs' fields
are removed when a lookup finds them.

Each process writes its own counts as they are (not increments), and writes them all again at every
heartbeat: an update lost while Redis was down, or a Redis restarted empty, is right again within one
heartbeat (a lost decrement kept an agent "online" for ever; a restart forgot every agent's sockets
on the other processes). At each heartbeat one process (a turn taken in Redis) also runs the sweep:
agents not offline whose only sockets were on a process that died for good are given the grace
period, as at a start.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any, Awaitable, Callable

from ..tasks import cancel_and_wait

log = logging.getLogger(__name__)

SUPERVISOR_SOCKETS = "hub:supervisor-sockets"  # worker -> sockets of supervisors and admins open there
HEARTBEAT_TTL = 15  # seconds a process counts as alive after its last heartbeat
HEARTBEAT_EVERY = 5.0
SWEEP_TURN = "hub:presence-sweep"  # the process that sweeps this heartbeat period


class RedisPresence:
    def __init__(self, redis: Any, worker: str):
        self.redis = redis
        self.worker = f"{worker}#{secrets.token_hex(4)}"  # this run of the worker
        self._task: asyncio.Task | None = None
        # set by hub/presence.py: this process's open sockets per user and its supervisors' sockets
        self.local: Callable[[], dict[int, int]] = dict
        self.local_supervisors: Callable[[], int] = lambda: 0
        self.sweep: Callable[[], Awaitable[None]] | None = None
        self._published: set[int] = set()  # users this run has a field for

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
                await self.publish_all()
                if self.sweep is not None and await self.redis.set(SWEEP_TURN, self.worker, nx=True,
                                                                    px=int(HEARTBEAT_EVERY * 1000)):
                    await self.sweep()
            except Exception as exc:  # noqa: BLE001
                log.warning("presence heartbeat failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_EVERY)

    async def publish_all(self) -> None:
        """Every count of this run as it is now: what a lost update or an emptied Redis got wrong."""
        counts = {uid: n for uid, n in self.local().items() if n > 0}
        pipe = self.redis.pipeline(transaction=False)
        for uid, n in counts.items():
            pipe.hset(f"hub:presence:{uid}", self.worker, n)
        for uid in self._published - set(counts):
            pipe.hdel(f"hub:presence:{uid}", self.worker)
        self._supervisor_field(pipe, self.local_supervisors())
        await pipe.execute()
        self._published = set(counts)

    def _supervisor_field(self, pipe: Any, n: int) -> None:
        if n > 0:
            pipe.hset(SUPERVISOR_SOCKETS, self.worker, n)
        else:
            pipe.hdel(SUPERVISOR_SOCKETS, self.worker)

    async def changed(self, user_id: int, count: int) -> None:
        """This process now holds ``count`` sockets of the user. Best effort (the heartbeat repairs)."""
        try:
            key = f"hub:presence:{user_id}"
            if count > 0:  # alive before counting (the heartbeat task may not have run yet)
                await self._beat()
                await self.redis.hset(key, self.worker, count)
                self._published.add(user_id)
            else:
                await self.redis.hdel(key, self.worker)
                self._published.discard(user_id)
        except Exception as exc:  # noqa: BLE001
            log.warning("presence update for user %s failed: %s", user_id, exc)

    async def supervisors_changed(self, count: int) -> None:
        """This process now holds ``count`` supervisors' and admins' sockets. Best effort."""
        try:
            if count > 0:
                await self._beat()
            pipe = self.redis.pipeline(transaction=False)
            self._supervisor_field(pipe, count)
            await pipe.execute()
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
