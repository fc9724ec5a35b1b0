"""Platform accounts: the database rows and an in-memory registry the callback path reads.

The registry is a cache in front of the ``accounts`` table: a miss reloads it, and it reloads
at most every ``ttl`` seconds, so an account added by the CLI or another process is served
without a restart.
"""
from __future__ import annotations

import asyncio
import logging
import re
import secrets
import string
from dataclasses import dataclass, field

from sqlalchemy import select

from .callbacks.crypto import CryptoError, MessageCrypto, aes_key, generate_encoding_aes_key
from .clock import Clock
from .config import AccountConfig
from .db import Database
from .errors import bad_request
from .models import Account
from .privacy import secrets as sealed

log = logging.getLogger(__name__)

PLATFORMS = {"wecom": "/callbacks/wecom/{id}", "oa": "/callbacks/oa/{id}"}
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
# the platforms take a Token of 3-32 English letters or digits (str.isalnum() also passes 令牌 or full-width digits)
TOKEN_RE = re.compile(r"^[A-Za-z0-9]{3,32}$")
RECEIVE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # CorpID / AppID
NAME_MAX = 64
SECRET_MAX = 128
# an Official Account's 消息加解密方式, as set in its console: 明文 (plain), 兼容 (compat: both) or 安全
# (safe: encrypted only). In plaintext the signature covers no part of the body, so a safe-mode account
# refuses unencrypted posts: one signed query from a log would otherwise carry any forged message.
# WeCom sends encrypted messages only.
MESSAGE_MODES = ("plain", "compat", "safe")


@dataclass(frozen=True)
class AccountInfo:
    id: str
    platform: str
    name: str
    token: str = field(repr=False)
    encoding_aes_key: str = field(repr=False)
    receive_id: str
    secret: str = field(repr=False)
    crypto: MessageCrypto | None = field(repr=False, compare=False, default=None)
    message_mode: str = "compat"

    @property
    def callback_path(self) -> str:
        return PLATFORMS[self.platform].format(id=self.id)

    def public(self, base_url: str = "", reveal: bool = True) -> dict:
        out = {"id": self.id, "platform": self.platform, "name": self.name, "receive_id": self.receive_id,
               "callback_path": self.callback_path, "callback_url": base_url.rstrip("/") + self.callback_path,
               "message_mode": self.message_mode}
        if reveal:
            out.update(token=self.token, encoding_aes_key=self.encoding_aes_key, secret=self.secret)
        return out


def _info(row: Account) -> AccountInfo:
    try:
        crypto = MessageCrypto(row.encoding_aes_key, row.receive_id) if row.encoding_aes_key else None
    except CryptoError:
        crypto = None
    return AccountInfo(row.id, row.platform, row.name, row.token, row.encoding_aes_key, row.receive_id,
                       row.secret, crypto, row.message_mode or "compat")


def generate_token(length: int = 32) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(length))


def validate(platform: str, id: str, token: str, encoding_aes_key: str, receive_id: str, name: str = "",
             secret: str = "", message_mode: str = "compat") -> None:
    """What every way in (the console's API, ``accounts add``, the config file) must hold to be stored."""
    if platform not in PLATFORMS:
        raise bad_request("invalid_platform", "platform must be 'wecom' or 'oa'", "platform")
    if message_mode not in MESSAGE_MODES:
        raise bad_request("invalid_message_mode", "message_mode must be plain, compat or safe", "message_mode")
    if not ID_RE.match(id):
        raise bad_request("invalid_id", "id: letters, digits, '-' and '_', at most 64", "id")
    if len(name) > NAME_MAX:
        raise bad_request("invalid_name", f"name: at most {NAME_MAX} characters", "name")
    if len(secret) > SECRET_MAX:
        raise bad_request("invalid_secret", f"secret: at most {SECRET_MAX} characters", "secret")
    if not TOKEN_RE.match(token):
        raise bad_request("invalid_token", "Token: 3 to 32 English letters or digits", "token")
    try:
        aes_key(encoding_aes_key)
    except CryptoError as exc:
        raise bad_request("invalid_encoding_aes_key", str(exc), "encoding_aes_key") from exc
    if not receive_id:
        label = "CorpID" if platform == "wecom" else "AppID"
        raise bad_request("invalid_receive_id", f"{label} is required", "receive_id")
    if not RECEIVE_ID_RE.match(receive_id):
        raise bad_request("invalid_receive_id", "CorpID / AppID: letters, digits, '-' and '_'", "receive_id")


async def upsert_account(db: Database, clock: Clock, *, id: str, platform: str, name: str = "",
                         token: str | None = None, encoding_aes_key: str | None = None,
                         receive_id: str, secret: str = "", message_mode: str = "compat") -> AccountInfo:
    """Create or replace an account; Token and EncodingAESKey are generated when not given (None); a
    blank one is refused, not replaced by a random one the platform does not know."""
    token = generate_token() if token is None else token
    encoding_aes_key = generate_encoding_aes_key() if encoding_aes_key is None else encoding_aes_key
    validate(platform, id, token, encoding_aes_key, receive_id, name or id, secret, message_mode)
    now = clock.now()
    ring = sealed.ring_for(db)
    async with db.write() as conn:
        existing = (await conn.execute(select(Account.__table__.c.id).where(Account.__table__.c.id == id))).first()
        # secrets at rest: the row keeps none in clear, account_secrets holds them encrypted (hub/privacy)
        values = dict(platform=platform, name=name or id, token="", encoding_aes_key="",
                      receive_id=receive_id, secret="", message_mode=message_mode, updated_at=now)
        if existing:
            await conn.execute(Account.__table__.update().where(Account.__table__.c.id == id).values(**values))
        else:
            await conn.execute(Account.__table__.insert().values(id=id, created_at=now, **values))
        await sealed.store(conn, ring, id, now, token=token, encoding_aes_key=encoding_aes_key, secret=secret)
    return AccountInfo(id, platform, name or id, token, encoding_aes_key, receive_id, secret,
                       MessageCrypto(encoding_aes_key, receive_id), message_mode)


async def list_accounts(db: Database) -> list[AccountInfo]:
    """Every account with its secrets decrypted; one whose secrets this process cannot decrypt
    (HUB_SECRET_KEY lacks their key) is left out with an error in the log."""
    async with db.read() as conn:
        rows = (await conn.execute(select(Account).order_by(Account.id))).all()
        opened = await sealed.load(conn, sealed.ring_for(db))
    out = []
    for r in rows:
        values = dict(r._mapping)
        clear = opened.get(values["id"])
        if isinstance(clear, sealed.SecretKeyError):
            log.error("account %s is not served: its secrets do not decrypt: %s", values["id"], clear)
            continue
        if clear is not None:
            values["token"], values["encoding_aes_key"], values["secret"] = clear
        out.append(_info(Account(**values)))
    return out


async def upsert_configured(db: Database, clock: Clock, accounts: tuple[AccountConfig, ...]) -> None:
    for a in accounts:
        await upsert_account(db, clock, id=a.id, platform=a.platform, name=a.name, token=a.token,
                             encoding_aes_key=a.encoding_aes_key, receive_id=a.receive_id, secret=a.secret,
                             message_mode=a.message_mode)


class AccountRegistry:
    """Accounts by id for the hot path; reloads on a miss and every ``ttl`` seconds."""

    def __init__(self, db: Database, clock: Clock, ttl: float = 5.0):
        self.db = db
        self.clock = clock
        self.ttl = ttl
        self._accounts: dict[str, AccountInfo] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def reload(self) -> None:
        async with self._lock:
            self._accounts = {a.id: a for a in await list_accounts(self.db)}
            self._loaded_at = self.clock.now()

    async def get(self, account_id: str) -> AccountInfo | None:
        age = self.clock.now() - self._loaded_at
        account = self._accounts.get(account_id)
        # a miss reloads at most once a second, so unknown ids cannot hammer the database
        if age > self.ttl or (account is None and age > 1.0):
            if not self._lock.locked():
                await self.reload()
            else:
                async with self._lock:
                    pass
            account = self._accounts.get(account_id)
        return account
