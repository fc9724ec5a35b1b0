"""Typed configuration from flags, ``HUB_*`` environment variables and an optional TOML file.

Precedence: command-line flag > environment variable > config file > default. Secrets are never
part of ``repr`` so they do not end up in logs.
"""
from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from dataclasses import MISSING, dataclass, field, fields, replace
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from .scale.job_shard import Shard

DEFAULT_DB = "sqlite+aiosqlite:///scrm-hub.db"


@dataclass(frozen=True)
class AccountConfig:
    """A platform account declared in the config file (upserted into the database at start)."""

    id: str
    platform: str  # "wecom" or "oa"
    name: str
    token: str = field(repr=False)
    encoding_aes_key: str = field(repr=False)
    receive_id: str = ""
    secret: str = field(default="", repr=False)
    message_mode: str = "compat"  # an Official Account's: plain | compat | safe (hub/accounts.py MESSAGE_MODES)


@dataclass(frozen=True)
class HubConfig:
    host: str = "127.0.0.1"
    port: int = 8080
    database_url: str = DEFAULT_DB
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    oa_api_base: str = "https://api.weixin.qq.com"
    callback_max_skew: int = 300  # seconds a callback timestamp may differ from now (replay window)
    max_body_bytes: int = 64 * 1024
    writer_max_batch: int = 512
    kf_pull_limit: int = 1000
    # a send failing transiently (network, 5xx, rate limit) is retried with backoff until it has waited
    # this long (the platforms refuse a reply 48 h after the customer's last message anyway) ...
    outbound_retry_hours: float = 48.0
    outbound_max_attempts: int = 0  # ... or, when set, after this many tries
    api_timeout: float = 10.0
    log_level: str = "INFO"
    event_loop: str = "auto"  # serve's loop: auto (uvloop if installed), uvloop, asyncio (hub/event_loop.py)
    api_token: str = field(default="", repr=False)  # bearer token for the JSON API (service access)
    demo: bool = False
    auto_migrate: bool = True  # bring the database schema to head on start (hub/schema.py)
    accounts: tuple[AccountConfig, ...] = ()
    settings: tuple[tuple[str, Any], ...] = ()  # operator settings preset by the config file's [settings]
    redis_url: str = field(default="", repr=False)  # set: Socket.IO and agent event streams shared via Redis
    worker_id: str = ""  # names this process in leases and logs (default: host:pid)
    job_lease: float = 30.0  # seconds a process's claim on pipeline jobs lives unrenewed (PostgreSQL)
    job_shard: str = ""  # "INDEX/COUNT": the conversations whose jobs this process prefers (hub/scale/job_shard.py)
    # the share of each process's event loop that background work (pipeline jobs, automatic sends) keeps
    # while a burst of callbacks saturates it; the rest goes to acknowledging (hub/trickle.py)
    burst_job_share: float = 0.1
    # reverse proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (addresses or CIDR networks)
    trusted_proxies: tuple[str, ...] = ()

    def with_overrides(self, **changes: Any) -> "HubConfig":
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_ENV = {
    "host": "HUB_HOST",
    "port": "HUB_PORT",
    "database_url": "HUB_DATABASE_URL",
    "wecom_api_base": "HUB_WECOM_API_BASE",
    "oa_api_base": "HUB_OA_API_BASE",
    "callback_max_skew": "HUB_CALLBACK_MAX_SKEW",
    "max_body_bytes": "HUB_MAX_BODY_BYTES",
    "writer_max_batch": "HUB_WRITER_MAX_BATCH",
    "outbound_retry_hours": "HUB_OUTBOUND_RETRY_HOURS",
    "outbound_max_attempts": "HUB_OUTBOUND_MAX_ATTEMPTS",
    "api_timeout": "HUB_API_TIMEOUT",
    "log_level": "HUB_LOG_LEVEL",
    "event_loop": "HUB_EVENT_LOOP",
    "api_token": "HUB_API_TOKEN",
    "auto_migrate": "HUB_AUTO_MIGRATE",
    "redis_url": "HUB_REDIS_URL",
    "worker_id": "HUB_WORKER_ID",
    "job_lease": "HUB_JOB_LEASE",
    "job_shard": "HUB_JOB_SHARD",
    "burst_job_share": "HUB_BURST_JOB_SHARE",
    "trusted_proxies": "HUB_TRUSTED_PROXIES",
}


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")
_LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")
# the smallest (and largest) value each number may take; None: no bound
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "port": (0, 65535),  # 0: any free port
    "callback_max_skew": (0, None), "max_body_bytes": (1, None), "writer_max_batch": (1, None),
    "kf_pull_limit": (1, None), "outbound_retry_hours": (0, None), "outbound_max_attempts": (0, None),
    "api_timeout": (0.001, None), "job_lease": (0.001, None), "burst_job_share": (0.001, 1.0),
}


def _coerce(name: str, value: Any, where: str | None = None) -> Any:
    """``value`` (text from the environment, or a TOML value) as field ``name``'s type, checked; a
    ValueError naming ``where`` (the variable, flag or config key) otherwise."""
    kind = {f.name: f.type for f in fields(HubConfig)}[name]
    where = where or name
    text = isinstance(value, str)
    if kind == "int":
        if text:
            try:
                value = int(value.strip())
            except ValueError:
                raise ValueError(f"{where}: {value!r} is not an integer") from None
        elif isinstance(value, float) and not isinstance(value, bool) and value.is_integer():
            value = int(value)
        elif not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{where}: {value!r} is not an integer")
    elif kind == "float":
        if text:
            try:
                value = float(value.strip())
            except ValueError:
                raise ValueError(f"{where}: {value!r} is not a number") from None
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ValueError(f"{where}: {value!r} is not a number")
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"{where}: {value!r} is not a finite number")
    elif kind == "bool":
        if text and value.strip().lower() in _TRUE + _FALSE:
            value = value.strip().lower() in _TRUE
        elif not isinstance(value, bool):
            raise ValueError(f"{where}: {value!r} is not true or false (1/0, true/false, yes/no, on/off)")
    elif kind == "tuple[str, ...]":
        items = value.split(",") if text else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(v, str) for v in items):
            raise ValueError(f"{where}: write a list of text values (or one comma-separated text)")
        value = tuple(v.strip() for v in items if v.strip())
    elif not text:
        raise ValueError(f"{where}: {value!r} must be text (in quotes)")
    if name in _RANGES:
        low, high = _RANGES[name]
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"{where}: {value!r} is out of range (must be {bounds})")
    if name == "log_level":
        value = value.strip().upper()
        if value not in _LOG_LEVELS:
            raise ValueError(f"{where}: unknown log level {value!r} (choose one of {', '.join(_LOG_LEVELS)})")
    if name == "trusted_proxies":
        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{where}: {item!r} is not an IP address or CIDR network") from None
    return value


# the async driver the hub runs each database on
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(url: str) -> str:
    """The database URL on the hub's async driver: ``sqlite:///f.db`` and ``postgres[ql]://...``
    name the database, the hub picks the driver; another driver is refused with a clear error."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(f"not a database URL: {url!r}") from exc
    backend = "postgresql" if parsed.get_backend_name() in ("postgresql", "postgres") else parsed.get_backend_name()
    wanted = ASYNC_DRIVERS.get(backend)
    if wanted is None:
        raise ValueError(f"unsupported database {backend!r}: use sqlite:///FILE or postgresql://USER@HOST/DB")
    if parsed.drivername == wanted:
        return url
    if parsed.drivername not in (backend, "postgres", wanted):
        raise ValueError(f"database driver {parsed.drivername!r} is not supported: use {wanted}:// (or {backend}://)")
    return parsed.set(drivername=wanted).render_as_string(hide_password=False)


def _accounts(entries: Any) -> tuple[AccountConfig, ...]:
    """The file's ``[[accounts]]`` tables; a missing, unknown or non-text key is a ValueError naming
    the entry (it was a TypeError from the dataclass, a traceback for the operator)."""
    if not isinstance(entries, list):
        raise ValueError("accounts: write each account as an [[accounts]] table")
    known = {f.name: f for f in fields(AccountConfig)}
    required = [name for name, f in known.items() if f.default is MISSING]
    out = []
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict):
            raise ValueError(f"[[accounts]] entry {i}: write each account as an [[accounts]] table")
        where = f"[[accounts]] entry {i}" + (f" ({entry['id']})" if isinstance(entry.get("id"), str) else "")
        unknown = sorted(set(entry) - set(known))
        if unknown:
            raise ValueError(f"{where}: unknown key {', '.join(unknown)} (known: {', '.join(known)})")
        missing = [name for name in required if name not in entry]
        if missing:
            raise ValueError(f"{where}: {', '.join(missing)} missing")
        not_text = [name for name, value in entry.items() if not isinstance(value, str)]
        if not_text:
            raise ValueError(f"{where}: {', '.join(not_text)} must be text (in quotes)")
        out.append(AccountConfig(**entry))
    return tuple(out)


_FLAGS = {"database_url": "db", "redis_url": "redis", "event_loop": "loop"}  # a flag named otherwise


def load_config(path: str | None = None, env: dict[str, str] | None = None, **flags: Any) -> HubConfig:
    """Build the config: file (``[hub]`` table and ``[[accounts]]``), then env, then flags."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    accounts: tuple[AccountConfig, ...] = ()
    path = path or env.get("HUB_CONFIG")
    if path:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
        unknown = sorted(set(data) - {"hub", "accounts", "settings"})
        if unknown:
            raise ValueError(f"{path}: unknown table or key {', '.join(unknown)} (known: [hub], [settings], [[accounts]])")
        for table in ("hub", "settings"):
            if not isinstance(data.get(table, {}), dict):
                raise ValueError(f"{path}: {table} must be a table ([{table}])")
        unknown = sorted(set(data.get("hub", {})) - set(_ENV))
        if unknown:
            raise ValueError(f"[hub]: unknown key {', '.join(unknown)} (known: {', '.join(sorted(_ENV))})")
        for key, value in data.get("hub", {}).items():
            values[key] = _coerce(key, value, f"[hub] {key}")
        accounts = _accounts(data.get("accounts", []))
        values["settings"] = tuple(data.get("settings", {}).items())
    for key, var in _ENV.items():
        if var in env and env[var] != "":
            values[key] = _coerce(key, env[var], var)
    for key, value in flags.items():
        if value is not None:
            values[key] = _coerce(key, value, "--" + _FLAGS.get(key, key.replace("_", "-")))
    if "database_url" in values:
        values["database_url"] = async_url(values["database_url"])
    if "job_shard" in values:
        Shard.parse(values["job_shard"])  # a malformed value is an error at start, not a silent no-op
    return HubConfig(accounts=accounts, **values)
