"""python-socketio's Redis client manager, tuned for the hub: short timeouts and a listener that
retries every second (the stock one backs off to a minute, so live push would lag that long after
a Redis restart)."""
from __future__ import annotations

import asyncio
import logging
import time

import socketio

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT = 1.0  # seconds a publish may take before Redis counts as down (for a second)


class HubRedisManager(socketio.AsyncRedisManager):
    def __init__(self, url: str, channel: str = "hub-socketio"):
        super().__init__(url, channel=channel, logger=log,
                         redis_options={"socket_connect_timeout": 1.0, "health_check_interval": 10})
        self._down_until = 0.0
        self.publish_failures = 0
        self.subscribed = asyncio.Event()

    async def start_listening(self, timeout: float = 3.0) -> bool:
        """Subscribe at start-up. python-socketio subscribes only when the first socket connects, so an
        event another process published for that first agent before the subscription was up (its
        ``session.new``, a few milliseconds after its connect) was lost. Returns whether the
        subscription is up within ``timeout``; with Redis down the hub starts anyway (callbacks do not
        need it) and the listener keeps retrying."""
        if not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.initialize()
        try:
            await asyncio.wait_for(self.subscribed.wait(), timeout)
            return True
        except asyncio.TimeoutError:
            log.warning("socket.io redis listener not subscribed after %.0f s; starting without it", timeout)
            return False

    async def _publish(self, data):  # noqa: ANN001, ANN202
        """One quick attempt; after a failure, skip Redis for a second (this process's own sockets were
        already served by ``emit``; the stream store tells the others to resync once Redis is back)."""
        if time.monotonic() < self._down_until:
            self.publish_failures += 1
            return None
        try:
            if not self.connected:
                self._redis_connect()
            # bounded: a Redis that hangs (paused, a network partition) held every push, and the
            # pipeline job making it, until TCP gave up; the client has no read timeout of its own
            # (its listener blocks on reads by design)
            return await asyncio.wait_for(self.redis.publish(self.channel, self.json.dumps(data)), PUBLISH_TIMEOUT)
        except Exception as exc:  # noqa: BLE001
            self.connected = False
            self.publish_failures += 1
            self._down_until = time.monotonic() + 1.0
            log.warning("socket.io publish to redis failed: %s", exc)
            return None

    async def _redis_listen_with_retries(self):  # noqa: ANN201 - an async generator, as upstream
        subscribed = False
        while True:
            try:
                if not subscribed:
                    self._redis_connect()
                    await self.pubsub.subscribe(self.channel)
                    subscribed = True
                    self.subscribed.set()
                    log.info("socket.io redis listener subscribed")
                async for message in self.pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.warning("socket.io redis listener: %s; retrying in 1 s", exc)
                subscribed = False
                self.subscribed.clear()
                await asyncio.sleep(1.0)
