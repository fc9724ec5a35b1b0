"""What both platforms' callback handlers share: checks, decryption, parsing and the durable save.

Every rejection is a clear 4xx with a log line; an accepted message is archived (with its pending
job) before the handler answers ``success``.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from aiohttp import web

from ..accounts import AccountInfo, AccountRegistry
from ..archive.store import ArchiveWriter, ToArchive, job_kind_for
from ..clock import Clock
from ..messages import from_xml_fields
from . import xmlcodec
from .crypto import CryptoError, check_signature

log = logging.getLogger("hub.callbacks")

# callbacks waiting this long for their durable save (a moving average, so one slow save does not
# count) mean acknowledging is falling behind: the pipeline (and the search indexer) back off for
# PRESSURE_HOLD seconds, so acknowledging stays well inside the platforms' 5-second window. Below it
# they run at full speed: a busy but keeping-up hub should push messages to agents at once.
PRESSURE_ACK_S = 0.1
PRESSURE_HOLD = 0.25
PRESSURE_WEIGHT = 0.1  # of the newest save in the moving average
RATE_WINDOW = 0.25  # seconds over which save_rate() counts the callbacks saved



def success() -> web.Response:
    """The platforms' "received, no passive reply" answer."""
    return web.Response(body=b"success", content_type="text/plain")


@dataclass
class CallbackDeps:
    accounts: AccountRegistry
    writer: ArchiveWriter
    clock: Clock
    max_skew: int
    max_body: int
    busy_until: float = 0.0  # loop time until which the pipeline backs off (a burst was seen)
    last_saved: float = 0.0  # loop time of the last callback saved
    save_avg: float = 0.0  # moving average of the seconds a save took
    saved: int = 0  # callbacks saved (acknowledged) since start
    _rate: float = 0.0  # callbacks saved per second over the last full window
    _rate_at: float = 0.0  # loop time that window ended
    _rate_saved: int = 0  # ``saved`` then

    def receiving(self) -> bool:
        """Callbacks are coming in (one was saved in the last quarter second)."""
        return asyncio.get_running_loop().time() - self.last_saved < PRESSURE_HOLD

    def save_rate(self, now: float | None = None) -> float:
        """Callbacks saved per second, over the last RATE_WINDOW or so (0 once they stopped);
        ``now``: the loop's time (given by tests)."""
        if now is None:
            now = asyncio.get_running_loop().time()
        elapsed = now - self._rate_at
        if elapsed >= RATE_WINDOW:
            self._rate = (self.saved - self._rate_saved) / elapsed if elapsed < 2 * RATE_WINDOW else 0.0
            self._rate_at, self._rate_saved = now, self.saved
        return self._rate

    def under_pressure(self) -> bool:
        """Saves were slow in the last quarter second: acknowledging comes first."""
        return asyncio.get_running_loop().time() < self.busy_until


def reject(request: web.Request, status: int, reason: str, account: str = "-") -> web.Response:
    """A logged 4xx; the reason is safe to log (no secrets, no payload)."""
    log.warning("callback rejected: %s %s account=%s from=%s: %s", request.method, request.path, account,
                request.remote, reason)
    return web.Response(status=status, text=reason, content_type="text/plain")


async def account_or_404(deps: CallbackDeps, request: web.Request, platform: str) -> AccountInfo | web.Response:
    account_id = request.match_info["account"]
    account = await deps.accounts.get(account_id)
    if account is None or account.platform != platform:
        return reject(request, 404, "unknown account", account_id)
    return account


def check_timestamp(deps: CallbackDeps, timestamp: str) -> str | None:
    """None when fresh; otherwise why it is refused (replay protection)."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return "missing or invalid timestamp"
    if deps.max_skew and abs(deps.clock.now() - ts) > deps.max_skew:
        return "stale timestamp"
    return None


async def read_body(deps: CallbackDeps, request: web.Request) -> bytes | None:
    """The whole body, or None when it is over the size cap (checked before and while reading).
    A body that has arrived whole (nearly every callback: a few hundred bytes) is taken at once;
    one still arriving is read to its end (``content.read(n)`` answers with what has come so far,
    and a body split across TCP segments was cut and refused as malformed)."""
    if request.content_length is not None and request.content_length > deps.max_body:
        return None
    content = request.content
    if content.is_eof():
        body = content.read_nowait()
    else:
        parts: list[bytes] = []
        size = 0
        while chunk := await content.readany():
            size += len(chunk)
            if size > deps.max_body:
                return None
            parts.append(chunk)
        body = b"".join(parts)
    return None if len(body) > deps.max_body else body


async def accept_encrypted(deps: CallbackDeps, request: web.Request, account: AccountInfo, channel: str,
                           signature: str | None, timestamp: str, nonce: str) -> web.Response:
    """The encrypted-mode POST shared by WeCom and the Official Account's safe mode."""
    body = await read_body(deps, request)
    if body is None:
        return reject(request, 413, "body too large", account.id)
    try:
        envelope = xmlcodec.parse(body, deps.max_body)
    except xmlcodec.XmlError as exc:
        return reject(request, 400, f"bad XML envelope: {exc}", account.id)
    encrypt = envelope.get("Encrypt")
    if not isinstance(encrypt, str) or not encrypt:
        return reject(request, 400, "no Encrypt element", account.id)
    if not check_signature(signature, account.token, timestamp, nonce, encrypt):
        return reject(request, 401, "bad msg_signature", account.id)
    if account.crypto is None:
        return reject(request, 400, "account has no valid EncodingAESKey", account.id)
    try:
        plain = account.crypto.decrypt(encrypt)
    except CryptoError as exc:
        return reject(request, 400, f"cannot decrypt: {exc}", account.id)
    return await accept_plain(deps, request, account, channel, plain)


async def accept_plain(deps: CallbackDeps, request: web.Request, account: AccountInfo, channel: str,
                       xml: bytes) -> web.Response:
    """Parse a (decrypted or plaintext) message, archive it durably, answer ``success``."""
    try:
        fields = xmlcodec.parse(xml, deps.max_body)
    except xmlcodec.XmlTooLarge as exc:
        return reject(request, 413, str(exc), account.id)
    except xmlcodec.XmlError as exc:
        return reject(request, 400, f"bad message XML: {exc}", account.id)
    msg = from_xml_fields(channel, fields, xmlcodec.body_text(xml))
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        await deps.writer.save_one(ToArchive(account.id, msg, job_kind_for(msg)))
    except Exception as exc:  # noqa: BLE001 - not stored, so not acknowledged: the platform retries
        log.error("archive unavailable, not acknowledging %s from %s: %s", msg.dedup_key, account.id, exc)
        return web.Response(status=503, text="archive unavailable, retry", content_type="text/plain")
    finally:
        now = deps.last_saved = loop.time()
        deps.save_avg += PRESSURE_WEIGHT * (now - started - deps.save_avg)
        if deps.save_avg > PRESSURE_ACK_S:
            deps.busy_until = now + PRESSURE_HOLD
    deps.saved += 1
    return success()
