"""Socket.IO for agents and supervisors (python-socketio on the aiohttp app).

Connecting needs a login: the console's session cookie or ``auth={"token": ...}``; anonymous
sockets are refused. Each socket joins ``user:<id>``, ``group:<name>`` for its skill groups and,
for supervisors and admins, ``supervisors``. Client events are thin: they call the session service
and answer with an ack ``{"ok": true, ...}`` or ``{"ok": false, "error": code, "message": ...}``.
Every event and payload is documented in docs/realtime.md.
"""
from __future__ import annotations

import asyncio
import logging
from http.cookies import SimpleCookie
from typing import Any

import socketio

from .api import int_param
from .errors import HubError
from .push import SUPERVISORS, group_room, user_room
from .tasks import repeat
from .users import UserInfo, user_for_token

log = logging.getLogger(__name__)

COOKIE = "hub_session"

# client -> server events (each answers with an ack)
CLIENT_EVENTS = ("resume", "reply", "accept", "transfer", "close", "status", "viewing", "typing", "sessions",
                 "session", "history", "agents", "quick_replies", "tag")


def _cookie_token(environ: dict[str, Any]) -> str | None:
    raw = environ.get("HTTP_COOKIE", "")
    if not raw:
        return None
    jar = SimpleCookie()
    try:
        jar.load(raw)
    except Exception:  # noqa: BLE001
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel else None


RECHECK = 5.0  # seconds a socket's user is trusted before it is checked against the database again


class AgentNamespace(socketio.AsyncNamespace):
    def __init__(self, hub_ref: Any, namespace: str = "/"):
        super().__init__(namespace)
        self.hub_ref = hub_ref  # callable returning the running Hub

    @property
    def hub(self):  # noqa: ANN201
        return self.hub_ref()

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        token = (auth or {}).get("token") if isinstance(auth, dict) else None
        token = token or _cookie_token(environ)
        hub = self.hub
        user = await user_for_token(hub.db, hub.clock, token)
        if user is None:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        await self.save_session(sid, {"user": user, "token": token, "checked": hub.clock.now()})
        await self.enter_room(sid, user_room(user.id))
        for g in user.groups:
            await self.enter_room(sid, group_room(g))
        if user.is_supervisor:
            await self.enter_room(sid, SUPERVISORS)
        await hub.presence.connected(user, sid)
        if isinstance(auth, dict) and "last_seq" in auth:
            try:
                last = int(auth.get("last_seq") or 0)
            except (TypeError, ValueError):
                last = 0
            await hub.push.replay(sid, user.id, auth.get("epoch"), last)

    async def on_disconnect(self, sid: str, *_args: Any) -> None:
        try:
            session = await self.get_session(sid)
        except KeyError:
            return
        user: UserInfo = session["user"]
        await self.hub.presence.disconnected(user, sid)

    async def _user(self, sid: str) -> UserInfo:
        """The socket's user, checked again against the database every ``RECHECK`` seconds: a user
        logged out, disabled, expired or given another role acts no longer with what they had when
        the socket connected (a disabled agent set themselves online and was given customers)."""
        session = await self.get_session(sid)
        hub = self.hub
        if hub.clock.now() - session.get("checked", 0.0) < RECHECK:
            return session["user"]
        user = await user_for_token(hub.db, hub.clock, session.get("token"))
        if user is None:  # refused in the ack, then dropped (the console goes to the login page)
            asyncio.get_running_loop().call_later(0.2, lambda: asyncio.ensure_future(self.disconnect(sid)))
            raise HubError(401, "unauthorized", "not logged in any more")
        await self._follow_rooms(sid, session["user"], user)
        session.update(user=user, checked=hub.clock.now())
        await self.save_session(sid, session)
        return user

    async def _follow_rooms(self, sid: str, before: UserInfo, now: UserInfo) -> None:
        """The socket's rooms as the user's role and groups are now (a demoted supervisor leaves the
        supervisors' room, with its customers' words in watch hits and the dashboard)."""
        for g in set(before.groups) - set(now.groups):
            await self.leave_room(sid, group_room(g))
        for g in set(now.groups) - set(before.groups):
            await self.enter_room(sid, group_room(g))
        if before.is_supervisor and not now.is_supervisor:
            await self.leave_room(sid, SUPERVISORS)
        elif now.is_supervisor and not before.is_supervisor:
            await self.enter_room(sid, SUPERVISORS)

    async def recheck_idle(self) -> None:
        """Check the users of this process's sockets that have not acted for ``RECHECK`` seconds: a
        console left open gets what its user may get now (its rooms; dropped when disabled or logged
        out), not only at its next action."""
        for sids in list(self.hub.presence.sockets.values()):
            for sid in list(sids):
                try:
                    await self._user(sid)
                except (KeyError, HubError):
                    pass  # gone, or being dropped

    async def recheck_forever(self) -> None:
        await repeat(lambda: RECHECK, self.recheck_idle, "rechecking socket users")

    async def trigger_event(self, event: str, *args: Any) -> Any:
        """Every client event runs through here: errors become acks, never a dropped socket."""
        if event in ("connect", "disconnect"):
            return await super().trigger_event(event, *args)
        if event not in CLIENT_EVENTS:
            return {"ok": False, "error": "unknown_event", "message": f"unknown event {event}"}
        sid = args[0]
        data = args[1] if len(args) > 1 and isinstance(args[1], dict) else {}
        try:
            user = await self._user(sid)
            result = await getattr(self, f"handle_{event}")(sid, user, data)
            return {"ok": True, **(result or {})}
        except HubError as exc:
            return {"ok": False, **exc.as_json()}
        except KeyError:
            return {"ok": False, "error": "unauthorized", "message": "not logged in"}
        except Exception:  # noqa: BLE001
            log.exception("socket event %s failed", event)
            return {"ok": False, "error": "internal", "message": "internal error"}

    # -- handlers: thin, the session service does the work -------------------------------------
    async def handle_resume(self, sid: str, user: UserInfo, data: dict) -> dict:
        last_seq = int_param(data.get("last_seq"), "last_seq", 0)  # 'abc' was an internal error
        replayed = await self.hub.push.replay(sid, user.id, data.get("epoch"), last_seq)
        return {"replayed": replayed}

    async def handle_sessions(self, sid: str, user: UserInfo, data: dict) -> dict:
        # the seq is taken before the list is read: an event sent while it is read has a higher seq, so
        # the client applies it on top (taken after, such an event was dropped as already in the list)
        streams = self.hub.push.streams
        epoch, seq = streams.epoch, await streams.last_seq(user.id)
        # the queue as it is now (its pushes come only when it changes: after a reload the counter was gone)
        _total, per_group = self.hub.sessions.dispatcher.queue_counts()
        queue = per_group if user.is_supervisor else {g: per_group.get(g, 0) for g in user.groups}
        return {"sessions": await self.hub.sessions.list_for(user), "epoch": epoch, "seq": seq, "queue": queue}

    async def handle_session(self, sid: str, user: UserInfo, data: dict) -> dict:
        return await self.hub.sessions.bundle_for(user, _int(data, "session_id"))

    async def handle_agents(self, sid: str, user: UserInfo, data: dict) -> dict:
        """Colleagues to transfer to: status, load and groups."""
        sessions = self.hub.sessions
        out = []
        for a in sessions.dispatcher.agents():
            info = sessions.agents.get(a.id)
            out.append({"id": a.id, "name": info.display_name if info else str(a.id), "status": a.status,
                        "load": a.load, "cap": a.cap, "groups": sorted(a.groups)})
        groups = sorted(set().union(set(), *(a.groups for a in sessions.dispatcher.agents())))
        return {"agents": out, "groups": groups}

    async def handle_quick_replies(self, sid: str, user: UserInfo, data: dict) -> dict:
        return {"quick_replies": await self.hub.settings.get("quick_replies")}

    async def handle_tag(self, sid: str, user: UserInfo, data: dict) -> dict:
        """Tag the customer of a session: {session_id, add: [...], remove: [...]}."""
        bundle = await self.hub.sessions.bundle_for(user, _int(data, "session_id"))
        customer_id = bundle["customer"].get("customer_id")
        if not customer_id:
            raise HubError(409, "no_customer", "this conversation has no customer yet")
        tags = await self.hub.customers.tag(f"user:{user.id}", customer_id, data.get("add") or [],
                                            data.get("remove") or [])
        return {"tags": tags}

    async def handle_history(self, sid: str, user: UserInfo, data: dict) -> dict:
        return await self.hub.sessions.history_for(user, _int(data, "session_id"), data.get("before"))

    async def handle_reply(self, sid: str, user: UserInfo, data: dict) -> dict:
        message_id = await self.hub.sessions.reply(user, _int(data, "session_id"), data.get("text"),
                                                   data.get("client_id"))
        return {"message_id": message_id}

    async def handle_accept(self, sid: str, user: UserInfo, data: dict) -> dict:
        await self.hub.sessions.accept(user, _int(data, "session_id"))
        return {}

    async def handle_transfer(self, sid: str, user: UserInfo, data: dict) -> dict:
        await self.hub.sessions.transfer(user, _int(data, "session_id"),
                                         to_agent=int_param(data.get("to_agent"), "to_agent"),  # 'abc': internal
                                         to_group=data.get("to_group") or None, note=data.get("note") or "")
        return {}

    async def handle_close(self, sid: str, user: UserInfo, data: dict) -> dict:
        await self.hub.sessions.close(user, _int(data, "session_id"), data.get("reason") or "resolved")
        return {}

    async def handle_status(self, sid: str, user: UserInfo, data: dict) -> dict:
        await self.hub.sessions.set_status(user, data.get("status"))
        return {}

    async def handle_viewing(self, sid: str, user: UserInfo, data: dict) -> dict:
        session_id = _int(data, "session_id") if data.get("session_id") else None
        if session_id is not None:
            await self.hub.sessions.check_readable(user, session_id)
        await self.hub.presence.viewing(user, sid, session_id)
        return {}

    async def handle_typing(self, sid: str, user: UserInfo, data: dict) -> dict:
        session_id = _int(data, "session_id")
        if self.hub.presence.viewing_by_sid.get(sid) != session_id:  # viewing it was checked
            raise HubError(403, "forbidden", "typing in a session you are not viewing")
        await self.hub.presence.typing(user, sid, session_id)
        return {}


def _int(data: dict, key: str) -> int:
    """A required id from an event, read as the API's (0 to ``MAX_ID``, else ``invalid_<key>``): one past
    BIGINT reached the database (an ``internal`` error)."""
    number = int_param(data.get(key), key)
    if number is None:
        raise HubError(400, "invalid_" + key, f"{key} must be an integer", key)
    return number


def create_sio(client_manager: Any = None) -> socketio.AsyncServer:
    return socketio.AsyncServer(async_mode="aiohttp", client_manager=client_manager, cors_allowed_origins=None,
                                logger=False, engineio_logger=False, ping_interval=20, ping_timeout=20)
