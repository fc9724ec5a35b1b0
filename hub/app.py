"""The aiohttp app factory: wires the data path together and starts the background workers.

callback -> decrypt/parse (hub/callbacks) -> archive + job (hub/archive/store.py) -> 200
         -> pipeline (hub/pipeline.py): archive effects, then bots / routing / push steps
         -> outbound queue (hub/outbound) -> platform API
"""
from __future__ import annotations

import asyncio
import gc
import os
import logging
import secrets
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import select

from agent_ui import views as agent_ui_views
from bots import api as bots_api
from bots.pipeline import Bots
from bots.store import KeywordRules

from . import api as http_api
from .channels import wiring as channels_wiring
from .supervisor import wiring as supervisor_wiring
from .archive.search import wiring as search_wiring
from .customers import api as customers_api
from .service import admin_api as service_admin_api
from .orders import wiring as orders_wiring
from .privacy import wiring as privacy_wiring
from .privacy.secrets import ring_for
from .supervisor import dashboard as dashboard_wiring
from .tickets import wiring as tickets_wiring
from . import auth_views
from . import audit as audit_log
from . import config_bus
from . import account_status, accounts_api, settings_api
from .accounts import AccountRegistry, upsert_configured
from .archive.effects import archive_step
from .archive.store import ArchiveWriter
from .callbacks import official_account, wecom
from .callbacks.common import CallbackDeps
from .callbacks.kf import KfPuller
from .clock import Clock
from .config import HubConfig
from .db import Database
from .http_guard import add_routes
from .outbound.api import PlatformApi
from .outbound.shared_tokens import SharedTokens
from .outbound.queue import Outbound
from .customers.service import CustomerService
from .knowledge.tokenizer import Tokenizer
from .models import Conversation
from .knowledge.store import KnowledgeBase
from .pipeline import Pipeline
from .presence import Presence
from .push import MemoryStreams, Push
from .realtime import AgentNamespace, create_sio
from .scale.redis_manager import HubRedisManager
from .scale.redis_streams import RedisStreams
from .scale.claims import TimerClaims, worker_name
from .scale.job_shard import Shard, ShardLock
from .scale.redis_presence import RedisPresence
from .service.delivery import kf_send_failure_step
from .service.sessions import SessionService
from .service.step import route_step
from .service.timers import Timers
from .settings import Settings
from .tasks import cancel_and_wait
from .users import LoginLimiter

log = logging.getLogger("hub")
# jobs written but not yet run, past which the pipeline cannot keep up with the callbacks coming in
# (a flood, not a busy steady state): it then yields to acknowledging them, while the CPU is short
# (Pipeline._yielding), and catches up after. At 1,000 a flood's first second or so ran its jobs at
# full speed, acknowledging at a third of the rate it then reached (bench/scale.py)
PIPELINE_BACKLOG = 150
GC_THRESHOLDS = (20_000, 50, 50)  # measured with bench/push.py against the default (700, 10, 10)


@dataclass
class Hub:
    """Every long-lived part of a running hub process."""

    config: HubConfig
    clock: Clock
    db: Database
    accounts: AccountRegistry
    writer: ArchiveWriter
    pipeline: Pipeline
    api: PlatformApi
    outbound: Outbound
    kf: KfPuller
    api_token: str
    settings: Settings
    push: Push
    presence: Presence
    timers: Timers
    sessions: SessionService
    limiter: LoginLimiter
    sio: Any
    kb: KnowledgeBase
    keywords: KeywordRules
    bots: Bots
    customers: CustomerService


HUB = web.AppKey("hub", Hub)
CONFIG = web.AppKey("config", HubConfig)
CLOCK = web.AppKey("clock", Clock)


def shared_tokenizer() -> Tokenizer:
    """jieba takes ~0.6 s to load: once per process, at start, never on the first message."""
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = Tokenizer()
    return _TOKENIZER


_TOKENIZER: "Tokenizer | None" = None


async def build_hub(config: HubConfig, clock: Clock, session: aiohttp.ClientSession, sio: Any) -> Hub:
    tokenizer = shared_tokenizer()  # before anything else: the slow part of starting
    db = Database(config.database_url)
    await db.create_schema(config.auto_migrate)
    await upsert_configured(db, clock, config.accounts)
    if config.demo and not os.environ.get("HUB_DEMO_SEEDED"):  # serve --workers seeds once, before the workers
        from .demo import seed_demo
        await seed_demo(db, clock)
    accounts = AccountRegistry(db, clock)
    await accounts.reload()
    writer = ArchiveWriter(db, clock, config.writer_max_batch)
    pipeline = Pipeline(db, clock, lease=config.job_lease, burst_share=config.burst_job_share)
    pipeline.shard_lock = ShardLock(db, Shard.parse(config.job_shard))
    pipeline.shard_lock.on_wake = pipeline.notify
    pipeline.shard_lock.preferring = pipeline.prefers_shard
    writer.on_commit.append(pipeline.shard_lock.committed)
    writer.on_commit.append(pipeline.notify)
    platform = PlatformApi(session, clock, config.wecom_api_base, config.oa_api_base)
    if db.dialect == "postgresql":  # processes that may run beside this one share the Official Account's token
        platform.shared = SharedTokens(db, clock, ring_for(db))
    outbound = Outbound(db, clock, platform, accounts, config.outbound_max_attempts,
                        retry_for=config.outbound_retry_hours * 3600)
    outbound.trickle = pipeline.trickle
    kf = KfPuller(db, clock, platform, accounts, writer, config.kf_pull_limit)
    settings = Settings(db, clock)
    await settings.preset(config.settings)
    push = Push(sio, RedisStreams.from_url(config.redis_url) if config.redis_url else MemoryStreams())
    await push.streams.start()
    presence = Presence(push, grace=lambda: float(settings.cached("offline_grace")))  # as set now, not at start
    timers = Timers(clock, TimerClaims(db, clock, worker_name(config.worker_id)) if not db.is_sqlite else None)
    customers = CustomerService(db, clock, push, settings)

    async def fetch_profile(account_id: str, channel: str, peer_id: str) -> dict[str, str]:
        account = await accounts.get(account_id)
        return await platform.customer_profile(account, channel, peer_id) if account else {}

    customers.fetch_profile = fetch_profile
    async def kf_state(row: Any, state: int, user: Any) -> None:
        """The 微信客服 platform's own service state follows the hub's (bot, queued, human, ended)."""
        if await sessions.channel_of(row.conversation_id) != "kf":
            return
        async with db.read() as conn:
            conv = (await conn.execute(select(Conversation.__table__).where(
                Conversation.__table__.c.id == row.conversation_id))).first()
        if conv is None or conv.channel != "kf":
            return
        account = await accounts.get(conv.account_id)
        if account is None:
            return
        servicer = getattr(user, "username", "") if state == 3 else ""
        await platform.kf_service_state_trans(account, open_kfid=conv.thread, external_userid=conv.peer_id,
                                              service_state=state, servicer_userid=servicer)

    sessions = SessionService(db, clock, push, outbound, settings, timers, profile=customers.profile,
                              kf_state=kf_state)
    presence.on_gone = sessions.agent_gone
    if config.redis_url:  # several processes: an agent connected to any of them is present
        presence.share(RedisPresence(push.streams.redis, worker_name(config.worker_id)),  # statuses as routing has them
                       lambda: [sessions.agents[a.id] for a in sessions.dispatcher.agents()
                                if a.status != "offline" and a.id in sessions.agents])
        presence.shared.start()
    outbound.on_status.append(sessions.delivery_status)  # message.status to the agents who see the reply

    async def tag_by_rule(customer_id: int, names: list[str]) -> None:
        await customers.tag("routing", customer_id, add=names, source="rule")

    sessions.tag_customer = tag_by_rule
    kb = KnowledgeBase(db, clock, tokenizer)
    await kb.load()
    keywords = KeywordRules(db, clock)

    async def has_open_session(ctx_state: dict, conversation_id: int) -> bool:
        return await sessions.open_session_for(ctx_state, conversation_id) is not None

    bots = Bots(db, clock, settings, outbound, kb, keywords, has_open_session)
    pipeline.add_inbound_step(archive_step(db, clock))
    pipeline.add_inbound_step(kf_send_failure_step(db, outbound))
    pipeline.add_inbound_step(customers.identify_step)
    pipeline.add_inbound_step(bots.step)
    pipeline.add_inbound_step(route_step(sessions, customers.routing_context))
    pipeline.register("kf_pull", kf.handle_job)
    api_token = config.api_token or (secrets.token_urlsafe(24) if config.demo else "")
    return Hub(config, clock, db, accounts, writer, pipeline, platform, outbound, kf, api_token, settings, push,
               presence, timers, sessions, LoginLimiter(clock), sio, kb, keywords, bots, customers)


def create_app(config: HubConfig, clock: Clock | None = None) -> web.Application:
    # no middlewares: the API's and pages' guard is added per route (hub/http_guard.py), the callbacks' stamp too
    app = web.Application(client_max_size=config.max_body_bytes)
    app[CONFIG] = config
    app[CLOCK] = clock or Clock()
    sio = create_sio(HubRedisManager(config.redis_url) if config.redis_url else None)
    agents_ns = AgentNamespace(lambda: app[HUB])
    sio.register_namespace(agents_ns)
    sio.attach(app)

    async def hub_context(app: web.Application):  # noqa: ANN202
        timeout = aiohttp.ClientTimeout(total=config.api_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            hub = await build_hub(config, app[CLOCK], session, sio)
            app[HUB] = hub
            deps.accounts, deps.writer = hub.accounts, hub.writer
            hub.pipeline.pressure = lambda: deps.under_pressure() or (
                hub.pipeline.backlog(hub.writer) > PIPELINE_BACKLOG and deps.receiving())
            hub.pipeline.acks_slow = deps.under_pressure
            hub.pipeline.ack_rate = deps.save_rate
            await hub.sessions.load()
            hub.presence.expect_back([u for u in hub.sessions.agents.values() if u.status != "offline"])
            if isinstance(sio.manager, HubRedisManager):
                await sio.manager.start_listening()  # before ready: no event published for us goes unheard
            hub.db.start_checkpoints()
            hub.writer.start()
            await hub.pipeline.shard_lock.start()
            hub.pipeline.start()
            hub.outbound.start()
            rechecks = asyncio.create_task(agents_ns.recheck_forever(), name="socket-rechecks")
            # start-up objects (jieba's dictionary, models, the FAQ index) are long-lived: keep the
            # collector from walking them on every full collection (long pauses under load)
            gc.collect()
            gc.freeze()
            # a server makes many short-lived objects (rows, packets): with the default thresholds the
            # full collections came every few seconds and each stopped the loop 40-70 ms (the push p99)
            gc.set_threshold(*GC_THRESHOLDS)
            log.info("scrm-hub ready on %s", hub.db.engine.url.render_as_string(hide_password=True))
            yield
            await cancel_and_wait(rechecks)
            await hub.pipeline.stop()
            await hub.pipeline.shard_lock.stop()
            await hub.sessions.stop()
            await hub.timers.stop()
            await hub.outbound.stop()
            await hub.writer.stop()
            if hub.presence.shared is not None:
                await hub.presence.shared.stop()
            await hub.push.streams.stop()
            await hub.db.dispose()

    app.cleanup_ctx.append(hub_context)
    # the routes exist before the hub starts; its parts are filled in by hub_context
    deps = CallbackDeps(None, None, app[CLOCK], config.callback_max_skew, config.max_body_bytes)  # type: ignore[arg-type]

    app.router.add_routes(account_status.stamped_routes(wecom.routes(deps)))
    app.router.add_routes(account_status.stamped_routes(official_account.routes(deps)))
    add_routes(app, http_api.routes())
    add_routes(app, auth_views.routes())
    agent_ui_views.setup(app)  # login page, agent console, static files
    add_routes(app, bots_api.routes())
    add_routes(app, customers_api.routes())
    add_routes(app, service_admin_api.routes())
    orders_wiring.install(app)  # after hub_context in cleanup_ctx, so the hub exists when it starts
    channels_wiring.install(app)
    supervisor_wiring.install(app)  # SLA alerts and quality checks (session observers)
    dashboard_wiring.install(app)  # GET /api/supervisor/dashboard, dashboard.update pushes
    tickets_wiring.install(app)  # /api/tickets, ticket types and rules, overdue timers
    audit_log.install(app)  # GET /api/audit
    privacy_wiring.install(app)  # retention purge, holds, erasure, reveal (hub/privacy)
    config_bus.install(app)  # admin changes reload every process's caches
    account_status.install(app)  # last callback / verification per account
    accounts_api.install(app)
    settings_api.install(app)
    search_wiring.install(app)  # GET /api/search, exports, keyword watches, the search indexer
    return app

