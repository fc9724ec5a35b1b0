"""python-socketio's Redis client manager, tuned for the hub: short timeouts and a listener that
retries every second (the stock one backs off to a minute, so live push would lag that long after
a Redis restart)."""
from __future__ import annotations

import asyncio
import logging
import time

import socketio

log = logging.getLogger(__name__)


class HubRedisManager(socketio.AsyncRedisManager):
    def __init__(self, url: str, channel: str = "hub-socketio"):
        super().__init__(url, channel=channel, logger=log,
                         redis_options={"socket_connect_timeout": 1.0, "health_check_interval": 10})
        self._down_until = 0.0
        self.publish_failures = 0

    async def _publish(self, data):  # noqa: ANN001, ANN202
        """One quick attempt; after a failure, skip Redis for a second (this process's own sockets were
        already served by ``emit``; the stream store tells the others to resync once Redis is back)."""
        if time.monotonic() < self._down_until:
            self.publish_failures += 1
            return None
        try:
            if not self.connected:
                self._redis_connect()
            return await self.redis.publish(self.channel, self.json.dumps(data))
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
                    log.info("socket.io redis listener subscribed")
                async for message in self.pubsub.listen():
                    yield message
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001
                log.warning("socket.io redis listener: %s; retrying in 1 s", exc)
                subscribed = False
                await asyncio.sleep(1.0)
