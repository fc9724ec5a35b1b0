"""The persistent outbound queue: archive + outbox row in one transaction, a sender worker that
sends with retries and exponential backoff, and a status per message (queued, sent, failed).

Rows are claimed with a conditional UPDATE (``queued`` -> ``sending`` with a lease), so several
hub processes never send the same row; a lease that expires (a process died mid-send) puts the row
back in the queue.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from ..accounts import AccountRegistry
from ..archive.store import fit
from ..clock import Clock
from ..db import Database, retry_busy
from ..errors import bad_request
from ..models import Conversation, Message, Outbox
from ..tasks import cancel_and_wait
from ..trickle import Trickle
from .api import PlatformApi, PlatformError, network_error

log = logging.getLogger(__name__)

messages = Message.__table__
outbox = Outbox.__table__
conversations = Conversation.__table__

LEASE = 60.0
# a send in flight renews its lease this often: one can outlast LEASE (a token endpoint timing out
# for several queued sends in turn), and another process must not take it as abandoned
RENEW_EVERY = LEASE / 3
# a message retried this long after it was queued no longer holds its conversation's next ones back
HOLD_NEXT = 600.0
WAKE_AFTER_SEND = 0.05  # seconds: the sends ending meanwhile share the pass that follows
# under a burst, automatic sends wait their turn in the trickle anyway: passes for them come at most
# this often (an agent's reply still wakes one at once); a pass reads every waiting row, and during a
# flood passes every 10-25 ms took a tenth of the loop from acknowledging
WAKE_UNDER_BURST = 0.25


@dataclass(frozen=True)
class OutboundRequest:
    """What to send: a text reply into a conversation, or a welcome by code."""

    account_id: str
    conversation_id: int
    text: str
    sender: str  # bot | agent:<id> | system
    dedup_key: str | None = None  # makes enqueueing idempotent (e.g. "bot:<inbound message id>")
    welcome_code: str = ""  # set: answer through the welcome API of the channel
    staff_userid: str = ""  # WeCom: the staff member who owns the external contact
    kind: str = "text"  # text | image | link
    content: dict[str, Any] | None = None  # image: {media_id}; link: {title, url, description, pic_url}


def _body(channel: str, req: OutboundRequest) -> dict[str, Any]:
    """The message body in the platform's shape: {"msgtype": ..., <msgtype>: {...}}. An image goes by its
    media_id; WeCom's message task and welcome take a pic_url instead, and their link attachment has a
    picurl where 微信客服's link has a thumb_media_id."""
    c = req.content or {}
    if req.kind == "image":
        if channel == "wecom" and not c.get("media_id") and c.get("pic_url"):
            return {"msgtype": "image", "image": {"pic_url": c["pic_url"]}}
        return {"msgtype": "image", "image": {"media_id": c.get("media_id", "")}}
    if req.kind == "link":
        if channel == "oa":
            return {"msgtype": "news", "news": {"articles": [{"title": c.get("title", ""), "description": c.get(
                "description", ""), "url": c.get("url", ""), "picurl": c.get("pic_url", "")}]}}
        if channel == "wecom":
            return {"msgtype": "link", "link": {"title": c.get("title", ""), "picurl": c.get("pic_url", ""),
                                                "desc": c.get("description", ""), "url": c.get("url", "")}}
        return {"msgtype": "link", "link": {"title": c.get("title", ""), "desc": c.get("description", ""),
                                            "url": c.get("url", ""), "thumb_media_id": c.get("media_id", "")}}
    return {"msgtype": "text", "text": {"content": req.text}}


def media_problem(channel: str, kind: str, content: dict[str, Any] | None) -> str | None:
    """Why the channel's platform would refuse this image or link for good, or None when it takes it:
    an image needs a media_id (WeCom takes a pic_url too), a 微信客服 link its thumbnail's media_id."""
    c = content or {}
    if kind == "image" and not c.get("media_id") and not (channel == "wecom" and c.get("pic_url")):
        return "an image needs a media_id on this channel (only WeCom takes a pic_url)"
    if kind == "link" and channel == "kf" and not c.get("media_id"):
        return "a 微信客服 link needs its thumbnail's media_id"
    return None


# what a text message may carry, in UTF-8 bytes (a Chinese character is 3): 微信客服 send_msg and the
# Official Account's customer-service message take 2,048, WeCom's message task and welcome 4,000
TEXT_BYTES = {"kf": 2048, "oa": 2048, "wecom": 4000}
TEXT_CHARS = 2000


def check_text(channel: str, text: Any) -> str:
    """A person's text for a channel, or a 400 ``invalid_text`` saying what is too long: the platform
    would refuse it for good (45002) after it had been queued."""
    if not isinstance(text, str) or not text.strip():
        raise bad_request("invalid_text", "text is required", "text")
    if len(text) > TEXT_CHARS:
        raise bad_request("invalid_text", f"at most {TEXT_CHARS} characters", "text")
    if "\x00" in text:  # PostgreSQL cannot store it (the reply was a 500)
        raise bad_request("invalid_text", "text must not contain a NUL character", "text")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate ("\ud83d" in JSON: an emoji cut in half)
        raise bad_request("invalid_text", "text is not valid Unicode (half of an emoji?)", "text") from None
    limit = TEXT_BYTES.get(channel)
    if limit is not None and size > limit:
        raise bad_request("invalid_text", f"too long for this channel: at most {limit} bytes "
                          f"(about {limit // 3} Chinese characters)", "text")
    return text


def compose(channel: str, thread: str, peer_id: str, req: OutboundRequest) -> tuple[str, dict[str, Any]]:
    """Pick the platform API and payload for a message to a conversation (pure)."""
    body = _body(channel, req)
    if channel == "oa":
        if req.welcome_code:
            raise bad_request("no_welcome_api", "Official Accounts have no welcome-code API")
        return "oa_custom", {"touser": peer_id, **body}
    if channel == "kf":
        if req.welcome_code:
            return "kf_send_on_event", {"code": req.welcome_code, **body}
        return "kf_send", {"touser": peer_id, "open_kfid": thread, **body}
    if channel == "wecom":
        text = {"content": req.text}
        # both APIs carry an image or a link as an attachment beside the text
        attachments = ([{"msgtype": body["msgtype"], body["msgtype"]: body[body["msgtype"]]}]
                       if req.kind in ("image", "link") else [])
        if req.welcome_code:
            welcome: dict[str, Any] = {"welcome_code": req.welcome_code, "text": text}
            if attachments:
                welcome["attachments"] = attachments
            return "wecom_welcome", welcome
        payload: dict[str, Any] = {"chat_type": "single", "external_userid": [peer_id], "text": text}
        if attachments:
            payload["attachments"] = attachments
        if req.staff_userid:
            payload["sender"] = req.staff_userid
        return "wecom_msg_template", payload
    raise bad_request("unknown_channel", f"cannot send to channel {channel!r}")


# dedup keys of automatic sends, each made by a job from its cause (a bot's reply to an inbound
# message, a queue notice of a handover): a re-run of the job queues the send again
REBUILT_KEYS = ("bot:", "queue:")

# 微信客服's sends take the caller's own message id (``msgid``, up to 32 of [0-9a-zA-Z_-]), stored with the
# payload: a try that timed out here after the platform took it is retried under the same id, and the
# platform's answer and later events (msg_send_fail) name it
KF_APIS = ("kf_send", "kf_send_on_event")

# our code for a send the platform accepted but says will not reach the customer (permanent)
FAIL_LISTED = 2_000_001


class Outbound:
    """Enqueue (durably) and the sender worker."""

    def __init__(self, db: Database, clock: Clock, api: PlatformApi, accounts: AccountRegistry,
                 max_attempts: int = 0, concurrency: int = 16, retry_for: float = 48 * 3600.0):
        self.db = db
        self.clock = clock
        self.api = api
        self.accounts = accounts
        # a transient failure is retried until the message has waited retry_for seconds (or, when
        # max_attempts is set, after that many tries): with a count alone, 8 tries spanned 4 minutes and
        # a platform outage longer than that failed every queued message for good
        self.max_attempts = max_attempts
        self.retry_for = retry_for
        self._insert = postgresql.insert if db.dialect == "postgresql" else sqlite.insert
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopping = False
        self._slots = asyncio.Semaphore(concurrency)
        self._inflight: dict[int, asyncio.Task] = {}  # outbox id -> the task sending it (this process)
        self._claimed: set[int] = set()  # outbox ids this process has claimed and is sending
        self._wake_timer: asyncio.TimerHandle | None = None
        self.stop_timeout = 5.0  # seconds stop() waits for sends that have not started
        # async callbacks(message_id, status, info) after a final status: "sent", or "failed" with
        # info {errcode, errmsg} (the console shows the agent why)
        self.on_status: list[Callable[[int, str, dict[str, Any]], Awaitable[None]]] = []
        # runs automatic sends (bot, system: not an agent's) as background work: the pipeline's
        # trickle, so under a burst of callbacks the sends its jobs cause yield to acknowledging too
        self.trickle: Trickle | None = None

    async def enqueue(self, req: OutboundRequest) -> int | None:
        """Archive the outbound message and queue it, in one transaction. Returns the message id,
        or None when ``dedup_key`` was already queued (idempotent retries of the caller)."""

        # on disk before the caller hears "queued" (an agent's reply, an API caller's message: nothing
        # queues it again); an automatic send keyed by its cause is left to the background commit,
        # since the job that lost its completion with it, re-run, queues it again
        durable = not (req.dedup_key or "").startswith(REBUILT_KEYS)

        async def write() -> int | None:
            async with self.db.write(durable=durable) as conn:
                conv = (await conn.execute(select(conversations).where(
                    conversations.c.id == req.conversation_id))).first()
                if conv is None:
                    raise bad_request("unknown_conversation", f"no conversation {req.conversation_id}")
                api, payload = compose(conv.channel, conv.thread, conv.peer_id, req)
                if api in KF_APIS:  # our id for the message, the same in every try (see KF_APIS)
                    payload["msgid"] = uuid.uuid4().hex
                now = self.clock.now()
                row = (await conn.execute(
                    self._insert(messages).on_conflict_do_nothing(index_elements=["account_id", "dedup_key"])
                    .returning(messages.c.id),
                    {"account_id": req.account_id, "conversation_id": conv.id, "channel": conv.channel,
                     "direction": "out", "kind": req.kind, "peer_id": conv.peer_id, "sender": req.sender,
                     # a caller's key (a console's client_id) made to fit the column, as an inbound one
                     "dedup_key": fit(req.dedup_key, 160) if req.dedup_key else None, "text": req.text,
                     "data": json.dumps({"content": req.text, "api": api, **(req.content or {})}, ensure_ascii=False),
                     "raw": json.dumps(payload, ensure_ascii=False), "sent_at": int(now), "created_at": now,
                     "status": "queued"})).first()
                if row is None:
                    return None
                await conn.execute(outbox.insert().values(
                    message_id=row.id, account_id=req.account_id, api=api,
                    payload=json.dumps(payload, ensure_ascii=False), status="queued", attempts=0,
                    next_attempt_at=now, created_at=now))
                await conn.execute(update(conversations).where(conversations.c.id == conv.id)
                                   .values(last_message_at=now))
                return row.id

        message_id = await retry_busy(write)
        if req.sender.startswith("agent:") or not self._yielding():
            self._wakeup.set()
        else:
            self._wake_soon()
        return message_id

    # -- worker ---------------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="outbound-sender")

    async def stop(self) -> None:
        self._stopping = True
        if self._wake_timer is not None:
            self._wake_timer.cancel()
            self._wake_timer = None
        if self._task:
            await cancel_and_wait(self._task)
        if self._inflight:
            id_of = {task: outbox_id for outbox_id, task in self._inflight.items()}
            _done, pending = await asyncio.wait(list(id_of), timeout=self.stop_timeout)
            # sends still waiting their turn (the trickle under a burst) stay queued for after the
            # restart; a send already claimed is waited for (cut short, it could go out twice)
            waiting = [t for t in pending if id_of[t] not in self._claimed]
            for task in waiting:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _loop(self) -> None:
        # the flag, not only the cancel: 3.11's wait_for can swallow a cancel that races its timeout
        while not self._stopping:
            try:
                wait = await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("outbound pass failed")
                wait = 1.0
            if self._yielding():
                wait = max(wait, WAKE_UNDER_BURST)
            try:
                await asyncio.wait_for(self._wakeup.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass
            self._wakeup.clear()

    async def run_once(self, limit: int = 100) -> float:
        """Claim and start due rows; returns seconds until the next known due row (at most 5)."""
        now = self.clock.now()
        # a customer gets a conversation's messages in the order they were queued: a row waits while an
        # older one to the same conversation is still queued or sending (retrying after an error, say).
        # An agent's reply does not wait for an automatic send that has not started (waiting its turn
        # in the trickle under a burst, or retrying): only for older replies and sends under way.
        # The waiting rows are read once, with their conversation and sender (driven from the outbox's
        # index: joined at the top level, PostgreSQL hashed the whole messages table for each pass,
        # 13 ms with 30,000 messages), and each conversation's head is found once per pass (a GROUP
        # BY), not by a subquery per row: on SQLite that was quadratic, seconds with thousands waiting.
        # A message retried for longer than HOLD_NEXT no longer holds the ones after it (one the platform
        # keeps refusing with a 5xx would hold its conversation for the whole retry window): it goes
        # on retrying on its own.
        waiting = (select(outbox.c.id, outbox.c.status, outbox.c.next_attempt_at, messages.c.conversation_id,
                          messages.c.sender,
                          ((outbox.c.attempts > 0) & (outbox.c.created_at < now - HOLD_NEXT)).label("stuck"))
                   .join(messages, messages.c.id == outbox.c.message_id)
                   .where(outbox.c.status.in_(("queued", "sending"))).cte("waiting"))
        by_agent = waiting.c.sender.like("agent:%")
        holding = ~waiting.c.stuck | (waiting.c.status == "sending")
        heads = select(func.min(waiting.c.id)).where(holding).group_by(waiting.c.conversation_id)
        agent_heads = (select(func.min(waiting.c.id)).where(holding & (by_agent | (waiting.c.status == "sending")))
                       .group_by(waiting.c.conversation_id))
        async with self.db.read() as conn:
            due = (await conn.execute(
                select(waiting.c.id, waiting.c.sender)
                .where((waiting.c.next_attempt_at <= now)
                       & (waiting.c.id.in_(heads) | (by_agent & waiting.c.id.in_(agent_heads))
                          | (waiting.c.stuck & (waiting.c.status == "queued"))))
                # agents' replies first: automatic sends waiting their turn in the trickle (this
                # process has them in flight) filled whole passes and hid a later reply from them
                .order_by(case((by_agent, 0), else_=1), waiting.c.id)
                .limit(limit))).all()
            nxt = (await conn.execute(
                select(outbox.c.next_attempt_at).where(outbox.c.status.in_(("queued", "sending")))
                .where(outbox.c.next_attempt_at > now)
                .order_by(outbox.c.next_attempt_at).limit(1))).scalar()
        for outbox_id, sender in due:
            if outbox_id in self._inflight:
                continue  # already being sent by this process
            by_agent = (sender or "").startswith("agent:")
            task = asyncio.create_task(self._send_one(outbox_id) if by_agent or self.trickle is None
                                       else self.trickle.run(lambda i=outbox_id: self._send_one(i)))
            self._inflight[outbox_id] = task
            task.add_done_callback(lambda _t, i=outbox_id: self._inflight.pop(i, None))
        return 5.0 if nxt is None else max(0.01, min(5.0, nxt - now))

    async def drain(self, timeout: float = 10.0) -> None:
        """Send everything due now, including sends the background worker has in flight (tests, CLI)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            before = len(self._inflight)
            await self.run_once()
            if not self._inflight and not before:
                return
            await asyncio.wait_for(asyncio.gather(*list(self._inflight.values()), return_exceptions=True),
                                   max(0.01, deadline - loop.time()))

    async def _claim(self, outbox_id: int) -> Any:
        now = self.clock.now()
        async with self.db.write() as conn:  # None: another worker has it (or it is no longer due)
            return (await conn.execute(
                update(outbox).where(outbox.c.id == outbox_id)
                .where(outbox.c.status.in_(("queued", "sending"))).where(outbox.c.next_attempt_at <= now)
                .values(status="sending", next_attempt_at=now + LEASE).returning(*outbox.c))).first()

    def _yielding(self) -> bool:
        """Background work gives way to acknowledging callbacks now (a burst)."""
        return self.trickle is not None and self.trickle.yielding()

    async def _send_one(self, outbox_id: int) -> None:
        await self._slot()
        try:
            row = await retry_busy(lambda: self._claim(outbox_id))
            if row is None:
                return  # another worker has it
            self._claimed.add(outbox_id)
            try:
                await self._deliver(row)
            finally:
                self._claimed.discard(outbox_id)
        finally:
            self._slots.release()

    async def _slot(self) -> None:
        """Take a sending slot. An automatic send started at full speed that gets its slot in a burst
        hands it back (an agent's reply may need it) and waits its turn in the trickle: the hundreds
        queued for a slot before a flood went out at full speed during its first seconds."""
        while True:
            await self._slots.acquire()
            if self.trickle is None or not self.trickle.would_wait():
                return
            self._slots.release()
            await self.trickle.give_way()

    async def _keep_lease(self, outbox_id: int) -> None:
        """Push the lease of a send in flight forward until cancelled (the send has ended)."""
        while True:
            await asyncio.sleep(RENEW_EVERY)
            try:
                async with self.db.write() as conn:
                    await conn.execute(update(outbox).where(outbox.c.id == outbox_id)
                                       .where(outbox.c.status == "sending")
                                       .values(next_attempt_at=self.clock.now() + LEASE))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - tried again at the next renewal
                log.warning("renewing the lease of outbox %s failed: %s", outbox_id, exc)

    async def _deliver(self, row: Any) -> None:
        """Send a claimed row and record the outcome."""
        account = await self.accounts.get(row.account_id)
        try:
            if account is None:
                raise PlatformError(2_000_404, f"account {row.account_id} no longer exists")
            lease = asyncio.create_task(self._keep_lease(row.id))
            try:
                result = await self.api.send(account, row.api, json.loads(row.payload))
            finally:
                await cancel_and_wait(lease)
            if result.get("fail_list"):  # WeCom's template send answers 0 and lists who cannot get it
                raise PlatformError(FAIL_LISTED, "the platform cannot deliver to this customer (fail_list: "
                                    "not a contact of the sender, or over the customer's daily limit)")
        except PlatformError as exc:
            await self._failed(row, exc)
            return
        except Exception as exc:  # noqa: BLE001 - anything unexpected is retried, never lost
            await self._failed(row, network_error(exc))
            return
        await self._sent(row, result)

    async def _sent(self, row: Any, result: dict[str, Any]) -> None:
        now = self.clock.now()

        async def write() -> None:
            async with self.db.write() as conn:
                await conn.execute(update(outbox).where(outbox.c.id == row.id).values(
                    status="sent", sent_at=now, attempts=row.attempts + 1, last_errcode=0, last_error=None))
                platform_msgid = str(result.get("msgid") or result.get("msg_id") or "")
                values: dict[str, Any] = {"status": "sent"}
                if platform_msgid:
                    data = (await conn.execute(select(messages.c.data).where(
                        messages.c.id == row.message_id))).scalar() or "{}"
                    values["data"] = json.dumps({**json.loads(data), "platform_msgid": platform_msgid},
                                                ensure_ascii=False)
                await conn.execute(update(messages).where(messages.c.id == row.message_id).values(**values))

        await retry_busy(write)
        self._wake_soon()  # the conversation's next message may have been waiting for this one
        await self._notify(row.message_id, "sent", {})

    async def _failed(self, row: Any, exc: PlatformError) -> None:
        attempts = row.attempts + 1
        now = self.clock.now()
        delay = min(300.0, 2.0 ** min(attempts, 16)) * (0.75 + random.random() * 0.5)
        final = (not exc.transient or now + delay - row.created_at > self.retry_for
                 or 0 < self.max_attempts <= attempts)
        log.warning("send of outbox %s (%s) failed, attempt %d: %s%s", row.id, row.api, attempts, exc,
                    " - giving up" if final else f" - retry in {delay:.1f}s")

        async def write() -> None:
            async with self.db.write() as conn:
                await conn.execute(update(outbox).where(outbox.c.id == row.id).values(
                    status="failed" if final else "queued", attempts=attempts,
                    next_attempt_at=now if final else now + delay,
                    last_errcode=exc.errcode, last_error=exc.errmsg[:2000]))
                if final:
                    await _mark_failed(conn, row.message_id, exc.errcode, exc.errmsg)

        await retry_busy(write)
        if final:
            self._wake_soon()  # the conversation's next message goes now
            await self._notify(row.message_id, "failed", {"errcode": exc.errcode, "errmsg": exc.errmsg})

    def _wake_soon(self) -> None:
        """A pass shortly after a send ends (a conversation's next message waits for it): one pass per
        ``WAKE_AFTER_SEND`` seconds at most, however many sends end meanwhile (each pass reads every
        conversation's head: a pass per send, draining thousands, kept the database busy)."""
        if self._wake_timer is None:
            def wake() -> None:
                self._wake_timer = None
                self._wakeup.set()
            delay = WAKE_UNDER_BURST if self._yielding() else WAKE_AFTER_SEND
            self._wake_timer = asyncio.get_running_loop().call_later(delay, wake)

    async def failed_after_send(self, message_id: int, errcode: int, errmsg: str) -> bool:
        """The platform reported, after accepting it, that a sent message did not reach the customer
        (微信客服 ``msg_send_fail``): mark it failed. False when it was already."""
        async def write() -> bool:
            async with self.db.write() as conn:
                if (await conn.execute(select(messages.c.status).where(messages.c.id == message_id))
                        ).scalar() == "failed":
                    return False
                await _mark_failed(conn, message_id, errcode, errmsg)
                return True

        if not await retry_busy(write):
            return False
        await self._notify(message_id, "failed", {"errcode": errcode, "errmsg": errmsg})
        return True

    async def _notify(self, message_id: int, status: str, info: dict[str, Any]) -> None:
        for hook in self.on_status:
            try:
                await hook(message_id, status, info)
            except Exception:  # noqa: BLE001 - the status is stored; the push is a courtesy
                log.exception("outbound status hook failed")


async def _mark_failed(conn: Any, message_id: int, errcode: int, errmsg: str) -> None:
    """The message's status, and the reason in its data (``error``: what the console shows)."""
    data = (await conn.execute(select(messages.c.data).where(messages.c.id == message_id))).scalar() or "{}"
    error = {"errcode": errcode, "errmsg": errmsg[:500]}
    await conn.execute(update(messages).where(messages.c.id == message_id).values(
        status="failed", data=json.dumps({**json.loads(data), "error": error}, ensure_ascii=False)))
