"""Order-platform secrets at rest: the credentials inside the ``order_sources`` setting (see
hub/orders/sync.py) are stored sealed with the same key ring as the accounts' (hub/privacy/secrets.py).

Sealed are the top-level ``webhook_secrets`` (a string or a list) and, in every platform entry (an
object or a list of them), ``client_secret``, ``app_secret``, ``access_token``, ``session`` and
``refresh_token``. Ids (``app_key``, ``client_id``, ``shop_id``), URLs and options stay readable.

* ``OrderSync.config()`` reads the setting through ``opened``: sealed values are opened (memoised
  per stored value, so a webhook costs no decryption); a value no key opens becomes "" (that source
  then fails its signature check and the log names the missing key id, never the ciphertext).
* Secrets written in clear (a config-file preset, ``settings.set`` from code) are sealed at start
  (``seal_stored`` in the privacy wiring) and, at run time, by a background pass the first time the
  order sync sees them.
* ``python -m hub secrets rotate`` re-seals them with the accounts, in the same transaction.
* ``redacted`` gives the setting with every secret as ``***``, for anything shown or logged.
"""
from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Callable

from sqlalchemy import select, update

from ..models import Setting
from .secrets import PREFIX, KeyRing, SecretKeyError, ring_for

log = logging.getLogger(__name__)
settings_t = Setting.__table__
SETTING = "order_sources"
TOP_SECRETS = ("webhook_secrets",)
ENTRY_SECRETS = ("client_secret", "app_secret", "access_token", "session", "refresh_token")
MASK = "***"


def is_sealed(value: str) -> bool:
    return value.startswith(PREFIX + ":") and value.count(":") >= 2


def _map(cfg: Any, fn: Callable[[str], str]) -> Any:
    """A copy of ``cfg`` with ``fn`` applied to every secret string (non-empty); other values as they are."""
    if not isinstance(cfg, dict):
        return cfg

    def one(v: Any) -> Any:
        return fn(v) if isinstance(v, str) and v else v

    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if key in TOP_SECRETS:
            out[key] = [one(v) for v in value] if isinstance(value, list) else one(value)
        elif isinstance(value, dict):
            out[key] = {k: one(v) if k in ENTRY_SECRETS else v for k, v in value.items()}
        elif isinstance(value, list):
            out[key] = [{k: one(v) if k in ENTRY_SECRETS else v for k, v in e.items()} if isinstance(e, dict) else e
                        for e in value]
        else:
            out[key] = value
    return out


def secrets_of(cfg: Any) -> list[str]:
    """Every secret string in ``cfg`` (sealed or not)."""
    found: list[str] = []
    _map(cfg, lambda v: found.append(v) or v)
    return found


def plaintext_count(cfg: Any) -> int:
    return sum(1 for v in secrets_of(cfg) if not is_sealed(v))


def seal_config(ring: KeyRing, cfg: Any) -> Any:
    """Every clear secret sealed under the ring's current key (sealed ones kept)."""
    return _map(cfg, lambda v: v if is_sealed(v) else ring.seal(v))


def open_config(ring: KeyRing, cfg: Any) -> Any:
    """Every sealed secret opened; one no key opens becomes "" (logged by key id)."""
    def one(v: str) -> str:
        if not is_sealed(v):
            return v
        try:
            return ring.open(v)
        except SecretKeyError as exc:
            log.error("an order-source secret cannot be opened: %s", exc)
            return ""
    return _map(cfg, one)


def reseal_config(old: KeyRing, new: KeyRing, cfg: Any) -> Any:
    """Sealed under ``new``'s current key: opened with ``old`` (already under ``new``: kept)."""
    def one(v: str) -> str:
        if not is_sealed(v):
            return new.seal(v)
        if v.split(":", 2)[1] == new.current_id:
            return v
        return new.seal(old.open(v))
    return _map(cfg, one)


def redacted(cfg: Any) -> Any:
    return _map(cfg, lambda v: MASK)


# -- the stored setting ----------------------------------------------------------------------------------
async def _rewrite(conn: Any, now: float, change: Callable[[Any], Any]) -> int:
    """Apply ``change`` to every stored ``order_sources`` (each scope); returns the secrets it touched."""
    touched = 0
    for row in (await conn.execute(select(settings_t).where(settings_t.c.key == SETTING))).all():
        try:
            value = json.loads(row.value)
        except ValueError:
            continue
        n = len(secrets_of(value))
        new = change(value)
        if n and new != value:
            await conn.execute(update(settings_t).where((settings_t.c.scope == row.scope) & (settings_t.c.key == SETTING))
                               .values(value=json.dumps(new, ensure_ascii=False), updated_at=now))
            touched += n
    return touched


async def seal_stored(conn: Any, ring: KeyRing, now: float) -> int:
    """Clear secrets in the stored setting sealed (inside the caller's write transaction); returns how many."""
    count = 0

    def change(value: Any) -> Any:
        nonlocal count
        count += plaintext_count(value)
        return seal_config(ring, value)

    await _rewrite(conn, now, change)
    return count


async def rotate_stored(conn: Any, old: KeyRing, new: KeyRing, now: float) -> int:
    """Every stored secret re-sealed under ``new`` (inside the caller's transaction); returns how many."""
    return await _rewrite(conn, now, lambda value: reseal_config(old, new, value))


# -- reading, for OrderSync.config() ---------------------------------------------------------------------
_OPENED: dict[tuple[int, str], tuple[Any, Any]] = {}  # (id(stored value), key id) -> (stored value, opened)
_SEALING: dict[int, asyncio.Task] = {}  # id(db) -> a running background seal


def opened(db: Any, clock: Any, value: Any) -> Any:
    """The ``order_sources`` value with its secrets in clear, for use in memory only."""
    if not isinstance(value, dict):
        return {}
    ring = ring_for(db)
    key = (id(value), ring.current_id)
    hit = _OPENED.get(key)
    if hit is not None and hit[0] is value:
        return hit[1]
    result = open_config(ring, value)
    if len(_OPENED) > 64:
        _OPENED.clear()
    _OPENED[key] = (value, result)
    if plaintext_count(value):
        _seal_soon(db, clock, ring)
    return result


def _seal_soon(db: Any, clock: Any, ring: KeyRing) -> None:
    running = _SEALING.get(id(db))
    if running is not None and not running.done():
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return

    async def seal() -> None:
        from ..db import retry_busy

        async def once() -> int:
            async with db.write() as conn:
                return await seal_stored(conn, ring, clock.now())
        try:
            n = await retry_busy(once)
            if n:
                log.warning("encrypted %d order-source secret(s) stored in clear", n)
        except Exception as exc:  # noqa: BLE001 - retried at the next start
            log.warning("sealing order-source secrets failed: %s", type(exc).__name__)

    _SEALING[id(db)] = loop.create_task(seal(), name="seal-order-secrets")
