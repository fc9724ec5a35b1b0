"""Configuration changes take effect at once, in every hub process.

An admin change calls ``publish(topic)``: the subscribers of this process reload at once (before the
API answers), and when the hub has a Redis URL (``config.redis_url``) the topic also goes out on a Redis
channel every hub process listens to, so their caches reload within milliseconds instead of waiting
for a cache's time-to-live. A reload that fails is logged; the cache keeps serving what it had.
"""
from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, Awaitable, Callable

from aiohttp import web

from .tasks import cancel_and_wait

log = logging.getLogger("hub.config_bus")

CHANNEL = "scrm-hub:config"
Reload = Callable[[], Awaitable[None]]

# the topics the hub's caches subscribe to
SETTINGS = "settings"
ROUTING_RULES = "routing_rules"
KEYWORD_RULES = "keyword_rules"
FAQ = "faq"
ACCOUNTS = "accounts"
USERS = "users"
CHANNEL_CODES = "channel_codes"
SLA_RULES = "sla_rules"
QUALITY_RULES = "quality_rules"
TICKET_RULES = "ticket_rules"
CUSTOMER_MERGES = "customer_merges"  # a merge or its undo moved conversations between customers


class ConfigBus:
    def __init__(self, redis_url: str = "", channel: str = CHANNEL):
        self.redis_url = redis_url
        self.channel = channel
        self.origin = uuid.uuid4().hex  # this process: its own Redis messages are not applied twice
        self._subscribers: dict[str, list[Reload]] = {}
        self._redis: Any = None
        self._listener: asyncio.Task | None = None
        self.received = 0  # topics applied from other processes (for tests and /healthz figures)

    def subscribe(self, topic: str, reload: Reload) -> None:
        self._subscribers.setdefault(topic, []).append(reload)

    async def _apply(self, topic: str) -> None:
        for reload in self._subscribers.get(topic, []):
            try:
                await reload()
            except Exception:  # noqa: BLE001 - the cache keeps its values and its own TTL refresh
                log.exception("config reload of %s failed", topic)

    async def publish(self, topic: str) -> None:
        """Reload ``topic`` here at once, then tell the other processes."""
        await self._apply(topic)
        if self._redis is not None:
            try:
                await self._redis.publish(self.channel, json.dumps({"topic": topic, "origin": self.origin}))
            except Exception:  # noqa: BLE001 - other processes still pick it up on their TTL
                log.warning("config bus: Redis publish of %s failed", topic, exc_info=True)

    async def start(self) -> None:
        if not self.redis_url:
            return
        import redis.asyncio as aioredis
        self._redis = aioredis.from_url(self.redis_url, socket_connect_timeout=1.0)
        pubsub = self._redis.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            # the caches were loaded before this subscription took effect: a change another process
            # published in between (it was ready first and an admin was quick) would be missed for
            # good, so once Redis confirms the subscription, every cache reloads from the database
            await self._confirmed(pubsub)
        except Exception as exc:  # noqa: BLE001 - Redis down: start anyway (callbacks need no Redis)
            log.warning("config bus: Redis unavailable at start (%s); subscribing in the background", exc)
        else:
            await self._reload_all()
        self._listener = asyncio.create_task(self._listen(pubsub), name="config-bus")

    async def _reload_all(self) -> None:
        for topic in list(self._subscribers):
            await self._apply(topic)

    @staticmethod
    async def _confirmed(pubsub: Any, timeout: float = 3.0) -> bool:
        """Wait (at most ``timeout``) for Redis to confirm the subscription."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            message = await pubsub.get_message(ignore_subscribe_messages=False, timeout=left)
            if message and message.get("type") == "subscribe":
                return True
        log.warning("config bus: Redis did not confirm the subscription within %.0f s", timeout)
        return False

    async def _listen(self, pubsub: Any) -> None:
        while True:
            try:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis restarted: resubscribe after a pause
                log.warning("config bus: Redis listen failed; retrying", exc_info=True)
                await asyncio.sleep(1.0)
                try:
                    await pubsub.subscribe(self.channel)
                except Exception:  # noqa: BLE001
                    continue
                await self._reload_all()  # changes published while we were not listening
                continue
            if not message:
                continue
            try:
                body = json.loads(message["data"])
                topic, origin = str(body["topic"]), str(body.get("origin", ""))
            except (ValueError, KeyError, TypeError):
                continue
            if origin != self.origin:
                self.received += 1
                await self._apply(topic)

    async def stop(self) -> None:
        if self._listener is not None:
            await cancel_and_wait(self._listener)
            self._listener = None
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None


CONFIG_BUS = web.AppKey("config_bus", ConfigBus)


def bus_of(request: web.Request) -> ConfigBus:
    return request.app[CONFIG_BUS]


async def publish(request: web.Request, topic: str) -> None:
    """From an API view: apply ``topic`` in every process (a bare app without the bus: nothing to do)."""
    bus = request.app.get(CONFIG_BUS)
    if bus is not None:
        await bus.publish(topic)


def _subscribe_caches(bus: ConfigBus, hub: Any, app: web.Application) -> None:
    """Every cache of the hub reloads on its topic."""
    from .channels.api import CHANNELS
    if CHANNELS in app:
        bus.subscribe(CHANNEL_CODES, app[CHANNELS]._reload)
    bus.subscribe(SETTINGS, hub.settings.reload)
    bus.subscribe(ROUTING_RULES, hub.sessions.load_rules)
    bus.subscribe(USERS, hub.sessions.load)
    bus.subscribe(ACCOUNTS, hub.accounts.reload)

    async def merges() -> None:
        hub.customers.forget_conversations()

    bus.subscribe(CUSTOMER_MERGES, merges)
    hub.customers.announce_merges = lambda: bus.publish(CUSTOMER_MERGES)

    async def faq() -> None:  # a no-op where the change was made (the index already has it)
        await hub.kb.refresh_if_changed(every=0.0)

    bus.subscribe(FAQ, faq)

    async def keyword_rules() -> None:
        hub.keywords._loaded_at = float("-inf")  # next read reloads from the database
        await hub.keywords.rules()

    bus.subscribe(KEYWORD_RULES, keyword_rules)
    from .supervisor.api import SUPERVISION
    from .tickets.api import TICKETS
    if SUPERVISION in app:  # the SLA alert engine's and the quality checker's rule caches
        bus.subscribe(SLA_RULES, app[SUPERVISION].alerts.rules_changed)
        bus.subscribe(QUALITY_RULES, app[SUPERVISION].quality.load_rules)
    if TICKETS in app:  # work-order routing rules (ticket types are read from the database each time)
        bus.subscribe(TICKET_RULES, app[TICKETS].load_rules)


def install(app: web.Application) -> None:
    """Add after the hub's cleanup context (it needs the running hub)."""
    from .app import CONFIG, HUB

    bus = ConfigBus(getattr(app[CONFIG], "redis_url", "") or "")
    app[CONFIG_BUS] = bus

    async def context(app: web.Application):  # noqa: ANN202
        _subscribe_caches(bus, app[HUB], app)
        await bus.start()
        yield
        await bus.stop()

    app.cleanup_ctx.append(context)
