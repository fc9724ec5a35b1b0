"""Platform secrets at rest: each account's Token, EncodingAESKey and API secret are stored encrypted
(Fernet: AES-128-CBC + HMAC-SHA256) in ``account_secrets``; the ``accounts`` row keeps none in clear.

The key comes from ``HUB_SECRET_KEY`` (any string of 16+ characters; several comma-separated: the
first encrypts, all decrypt, for a rolling rotation). Each ciphertext carries the id of its key
(``v1:<key id>:<token>``, key id = first 8 hex of a sha256 of the key), so a wrong or missing key is
named in the error instead of producing garbage. ``python -m hub secrets rotate --old K1 --new K2``
re-encrypts every account (one transaction); restart the hub with ``HUB_SECRET_KEY=K2``.

Without ``HUB_SECRET_KEY`` (development, demo) the hub does not fall back to plaintext: it uses a
random key kept in a file — ``HUB_SECRET_KEY_FILE``, default ``<sqlite file>.key`` next to a SQLite
database, ``~/.local/share/scrm-hub/secret.key`` otherwise — created with mode 0600 and a warning at
every start. A database backup then holds no usable secret unless the key file is copied too.
"""
from __future__ import annotations

import base64
import hashlib
import logging
import os
import pathlib
import secrets as _random
from dataclasses import dataclass
from typing import Any, Mapping

from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import select, update

from ..models import Account, AccountSecret

log = logging.getLogger(__name__)
accounts_t = Account.__table__
sealed_t = AccountSecret.__table__
PREFIX = "v1"
MIN_KEY_LEN = 16


class SecretKeyError(Exception):
    """A ciphertext this process has no key for, or a malformed key."""


def key_id(key: str) -> str:
    return hashlib.sha256(b"scrm-hub-secret-key:" + key.encode()).hexdigest()[:8]


def _fernet(key: str) -> Fernet:
    if len(key) < MIN_KEY_LEN:
        raise SecretKeyError(f"a secret key needs at least {MIN_KEY_LEN} characters")
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(b"scrm-hub-fernet:" + key.encode()).digest()))


@dataclass(frozen=True)
class KeyRing:
    """The current key (encrypts) and older ones (decrypt only)."""

    keys: tuple[tuple[str, Fernet], ...]
    source: str = "env"

    @classmethod
    def of(cls, *keys: str, source: str = "env") -> "KeyRing":
        keys = tuple(k.strip() for k in keys if k and k.strip())
        if not keys:
            raise SecretKeyError("no secret key given")
        return cls(tuple((key_id(k), _fernet(k)) for k in keys), source)

    @property
    def current_id(self) -> str:
        return self.keys[0][0]

    def seal(self, plain: str) -> str:
        kid, f = self.keys[0]
        return f"{PREFIX}:{kid}:{f.encrypt(plain.encode()).decode()}"

    def open(self, sealed: str) -> str:
        try:
            prefix, kid, token = sealed.split(":", 2)
        except ValueError:
            raise SecretKeyError("not a sealed secret") from None
        if prefix != PREFIX:
            raise SecretKeyError(f"unknown secret format {prefix!r}")
        for k, f in self.keys:
            if k == kid:
                try:
                    return f.decrypt(token.encode()).decode()
                except InvalidToken:
                    raise SecretKeyError(f"secret under key {kid} does not decrypt (corrupt?)") from None
        raise SecretKeyError(f"secret encrypted with key {kid}, which HUB_SECRET_KEY does not hold "
                             f"(have: {', '.join(k for k, _ in self.keys)})")


def default_key_file(sqlite_path: str | None) -> pathlib.Path:
    if sqlite_path:
        return pathlib.Path(sqlite_path + ".key")
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return pathlib.Path(base) / "scrm-hub" / "secret.key"


def ring_from_env(env: Mapping[str, str], sqlite_path: str | None) -> KeyRing:
    """``HUB_SECRET_KEY`` (comma-separated, current first), else the key file (made if missing)."""
    value = env.get("HUB_SECRET_KEY", "").strip()
    if value:
        return KeyRing.of(*value.split(","), source="env")
    path = pathlib.Path(env.get("HUB_SECRET_KEY_FILE") or default_key_file(sqlite_path))
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(_random.token_urlsafe(32) + "\n")
        log.warning("HUB_SECRET_KEY is not set: generated a secret key into %s (mode 0600); set "
                    "HUB_SECRET_KEY in production and keep it out of database backups", path)
    keys = [k for k in path.read_text().split() if k]
    return KeyRing.of(*keys, source=f"file:{path}")


_RINGS: dict[tuple, KeyRing] = {}


def ring_for(db: Any) -> KeyRing:
    """The process's key ring for database ``db`` (cached per environment and database)."""
    sqlite_path = getattr(db, "sqlite_path", None)
    cache_key = (os.environ.get("HUB_SECRET_KEY", ""), os.environ.get("HUB_SECRET_KEY_FILE", ""), sqlite_path)
    ring = _RINGS.get(cache_key)
    if ring is None:
        ring = _RINGS[cache_key] = ring_from_env(os.environ, sqlite_path)
        if ring.source != "env":
            log.warning("account secrets are encrypted with a key kept in %s; set HUB_SECRET_KEY for production",
                        ring.source[5:])
    return ring


# -- the account_secrets table ---------------------------------------------------------------------------
async def store(conn: Any, ring: KeyRing, account_id: str, now: float, *, token: str, encoding_aes_key: str,
                secret: str) -> None:
    """Seal one account's secrets (inside the caller's write transaction)."""
    values = dict(key_id=ring.current_id, token=ring.seal(token), encoding_aes_key=ring.seal(encoding_aes_key),
                  secret=ring.seal(secret or ""), updated_at=now)
    res = await conn.execute(update(sealed_t).where(sealed_t.c.account_id == account_id).values(**values))
    if not res.rowcount:
        await conn.execute(sealed_t.insert().values(account_id=account_id, **values))


async def load(conn: Any, ring: KeyRing) -> dict[str, tuple[str, str, str] | SecretKeyError]:
    """account id -> (token, encoding_aes_key, secret) in clear, or the error opening them."""
    out: dict[str, Any] = {}
    for r in (await conn.execute(select(sealed_t))).all():
        try:
            out[r.account_id] = (ring.open(r.token), ring.open(r.encoding_aes_key), ring.open(r.secret))
        except SecretKeyError as exc:
            out[r.account_id] = exc
    return out


async def seal_plaintext(conn: Any, ring: KeyRing, now: float) -> int:
    """Accounts still holding clear secrets (written before encryption at rest): sealed and blanked."""
    rows = (await conn.execute(select(accounts_t).where(
        (accounts_t.c.token != "") | (accounts_t.c.encoding_aes_key != "") | (accounts_t.c.secret != "")))).all()
    for r in rows:
        await store(conn, ring, r.id, now, token=r.token, encoding_aes_key=r.encoding_aes_key, secret=r.secret)
        await conn.execute(update(accounts_t).where(accounts_t.c.id == r.id)
                           .values(token="", encoding_aes_key="", secret=""))
    return len(rows)


async def rotate(db: Any, old: KeyRing, new: KeyRing, now: float, counts: dict[str, int] | None = None) -> int:
    """Re-encrypt every account's secrets, and the order sources' (``order_secrets``), from ``old``
    (any of its keys) to ``new``'s current key, in one transaction (all or nothing). Returns the
    number of accounts; ``counts`` (if given) gets ``accounts`` and ``order_secrets``."""
    from . import order_secrets
    async with db.write(durable=True) as conn:
        rows = (await conn.execute(select(sealed_t))).all()
        opened = []
        for r in rows:
            try:
                opened.append((r.account_id, old.open(r.token), old.open(r.encoding_aes_key), old.open(r.secret)))
            except SecretKeyError as exc:
                if r.key_id == new.current_id:
                    continue  # already under the new key (a rotation re-run)
                raise SecretKeyError(f"account {r.account_id}: {exc}") from None
        for account_id, token, aes, secret in opened:
            await store(conn, new, account_id, now, token=token, encoding_aes_key=aes, secret=secret)
        plain = await seal_plaintext(conn, new, now)
        try:
            n_orders = await order_secrets.rotate_stored(conn, old, new, now)
        except SecretKeyError as exc:
            raise SecretKeyError(f"order sources: {exc}") from None
    if counts is not None:
        counts.update(accounts=len(opened) + plain, order_secrets=n_orders)
    return len(opened) + plain
