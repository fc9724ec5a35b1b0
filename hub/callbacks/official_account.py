"""WeChat Official Account (公众号) callbacks: plaintext and AES (safe / compatible) modes.

``GET  /callbacks/oa/{account}?signature&timestamp&nonce&echostr`` echoes echostr (plaintext check);
with ``msg_signature`` the echostr is encrypted and is answered decrypted.
``POST /callbacks/oa/{account}?signature&timestamp&nonce[&encrypt_type=aes&msg_signature]``.
"""
from __future__ import annotations

from aiohttp import web

from .common import CallbackDeps, account_or_404, accept_encrypted, accept_plain, check_timestamp, read_body, reject
from .crypto import CryptoError, check_signature


def routes(deps: CallbackDeps) -> list[web.RouteDef]:
    async def verify(request: web.Request) -> web.Response:
        account = await account_or_404(deps, request, "oa")
        if isinstance(account, web.Response):
            return account
        q = request.query
        timestamp, nonce, echostr = q.get("timestamp", ""), q.get("nonce", ""), q.get("echostr", "")
        if not echostr:
            return reject(request, 400, "missing echostr", account.id)
        if (why := check_timestamp(deps, timestamp)) is not None:
            return reject(request, 401, why, account.id)
        if "msg_signature" in q:
            if not check_signature(q.get("msg_signature"), account.token, timestamp, nonce, echostr):
                return reject(request, 401, "bad msg_signature", account.id)
            if account.crypto is None:
                return reject(request, 400, "account has no valid EncodingAESKey", account.id)
            try:
                answer = account.crypto.decrypt(echostr)
            except CryptoError as exc:
                return reject(request, 400, f"cannot decrypt echostr: {exc}", account.id)
        else:
            if not check_signature(q.get("signature"), account.token, timestamp, nonce):
                return reject(request, 401, "bad signature", account.id)
            answer = echostr.encode()
        return web.Response(body=answer, content_type="text/plain")

    async def receive(request: web.Request) -> web.Response:
        account = await account_or_404(deps, request, "oa")
        if isinstance(account, web.Response):
            return account
        q = request.query
        timestamp, nonce = q.get("timestamp", ""), q.get("nonce", "")
        if (why := check_timestamp(deps, timestamp)) is not None:
            return reject(request, 401, why, account.id)
        if q.get("encrypt_type", "raw").lower() == "aes":
            return await accept_encrypted(deps, request, account, "oa", q.get("msg_signature"), timestamp, nonce)
        if account.message_mode == "safe":  # the plaintext signature covers no part of the body
            return reject(request, 403, "unencrypted message to an account in safe mode", account.id)
        if not check_signature(q.get("signature"), account.token, timestamp, nonce):
            return reject(request, 401, "bad signature", account.id)
        body = await read_body(deps, request)
        if body is None:
            return reject(request, 413, "body too large", account.id)
        return await accept_plain(deps, request, account, "oa", body)

    return [web.get("/callbacks/oa/{account}", verify), web.post("/callbacks/oa/{account}", receive)]
