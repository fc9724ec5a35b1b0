"""WeCom (企业微信) callbacks: URL verification and encrypted messages and events.

``GET  /callbacks/wecom/{account}?msg_signature&timestamp&nonce&echostr`` answers the decrypted echostr.
``POST /callbacks/wecom/{account}?msg_signature&timestamp&nonce`` with ``<xml><Encrypt>…</Encrypt></xml>``.
WeChat Customer Service (微信客服) signals arrive here too (``kf_msg_or_event``); see ``kf.py``.
"""
from __future__ import annotations

from aiohttp import web

from .common import CallbackDeps, account_or_404, accept_encrypted, check_timestamp, reject
from .crypto import CryptoError, check_signature


def routes(deps: CallbackDeps) -> list[web.RouteDef]:
    async def verify(request: web.Request) -> web.Response:
        account = await account_or_404(deps, request, "wecom")
        if isinstance(account, web.Response):
            return account
        q = request.query
        timestamp, nonce, echostr = q.get("timestamp", ""), q.get("nonce", ""), q.get("echostr", "")
        if not echostr:
            return reject(request, 400, "missing echostr", account.id)
        if (why := check_timestamp(deps, timestamp)) is not None:
            return reject(request, 401, why, account.id)
        if not check_signature(q.get("msg_signature"), account.token, timestamp, nonce, echostr):
            return reject(request, 401, "bad msg_signature", account.id)
        if account.crypto is None:
            return reject(request, 400, "account has no valid EncodingAESKey", account.id)
        try:
            plain = account.crypto.decrypt(echostr)
        except CryptoError as exc:
            return reject(request, 400, f"cannot decrypt echostr: {exc}", account.id)
        return web.Response(body=plain, content_type="text/plain")

    async def receive(request: web.Request) -> web.Response:
        account = await account_or_404(deps, request, "wecom")
        if isinstance(account, web.Response):
            return account
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if (why := check_timestamp(deps, timestamp)) is not None:
            return reject(request, 401, why, account.id)
        return await accept_encrypted(deps, request, account, "wecom", q.get("msg_signature"), timestamp, nonce)

    return [web.get("/callbacks/wecom/{account}", verify), web.post("/callbacks/wecom/{account}", receive)]
