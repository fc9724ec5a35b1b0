"""WeChat Customer Service (微信客服) pulls: the ``kf_msg_or_event`` callback only signals.

The signal is archived like any message, with a ``kf_pull`` job. The job pulls ``kf/sync_msg``
with the event's token and the stored cursor, archives each pulled item by ``msgid`` (exactly
once, thanks to the archive's dedup), and only then stores ``next_cursor``; it loops while
``has_more``. A crash between the archive commit and the cursor update re-pulls the same page,
which the dedup absorbs, so nothing is skipped or doubled. Pulls of one kf account never overlap.
"""
from __future__ import annotations

import asyncio
import logging

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from ..accounts import AccountRegistry
from ..archive.store import ArchiveWriter, ToArchive
from ..clock import Clock
from ..db import Database, retry_busy
from ..messages import from_kf_item
from ..models import KfCursor
from ..outbound.api import PlatformApi, PlatformError
from ..pipeline import JobContext

log = logging.getLogger(__name__)
cursors = KfCursor.__table__
# an event's token is good for 10 minutes; past this age (a pull retried, a hub that was down) the
# pull goes without one, which the platform allows, only at a stricter rate. Sent stale, it was
# refused on every retry, and the signals queued behind it went stale in turn.
TOKEN_LIFE = 540.0
INVALID_TOKEN = 95007
# a first pull (no stored cursor: a new kf account, a lost cursor) answers the last 3 days: what was
# sent before this is archived as history, not run through the bots, routing and welcomes (a bot
# answered a two-day-old question staff had answered, a welcome went out on a two-day-old code)
HISTORY_BEFORE = 600.0


class KfPuller:
    def __init__(self, db: Database, clock: Clock, api: PlatformApi, accounts: AccountRegistry,
                 writer: ArchiveWriter, limit: int = 1000):
        self.db = db
        self.clock = clock
        self.api = api
        self.accounts = accounts
        self.writer = writer
        self.limit = limit
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        self.pages = 0

    async def handle_job(self, ctx: JobContext) -> None:
        data = ctx.data
        token = data.get("token", "")
        if token and ctx.message.sent_at and self.clock.now() - ctx.message.sent_at > TOKEN_LIFE:
            token = ""
        await self.pull(ctx.message.account_id, data.get("open_kfid", ""), token)

    async def load_cursor(self, account_id: str, open_kfid: str) -> str:
        async with self.db.read() as conn:
            return (await conn.execute(select(cursors.c.cursor).where(
                (cursors.c.account_id == account_id) & (cursors.c.open_kfid == open_kfid)))).scalar() or ""

    async def store_cursor(self, account_id: str, open_kfid: str, cursor: str) -> None:
        async def write() -> None:
            async with self.db.write() as conn:
                stmt = self._insert(cursors).values(account_id=account_id, open_kfid=open_kfid, cursor=cursor,
                                                    updated_at=self.clock.now())
                await conn.execute(stmt.on_conflict_do_update(
                    index_elements=["account_id", "open_kfid"],
                    set_={"cursor": cursor, "updated_at": self.clock.now()}))

        await retry_busy(write)

    @staticmethod
    def _item(account_id: str, item: dict, history_before: float | None) -> ToArchive:
        msg = from_kf_item(item)
        history = history_before is not None and bool(msg.sent_at) and msg.sent_at < history_before
        # (a recall in the history still marks its message: its job does only that)
        return ToArchive(account_id, msg, None if history and msg.kind != "event.recall" else "inbound")

    async def pull(self, account_id: str, open_kfid: str, token: str) -> int:
        """Pull everything new for one kf account; returns how many new messages were archived."""
        account = await self.accounts.get(account_id)
        if account is None:
            raise LookupError(f"account {account_id} is gone")
        lock = self._locks.setdefault((account_id, open_kfid), asyncio.Lock())
        new = 0
        async with lock:
            cursor = await self.load_cursor(account_id, open_kfid)
            history_before = self.clock.now() - HISTORY_BEFORE if not cursor else None
            while True:
                try:
                    page = await self.api.kf_sync_msg(account, cursor=cursor, token=token, open_kfid=open_kfid,
                                                      limit=self.limit)
                except PlatformError as exc:
                    if not token or exc.errcode != INVALID_TOKEN:
                        raise
                    log.info("kf pull %s/%s: the event's token is refused; pulling without it", account_id, open_kfid)
                    token = ""
                    continue
                self.pages += 1
                items = [self._item(account_id, i, history_before) for i in page.get("msg_list") or []
                         if isinstance(i, dict)]
                if items:
                    saved = await self.writer.save(items)  # durable before the cursor moves
                    new += sum(1 for s in saved if not s.duplicate)
                next_cursor = str(page.get("next_cursor") or cursor)
                more = int(page.get("has_more") or 0)
                if more and next_cursor == cursor:  # "more", yet nowhere new to pull it from: not again at once
                    raise PlatformError(1_000_003, "kf/sync_msg has_more without a new next_cursor")
                if next_cursor != cursor:
                    await self.store_cursor(account_id, open_kfid, next_cursor)
                    cursor = next_cursor
                if not more:
                    break
        log.info("kf pull %s/%s: %d new messages", account_id, open_kfid, new)
        return new
