"""A local stand-in for the WeCom and Official Account APIs (token, send, kf/sync_msg, service
state, channel codes), with knobs for error answers, expired tokens, slowness and paged pulls."""
from __future__ import annotations

import asyncio
import io
import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

import segno
from aiohttp import web


@dataclass
class Standin:
    token_ttl: int = 7200
    page_size: int = 2  # kf/sync_msg answers at most this many per page, so has_more paging is exercised
    delay: float = 0.0  # seconds before every answer (a slow platform)
    fail_next: list[Any] = field(default_factory=list)  # errcode ints (HTTP 200) or "http500" / "http404" / "drop"
    fail_texts: dict[str, Any] = field(default_factory=dict)  # a send of this text content: HTTP 500, every time
    tokens: dict[str, str] = field(default_factory=dict)  # access_token -> account key
    token_requests: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)  # every accepted send: {"path", "body"}
    kf_messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # open_kfid -> msg_list
    kf_pulls: list[dict[str, Any]] = field(default_factory=list)
    state_changes: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    pulls_in_flight: int = 0
    max_pulls_in_flight: int = 0
    pull_delay: float = 0.0
    profiles: dict[str, dict[str, str]] = field(default_factory=dict)  # openid/external_userid -> unionid, name
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    contact_ways: list[dict[str, Any]] = field(default_factory=list)  # channel-code calls: {"path", "body"}
    unreachable: set[str] = field(default_factory=set)  # WeCom customers in add_msg_template's fail_list
    expired_kf_tokens: set[str] = field(default_factory=set)  # kf event tokens past their 10 minutes (95007)
    contact_way_types: dict[str, int] = field(default_factory=dict)  # config_id -> 1 (one person) or 2 (several)
    # a contact way's qr_code is an image URL on this server (as WeCom's is on wework.qpic.cn): path -> the
    # add-contact link its QR code encodes
    qr_images: dict[str, str] = field(default_factory=dict)
    qr_image_requests: int = 0

    def expire_all_tokens(self) -> None:
        """Tokens the hub holds become invalid (the platform answers 42001)."""
        self.tokens.clear()

    def add_kf_message(self, open_kfid: str, item: dict[str, Any]) -> None:
        self.kf_messages.setdefault(open_kfid, []).append(item)

    async def _gate(self, request: web.Request) -> web.Response | None:
        self.requests.append(request.path)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail_next:
            failure = self.fail_next.pop(0)
            if failure == "http500":
                return web.Response(status=500, text="upstream error")
            if failure == "drop":
                raise web.HTTPServiceUnavailable()
            if failure == "http404":
                return web.Response(status=404, text="no such endpoint")
            return web.json_response({"errcode": failure, "errmsg": f"stand-in error {failure}"})
        return None

    def _check_token(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token", "")
        if token not in self.tokens:
            return web.json_response({"errcode": 42001 if token else 41001, "errmsg": "access_token expired"})
        return None

    def app(self) -> web.Application:
        app = web.Application()

        async def token(request: web.Request) -> web.Response:
            self.token_requests += 1
            if (r := await self._gate(request)) is not None:
                return r
            q = request.query
            key = q.get("appid") or q.get("corpid")
            secret = q.get("secret") or q.get("corpsecret")
            if not key or not secret:
                return web.json_response({"errcode": 40013, "errmsg": "invalid appid"})
            value = secrets.token_hex(16)
            self.tokens[value] = key
            return web.json_response({"access_token": value, "expires_in": self.token_ttl, "errcode": 0})

        async def send(request: web.Request) -> web.Response:
            if (r := await self._gate(request)) is not None:
                return r
            if (r := self._check_token(request)) is not None:
                return r
            body = await request.json()
            if (body.get("text") or {}).get("content") in self.fail_texts:
                return web.Response(status=500, text="upstream error")
            self.sent.append({"path": request.path, "body": body})
            answer = {"errcode": 0, "errmsg": "ok", "msgid": f"standin-{next(self._ids)}"}
            if request.path.endswith("/add_msg_template"):  # accepted, listing who cannot receive it
                answer["fail_list"] = [u for u in body.get("external_userid", []) if u in self.unreachable]
            return web.json_response(answer)

        async def sync_msg(request: web.Request) -> web.Response:
            if (r := await self._gate(request)) is not None:
                return r
            if (r := self._check_token(request)) is not None:
                return r
            body = await request.json()
            self.kf_pulls.append(body)
            if body.get("token") in self.expired_kf_tokens:
                return web.json_response({"errcode": 95007, "errmsg": "invalid msg token"})
            self.pulls_in_flight += 1
            self.max_pulls_in_flight = max(self.max_pulls_in_flight, self.pulls_in_flight)
            try:
                await asyncio.sleep(self.pull_delay)
            finally:
                self.pulls_in_flight -= 1
            items = self.kf_messages.get(body.get("open_kfid", ""), [])
            start = int(body.get("cursor") or 0)
            limit = min(int(body.get("limit") or 1000), self.page_size)
            page = items[start:start + limit]
            end = start + len(page)
            return web.json_response({"errcode": 0, "errmsg": "ok", "next_cursor": str(end),
                                      "has_more": 1 if end < len(items) else 0, "msg_list": page})

        async def service_state(request: web.Request) -> web.Response:
            if (r := await self._gate(request)) is not None:
                return r
            if (r := self._check_token(request)) is not None:
                return r
            body = await request.json()
            self.state_changes.append(body)
            return web.json_response({"errcode": 0, "errmsg": "ok", "msg_code": secrets.token_hex(4)})

        async def user_info(request: web.Request) -> web.Response:
            self.requests.append(request.path)  # fail_next is kept for the send and pull endpoints
            if (r := self._check_token(request)) is not None:
                return r
            peer = request.query.get("openid") or request.query.get("external_userid") or ""
            prof = self.profiles.get(peer)
            if prof is None:
                return web.json_response({"errcode": 84061 if "openid" in request.query else 84061, "errmsg": "not found"})
            if "openid" in request.query:
                return web.json_response({"subscribe": 1, "openid": peer, "nickname": prof.get("name", ""),
                                          "unionid": prof.get("unionid", ""), "errcode": 0})
            return web.json_response({"errcode": 0, "errmsg": "ok", "external_contact": {
                "external_userid": peer, "name": prof.get("name", ""), "unionid": prof.get("unionid", "")}})

        app.router.add_get("/cgi-bin/user/info", user_info)
        app.router.add_get("/cgi-bin/externalcontact/get", user_info)
        app.router.add_get("/cgi-bin/token", token)
        app.router.add_get("/cgi-bin/gettoken", token)
        for path in ("/cgi-bin/message/custom/send", "/cgi-bin/kf/send_msg", "/cgi-bin/kf/send_msg_on_event",
                     "/cgi-bin/externalcontact/send_welcome_msg", "/cgi-bin/externalcontact/add_msg_template"):
            app.router.add_post(path, send)
        app.router.add_post("/cgi-bin/kf/sync_msg", sync_msg)
        app.router.add_post("/cgi-bin/kf/service_state/trans", service_state)

        async def contact_way(request: web.Request) -> web.Response:
            """Channel codes: WeCom contact ways, OA permanent QR codes, 微信客服 links (recorded in contact_ways)."""
            if (r := await self._gate(request)) is not None:
                return r
            if (r := self._check_token(request)) is not None:
                return r
            body = await request.json()
            self.contact_ways.append({"path": request.path, "body": body})
            n = next(self._ids)
            if request.path == "/cgi-bin/externalcontact/add_contact_way":
                if body.get("type") == 1 and len(body.get("user") or []) != 1:
                    return web.json_response({"errcode": 40058, "errmsg": "a single-person contact way takes one user"})
                self.contact_way_types[f"standin-cfg-{n}"] = body.get("type")
                self.qr_images[f"/wwpic/standin{n}/0"] = f"https://work.weixin.qq.com/ca/cawcdestandin{n}"
                return web.json_response({"errcode": 0, "errmsg": "ok", "config_id": f"standin-cfg-{n}",
                                          "qr_code": f"{request.scheme}://{request.host}/wwpic/standin{n}/0"})
            if request.path == "/cgi-bin/externalcontact/update_contact_way" and len(body.get("user") or []) > 1 \
                    and self.contact_way_types.get(body.get("config_id")) == 1:
                return web.json_response({"errcode": 40058, "errmsg": "a single-person contact way takes one user"})
            if request.path in ("/cgi-bin/externalcontact/get_contact_way", "/cgi-bin/externalcontact/del_contact_way"):
                config_id = body.get("config_id")
                if config_id not in self.contact_way_types:
                    return web.json_response({"errcode": 40058, "errmsg": "invalid config_id"})
                if request.path.endswith("/get_contact_way"):
                    return web.json_response({"errcode": 0, "errmsg": "ok", "contact_way": {
                        "config_id": config_id, "type": self.contact_way_types[config_id], "scene": 2}})
                del self.contact_way_types[config_id]  # its QR image is gone with it
                self.qr_images.pop(f"/wwpic/standin{config_id.removeprefix('standin-cfg-')}/0", None)
            if request.path == "/cgi-bin/qrcode/create":
                return web.json_response({"ticket": f"gQStandinTicket{n}", "url": f"http://weixin.qq.com/q/standin{n}"})
            if request.path == "/cgi-bin/kf/add_contact_way":
                return web.json_response({"errcode": 0, "errmsg": "ok",
                                          "url": f"https://work.weixin.qq.com/kf/kfcstandin{n}?enc_scene=ENC{n}"})
            return web.json_response({"errcode": 0, "errmsg": "ok"})

        for path in ("/cgi-bin/externalcontact/add_contact_way", "/cgi-bin/externalcontact/update_contact_way",
                     "/cgi-bin/externalcontact/get_contact_way", "/cgi-bin/externalcontact/del_contact_way",
                     "/cgi-bin/qrcode/create", "/cgi-bin/kf/add_contact_way"):
            app.router.add_post(path, contact_way)

        async def qr_image(request: web.Request) -> web.Response:
            """The PNG behind a contact way's qr_code: a QR code of its add-contact link."""
            self.qr_image_requests += 1
            link = self.qr_images.get(request.path)
            if link is None:
                return web.Response(status=404)
            return web.Response(body=self.qr_png(link), content_type="image/png")

        app.router.add_get("/wwpic/{name}/0", qr_image)
        return app

    @staticmethod
    def qr_png(link: str) -> bytes:
        buf = io.BytesIO()
        segno.make(link, error="m", micro=False).save(buf, kind="png", scale=6, border=4)
        return buf.getvalue()
