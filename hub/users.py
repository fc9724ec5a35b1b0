"""Users and authentication: scrypt password hashes, login sessions (cookie or bearer token), roles.

The session secret is random; the database keeps only its sha256, so a leaked table does not
log anyone in. Failed logins are rate-limited per username and per address.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update

from .clock import Clock
from .db import Database
from .errors import HubError, bad_request
from .models import LoginSession, SkillGroup, User

users = User.__table__
logins = LoginSession.__table__
skill_groups = SkillGroup.__table__

ROLES = ("agent", "supervisor", "admin")
STATUSES = ("online", "busy", "away", "offline")
SESSION_TTL = 12 * 3600
USERNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{2,64}$")
_SCRYPT = {"n": 2 ** 14, "r": 8, "p": 1}


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "scrypt${n}${r}${p}${salt}${digest}".format(
        **_SCRYPT, salt=base64.b64encode(salt).decode(), digest=base64.b64encode(digest).decode())


def verify_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32, n=int(n), r=int(r), p=int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, base64.b64decode(digest))


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """A hash no password is checked against for real (made once, on the first unknown name)."""
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class UserInfo:
    id: int
    username: str
    display_name: str
    role: str
    groups: tuple[str, ...]
    cap: int
    status: str = "offline"
    disabled: bool = False

    @property
    def is_supervisor(self) -> bool:
        return self.role in ("supervisor", "admin")

    def public(self) -> dict:
        return {"id": self.id, "username": self.username, "display_name": self.display_name, "role": self.role,
                "groups": list(self.groups), "cap": self.cap, "status": self.status, "disabled": self.disabled}


def _info(row) -> UserInfo:  # noqa: ANN001
    return UserInfo(row.id, row.username, row.display_name, row.role, tuple(json.loads(row.groups or "[]")),
                    row.cap, row.status, bool(row.disabled))


NAME_MAX = 64  # users.display_name and skill_groups.name are String(64)


def validate_user(username: str, role: str, cap: int, groups: list[str], display_name: str = "") -> list[str]:
    """A 400 naming the first bad field; returns the groups trimmed, each once (" presales " was
    stored as a group of its own, which no presales session ever reached)."""
    if not USERNAME_RE.match(username or ""):
        raise bad_request("invalid_username", "2-64 letters, digits, '.', '_' or '-'", "username")
    if role not in ROLES:
        raise bad_request("invalid_role", f"role must be one of {', '.join(ROLES)}", "role")
    if isinstance(cap, bool) or not isinstance(cap, int) or not 0 <= cap <= 100:
        raise bad_request("invalid_cap", "cap must be an integer 0..100", "cap")
    if not isinstance(groups, list) or not all(isinstance(g, str) and 0 < len(g.strip()) <= NAME_MAX for g in groups):
        raise bad_request("invalid_groups", f"groups must be a list of names of 1 to {NAME_MAX} characters", "groups")
    if not isinstance(display_name, str) or len(display_name.strip()) > NAME_MAX:
        raise bad_request("invalid_display_name", f"display_name: at most {NAME_MAX} characters", "display_name")
    return list(dict.fromkeys(g.strip() for g in groups))


async def add_user(db: Database, clock: Clock, *, username: str, password: str, role: str = "agent",
                   display_name: str = "", groups: list[str] | None = None, cap: int = 5) -> UserInfo:
    groups = validate_user(username, role, cap, groups or [], display_name)
    display_name = display_name.strip()
    if len(password or "") < 8:
        raise bad_request("weak_password", "at least 8 characters", "password")
    async with db.write() as conn:
        if (await conn.execute(select(users.c.id).where(users.c.username == username))).first():
            raise HubError(409, "username_taken", f"user {username} exists", "username")
        for g in groups:
            if not (await conn.execute(select(skill_groups.c.name).where(skill_groups.c.name == g))).first():
                await conn.execute(skill_groups.insert().values(name=g, display_name=g))
        res = await conn.execute(users.insert().values(
            username=username, display_name=display_name or username, password_hash=hash_password(password),
            role=role, groups=json.dumps(groups, ensure_ascii=False), cap=cap, status="offline", disabled=False,
            created_at=clock.now()))
        user_id = res.inserted_primary_key[0]
    return UserInfo(user_id, username, display_name or username, role, tuple(groups), cap)


async def list_users(db: Database) -> list[UserInfo]:
    async with db.read() as conn:
        return [_info(r) for r in (await conn.execute(select(users).order_by(users.c.id))).all()]


async def users_for_update(conn: Any) -> list[UserInfo]:
    """Every user, read in the caller's write transaction and locked (PostgreSQL: FOR UPDATE, id order) so
    a change computed from their ``groups`` lists cannot overwrite another change made meanwhile."""
    return [_info(r) for r in (await conn.execute(select(users).order_by(users.c.id).with_for_update())).all()]


async def get_user(db: Database, user_id: int) -> UserInfo | None:
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
    return _info(row) if row else None


async def set_status(db: Database, user_id: int, status: str) -> None:
    if status not in STATUSES:
        raise bad_request("invalid_status", f"status must be one of {', '.join(STATUSES)}", "status")
    async with db.write() as conn:
        await conn.execute(update(users).where(users.c.id == user_id).values(status=status))


@dataclass
class LoginLimiter:
    """At most ``limit`` failed logins per key (username, address) in ``window`` seconds."""

    clock: Clock
    limit: int = 10
    window: float = 300.0
    _fails: dict[str, deque] = field(default_factory=dict)

    def blocked(self, *keys: str) -> bool:
        now = self.clock.now()
        for key in keys:
            q = self._fails.get(key)
            while q and q[0] < now - self.window:
                q.popleft()
            if q and len(q) >= self.limit:
                return True
        return False

    def failed(self, *keys: str) -> None:
        now = self.clock.now()
        if len(self._fails) > 10_000:  # a spray of addresses or names: forget what is out of the window
            self._fails = {k: q for k, q in self._fails.items() if q and q[-1] >= now - self.window}
        for key in keys:
            self._fails.setdefault(key, deque()).append(now)

    def succeeded(self, *keys: str) -> None:
        """Take back the attempt ``failed`` counted in advance for a login that turned out right."""
        for key in keys:
            q = self._fails.get(key)
            if q:
                q.pop()


async def login(db: Database, clock: Clock, limiter: LoginLimiter, username: str, password: str,
                remote: str = "") -> tuple[str, UserInfo]:
    """Check the password; returns (session token, user). Raises 401 / 429."""
    keys = (f"u:{username}", f"a:{remote}")
    if limiter.blocked(*keys):
        raise HubError(429, "too_many_attempts", "too many failed logins, try again later")
    # counted before the first await and taken back on success: parallel guesses each count
    limiter.failed(*keys)
    async with db.read() as conn:
        row = (await conn.execute(select(users).where(users.c.username == username))).first()
    # an unknown or disabled name costs the same scrypt as a wrong password: answering it at once
    # told an attacker by the time which usernames exist
    stored = row.password_hash if row is not None and not row.disabled else _dummy_hash()
    if not verify_password(password, stored) or row is None or row.disabled:
        raise HubError(401, "bad_credentials", "wrong username or password")
    limiter.succeeded(*keys)
    token = secrets.token_urlsafe(32)
    now = clock.now()
    async with db.write() as conn:
        await conn.execute(logins.insert().values(token_hash=token_hash(token), user_id=row.id, created_at=now,
                                                  expires_at=now + SESSION_TTL, remote=remote[:64]))
    return token, _info(row)


async def user_for_token(db: Database, clock: Clock, token: str | None) -> UserInfo | None:
    if not token:
        return None
    async with db.read() as conn:
        row = (await conn.execute(
            select(users).join(logins, logins.c.user_id == users.c.id)
            .where(logins.c.token_hash == token_hash(token)).where(logins.c.expires_at > clock.now()))).first()
    if row is None or row.disabled:
        return None
    return _info(row)


async def end_logins(conn: Any, user_id: int, keep: str | None = None) -> None:
    """End the user's logins (a password reset: a stolen session must not outlive it), all but the
    one whose token is ``keep`` (the admin resetting their own password stays logged in)."""
    stmt = delete(logins).where(logins.c.user_id == user_id)
    if keep:
        stmt = stmt.where(logins.c.token_hash != token_hash(keep))
    await conn.execute(stmt)


async def logout(db: Database, token: str) -> None:
    async with db.write() as conn:
        await conn.execute(delete(logins).where(logins.c.token_hash == token_hash(token)))
