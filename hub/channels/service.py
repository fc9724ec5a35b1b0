"""Channel codes: create (registered on the platform first: nothing is stored when it refuses),
update, list, get, disable; the cached lookup the pipeline step uses for every scan/add event; and
the staff schedule of WeCom contact ways (``update_contact_way`` when the users on duty change; a
one-person way given more staff is replaced by a multi-person way with the same state)."""
from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from ..accounts import AccountInfo, AccountRegistry
from ..clock import Clock
from ..db import Database, retry_busy
from ..errors import HubError, bad_request, not_found
from ..models import User
from ..models.channels import ChannelCode
from ..outbound.api import PlatformApi, PlatformError
from . import qr, rules

log = logging.getLogger(__name__)
codes_t = ChannelCode.__table__
users_t = User.__table__

ADD_CONTACT_WAY = "/cgi-bin/externalcontact/add_contact_way"
UPDATE_CONTACT_WAY = "/cgi-bin/externalcontact/update_contact_way"
GET_CONTACT_WAY = "/cgi-bin/externalcontact/get_contact_way"
DEL_CONTACT_WAY = "/cgi-bin/externalcontact/del_contact_way"
OA_QRCODE = "/cgi-bin/qrcode/create"
KF_CONTACT_WAY = "/cgi-bin/kf/add_contact_way"
JSON_FIELDS = ("tags", "staff", "platform_users")


class PlatformRejected(HubError):
    """The platform refused (or could not be reached): 502 naming its errcode."""

    def __init__(self, what: str, exc: PlatformError):
        super().__init__(502, "platform_error", f"{what} failed: the platform answered errcode {exc.errcode}: "
                                                f"{exc.errmsg}")
        self.errcode = exc.errcode

    def as_json(self) -> dict:
        return {**super().as_json(), "errcode": self.errcode}


def _complete(out: dict[str, Any], what: str) -> None:
    """Every column the platform's answer fills is there (a 502 naming the first missing one otherwise)."""
    missing = [k for k, v in out.items() if v is None]
    if missing:
        raise PlatformRejected(what, PlatformError(-1, f"no {missing[0]} in answer"))


@dataclass(frozen=True)
class CodeView:
    """What the pipeline needs of a code, cached in memory."""

    id: int
    name: str
    platform: str
    account_id: str
    tags: tuple[str, ...]
    welcome_text: str
    route_group: str | None
    route_agent_id: int | None
    enabled: bool


def code_json(row: Any) -> dict[str, Any]:
    out = {c: getattr(row, c) for c in codes_t.c.keys()}
    for key in JSON_FIELDS:
        out[key] = json.loads(out[key] or "[]")
    out["schedule"] = json.loads(out["schedule"]) if out["schedule"] else None
    out["enabled"] = bool(out["enabled"])
    return out


def _view(row: Any) -> CodeView:
    return CodeView(row.id, row.name, row.platform, row.account_id, tuple(json.loads(row.tags or "[]")),
                    row.welcome_text or "", row.route_group, row.route_agent_id, bool(row.enabled))


def _dump(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for key in JSON_FIELDS:
        if key in out:
            out[key] = json.dumps(out[key], ensure_ascii=False)
    if "schedule" in out:
        out["schedule"] = json.dumps(out["schedule"], ensure_ascii=False) if out["schedule"] else None
    return out


class ChannelService:
    def __init__(self, db: Database, clock: Clock, api: PlatformApi, accounts: AccountRegistry, ttl: float = 5.0):
        self.db = db
        self.clock = clock
        self.api = api
        self.accounts = accounts
        self.ttl = ttl
        self._by_key: dict[tuple[str, str, str], CodeView] = {}
        self._by_id: dict[int, CodeView] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()
        self.images = qr.PlatformImages(api.session)

    # -- the cached lookup --------------------------------------------------------------------
    async def _reload(self) -> None:
        async with self._lock:
            async with self.db.read() as conn:
                rows = (await conn.execute(select(codes_t))).all()
            self._by_id = {r.id: _view(r) for r in rows}
            self._by_key = {(r.account_id, rules.KEY_FIELD[r.platform], getattr(r, rules.KEY_FIELD[r.platform])):
                            self._by_id[r.id] for r in rows if r.enabled and getattr(r, rules.KEY_FIELD[r.platform])}
            self._loaded_at = self.clock.now()

    async def _fresh(self, hit: bool) -> None:
        age = self.clock.now() - self._loaded_at
        if age > self.ttl or (not hit and age > 1.0):  # a miss reloads at most once a second
            await self._reload()

    def invalidate(self) -> None:
        self._loaded_at = float("-inf")

    async def match(self, account_id: str, kind: str, value: str) -> CodeView | None:
        """The enabled code an event names: ``kind`` is state (WeCom), scene (OA) or scene_param (kf)."""
        if not value:
            return None
        key = (account_id, kind, value)
        await self._fresh(key in self._by_key)
        return self._by_key.get(key)

    async def by_id(self, code_id: int) -> CodeView | None:
        await self._fresh(code_id in self._by_id)
        return self._by_id.get(code_id)

    # -- reads --------------------------------------------------------------------------------
    async def list(self, platform: str | None = None, account_id: str | None = None,
                   enabled: bool | None = None) -> list[dict[str, Any]]:
        q = select(codes_t).order_by(codes_t.c.id)
        if platform:
            q = q.where(codes_t.c.platform == platform)
        if account_id:
            q = q.where(codes_t.c.account_id == account_id)
        if enabled is not None:
            q = q.where(codes_t.c.enabled.is_(enabled))
        async with self.db.read() as conn:
            return [code_json(r) for r in (await conn.execute(q)).all()]

    async def get(self, code_id: int) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = (await conn.execute(select(codes_t).where(codes_t.c.id == code_id))).first()
        if row is None:
            raise not_found("unknown_channel", f"no channel code {code_id}")
        return code_json(row)

    async def qr_image(self, code: dict[str, Any]) -> tuple[bytes, str]:
        """(bytes, kind) of the image WeCom drew for a WeCom code's contact way (its ``qr_url``)."""
        if not code.get("config_id") or not code.get("qr_url"):
            raise HubError(409, "no_qr_content", f"channel {code['id']} has no QR image from the platform")
        return await self.images.get(code["config_id"], code["qr_url"])

    # -- create -------------------------------------------------------------------------------
    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        spec = rules.parse_create(body)
        platform = spec["platform"]
        account = await self.accounts.get(spec["account_id"])
        if account is None:
            raise bad_request("unknown_account", f"no account {spec['account_id']}", "account_id")
        if account.platform != rules.ACCOUNT_PLATFORM[platform]:
            raise bad_request("invalid_account", f"a {platform} code needs a {rules.ACCOUNT_PLATFORM[platform]} "
                                                 f"account, {account.id} is {account.platform}", "account_id")
        await self._check_agent(spec["route_agent_id"])
        await self._check_group(spec["route_group"])
        keys = {"wecom": ("state",), "oa": ("scene",), "kf": ("scene", "scene_param")}[platform]
        for key in keys:
            spec[key] = await self._free_key(account.id, key, spec[key], spec["name"])
        registered = await self._register(account, spec)
        now = self.clock.now()
        values = _dump({**spec, **registered, "created_at": now, "updated_at": now})

        async def write() -> int:
            async with self.db.write() as conn:
                return (await conn.execute(codes_t.insert().values(**values))).inserted_primary_key[0]

        try:
            code_id = await retry_busy(write)
        except IntegrityError:  # another request took the key between our check and the insert
            log.warning("channel %r registered on the platform (%s) but its key was taken meanwhile",
                        spec["name"], registered)
            raise HubError(409, "key_taken", f"{keys[-1]} {spec[keys[-1]]!r} was taken meanwhile", keys[-1]) from None
        self.invalidate()
        return await self.get(code_id)

    async def _free_key(self, account_id: str, key: str, given: str | None, name: str) -> str:
        """The given state / scene / scene_param if free on the account (409 otherwise), or a generated one."""
        col = codes_t.c[key]
        async with self.db.read() as conn:
            async def taken(value: str) -> bool:
                return (await conn.execute(select(codes_t.c.id).where(
                    (codes_t.c.account_id == account_id) & (col == value)))).first() is not None

            if given is not None:
                if await taken(given):
                    raise HubError(409, "key_taken", f"{key} {given!r} is already used on {account_id}", key)
                return given
            for _ in range(5):
                value = rules.generate_key(name)
                if not await taken(value):
                    return value
        raise HubError(409, "key_taken", f"could not generate a free {key}", key)

    async def _register(self, account: AccountInfo, spec: dict[str, Any]) -> dict[str, Any]:
        """Create the code on the platform; returns the columns its answer fills."""
        platform = spec["platform"]
        try:
            if platform == "wecom":
                users = rules.users_at(spec["schedule"], spec["staff"], self.clock.now())
                out = await self._add_way(account, spec["state"], users,
                                          rules.single_person(spec["staff"], spec["schedule"]))
            elif platform == "oa":
                data = await self.api.call(account, OA_QRCODE, {
                    "action_name": "QR_LIMIT_STR_SCENE", "action_info": {"scene": {"scene_str": spec["scene"]}}})
                out = {"ticket": data.get("ticket"), "qr_url": data.get("url")}
            else:
                data = await self.api.call(account, KF_CONTACT_WAY, {"open_kfid": spec["open_kfid"],
                                                                     "scene": spec["scene"]})
                url = data.get("url")
                link = f"{url}{'&' if '?' in url else '?'}scene_param={quote(spec['scene_param'], safe='')}" \
                    if url else None
                out = {"qr_url": url, "link_url": link}
        except PlatformError as exc:
            raise PlatformRejected(f"registering the {platform} code", exc) from None
        _complete(out, f"registering the {platform} code")
        return out

    async def _add_way(self, account: AccountInfo, state: str, users: list[str], single: bool) -> dict[str, Any]:
        """A WeCom contact way (type 1: one person, 2: several) with ``state``; the columns it fills."""
        data = await self.api.call(account, ADD_CONTACT_WAY, {
            "type": 1 if single else 2, "scene": 2, "state": state, "user": users, "skip_verify": True})
        return {"config_id": data.get("config_id"), "qr_url": data.get("qr_code"), "platform_users": users}

    async def _check_agent(self, agent_id: int | None) -> None:
        if agent_id is None:
            return
        async with self.db.read() as conn:
            row = (await conn.execute(select(users_t.c.id).where(
                (users_t.c.id == agent_id) & users_t.c.disabled.is_(False)))).first()
        if row is None:
            raise bad_request("unknown_agent", f"no active user {agent_id}", "route_agent_id")

    async def _check_group(self, group: str | None) -> None:
        """A group someone made: a typo (售前 for presales) queued every customer of the code in a group
        nobody serves, for ever."""
        from ..settings_api import group_exists
        if group and not await group_exists(self.db, group):
            raise bad_request("unknown_group", f"no skill group named {group}", "route_group")

    # -- update / disable ---------------------------------------------------------------------
    async def update(self, code_id: int, body: dict[str, Any]) -> dict[str, Any]:
        current = await self.get(code_id)
        changes = rules.parse_update(body, current)
        if "route_agent_id" in changes:
            await self._check_agent(changes["route_agent_id"])
        if changes.get("route_group") and changes["route_group"] != current.get("route_group"):
            await self._check_group(changes["route_group"])
        if current["platform"] == "wecom" and "staff" in changes:
            changes.update(await self._staff_changed(current, changes["staff"], changes["schedule"]))
        if changes:
            await self._write(code_id, changes)
        if changes.get("config_id"):  # the code is on its new contact way now: the one-person way goes
            await self._delete_way(current)
        return await self.get(code_id)

    async def delete(self, code_id: int) -> dict[str, Any]:
        """Disable: scans and adds through it are no longer applied; the platform config stays, so it can
        be enabled again with PUT {"enabled": true}."""
        await self.get(code_id)
        await self._write(code_id, {"enabled": False})
        return await self.get(code_id)

    async def _write(self, code_id: int, changes: dict[str, Any]) -> None:
        values = _dump({**changes, "updated_at": self.clock.now()})

        async def write() -> None:
            async with self.db.write() as conn:
                await conn.execute(update(codes_t).where(codes_t.c.id == code_id).values(**values))

        await retry_busy(write)
        self.invalidate()

    async def _account_of(self, code: dict[str, Any]) -> AccountInfo:
        account = await self.accounts.get(code["account_id"])
        if account is None:
            raise HubError(409, "unknown_account", f"account {code['account_id']} is gone")
        return account

    async def _set_users(self, code: dict[str, Any], users: list[str]) -> None:
        account = await self._account_of(code)
        try:
            await self.api.call(account, UPDATE_CONTACT_WAY, {"config_id": code["config_id"], "user": users})
        except PlatformError as exc:
            raise PlatformRejected("updating the contact way's staff", exc) from None

    async def _staff_changed(self, code: dict[str, Any], staff: list[str],
                             schedule: list[dict[str, Any]] | None) -> dict[str, Any]:
        """Put the users on duty on the code's contact way; the columns that change. A one-person way
        (WeCom type 1) takes no second user: a code that can be several people now gets a new multi-person
        way with the same state (so its adds are still attributed), and a new QR code."""
        users = rules.users_at(schedule, staff, self.clock.now())
        # a way holding several users is multi-person; one holding one may be either: the platform knows
        changed = (staff, schedule) != (code["staff"], code["schedule"])
        if changed and not rules.single_person(staff, schedule) and len(code["platform_users"]) <= 1 \
                and await self._way_type(code) == 1:
            return await self._multi_person_way(code, users)
        if users == code["platform_users"]:
            return {}
        await self._set_users(code, users)
        return {"platform_users": users}

    async def _multi_person_way(self, code: dict[str, Any], users: list[str]) -> dict[str, Any]:
        """A new multi-person way with the code's state and ``users``; the columns it fills."""
        what = "replacing the one-person contact way"
        try:
            out = await self._add_way(await self._account_of(code), code["state"], users, single=False)
        except PlatformError as exc:
            raise PlatformRejected(what, exc) from None
        _complete(out, what)
        log.info("channel %s: one-person contact way %s replaced by %s", code["id"], code["config_id"],
                 out["config_id"])
        return out

    async def _way_type(self, code: dict[str, Any]) -> int | None:
        """The contact way's type on the platform: 1 one person, 2 several; None when it cannot be read
        (the update goes ahead, and its own answer tells)."""
        try:
            data = await self.api.call(await self._account_of(code), GET_CONTACT_WAY, {"config_id": code["config_id"]})
        except PlatformError as exc:
            log.warning("channel %s: contact way %s not read: %s", code["id"], code["config_id"], exc)
            return None
        return (data.get("contact_way") or {}).get("type")

    async def _delete_way(self, code: dict[str, Any]) -> None:
        """Delete a contact way the code no longer uses; a failure is logged (the code works on its new way)."""
        try:
            await self.api.call(await self._account_of(code), DEL_CONTACT_WAY, {"config_id": code["config_id"]})
        except (PlatformError, HubError) as exc:
            log.warning("channel %s: old contact way %s not deleted: %s", code["id"], code["config_id"], exc)

    # -- staff schedules ----------------------------------------------------------------------
    async def apply_schedules(self) -> int:
        """Put the users on duty now on every scheduled WeCom contact way; returns how many changed."""
        async with self.db.read() as conn:
            rows = (await conn.execute(select(codes_t).where(
                (codes_t.c.platform == "wecom") & codes_t.c.enabled.is_(True) & codes_t.c.schedule.is_not(None)))).all()
        changed = 0
        for row in rows:
            code = code_json(row)
            users = rules.users_at(code["schedule"], code["staff"], self.clock.now())
            if users == code["platform_users"]:
                continue
            try:
                await self._set_users(code, users)
            except HubError as exc:
                log.warning("channel %s: staff schedule not applied: %s", row.id, exc.message)
                continue
            await self._write(row.id, {"platform_users": users})
            changed += 1
        return changed
