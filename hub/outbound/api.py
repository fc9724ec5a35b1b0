"""Platform API client (WeCom and Official Account) with a single-flight access-token cache.

Tokens are cached per account and refreshed early (``refresh_margin`` before expiry) by one task at
a time; an answer of 40001/42001 (invalid/expired token) refreshes and retries the call once.
Errors come back as HTTP 200 with ``{"errcode": N, "errmsg": ...}``: they raise ``PlatformError``.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from typing import Any

import aiohttp

from ..accounts import AccountInfo
from ..clock import Clock
from ..privacy.redact import redact_error
from .shared_tokens import SharedTokens, Token

log = logging.getLogger(__name__)

TOKEN_ERRORS = {40001, 40014, 42001}
# the token endpoint's answers to a wrong secret or id (invalid credential, appid/corpid, secret)
CREDENTIAL_ERRORS = {40001, 40013, 40125, 41004, 40091}
# retrying can help: system busy, rate/frequency limits, network-ish and token trouble. Not 微信客服's
# 95000 (invalid open_kfid), 95001 (the customer's message limit: no more until they write again) or
# 95002 (out of the reply window): retried, such a send held the conversation's later ones for minutes
TRANSIENT_ERRORS = {-1, 45009, 45011, 45033} | TOKEN_ERRORS

SEND_PATHS = {
    "oa_custom": "/cgi-bin/message/custom/send",
    "kf_send": "/cgi-bin/kf/send_msg",
    "kf_send_on_event": "/cgi-bin/kf/send_msg_on_event",
    "wecom_welcome": "/cgi-bin/externalcontact/send_welcome_msg",
    # a WeCom external contact outside 微信客服: a one-to-one message task the staff member confirms
    "wecom_msg_template": "/cgi-bin/externalcontact/add_msg_template",
}


# a JSON escape of a UTF-16 surrogate: a platform's text cut inside an emoji (a nickname, a kf message)
# arrives as a lone "\ud83d", which neither database can store (a pulled page then never committed)
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _platform_json(text: str) -> Any:
    """A platform's JSON answer, lone surrogates made U+FFFD (a pair is one character already)."""
    data = json.loads(text)
    return _no_lone_surrogates(data) if _SURROGATE_ESCAPE.search(text) else data


def _no_lone_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, dict):
        return {_no_lone_surrogates(k): _no_lone_surrogates(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_no_lone_surrogates(v) for v in value]
    return value


class PlatformError(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"errcode {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def transient(self) -> bool:
        # our own codes: 1e6 + status for a network failure, a 5xx or 429 (transient); 2e6 + status
        # for another 4xx, and 2_000_404 for an account gone (permanent: retrying cannot help)
        return self.errcode in TRANSIENT_ERRORS or 1_000_000 <= self.errcode < 2_000_000


def network_error(exc: BaseException) -> PlatformError:
    """The failure, its text redacted: an HTTP client error names the URL, whose query carries
    ``corpsecret`` / ``access_token`` (hub/privacy/redact.py)."""
    return PlatformError(1_000_000, redact_error(exc))


def token_key(account: AccountInfo) -> str:
    """A token's cache key: the account and a fingerprint of what it was fetched with, so a token
    fetched before the AppID/CorpID or secret changed is never used after."""
    creds = "\x00".join((account.platform, account.receive_id, account.secret or ""))
    return f"{account.id}#{hashlib.sha256(creds.encode()).hexdigest()[:16]}"


class PlatformApi:
    def __init__(self, session: aiohttp.ClientSession, clock: Clock, wecom_base: str, oa_base: str,
                 refresh_margin: float = 300.0):
        self.session = session
        self.clock = clock
        self.bases = {"wecom": wecom_base.rstrip("/"), "oa": oa_base.rstrip("/")}
        self.refresh_margin = refresh_margin
        self._tokens: dict[str, Token] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._refresh_after: dict[str, float] = {}  # account -> when to try a failed early refresh again
        self._fetch_failed: dict[str, tuple[float, PlatformError]] = {}  # account -> (until, the refusal)
        self.refresh_retry = 30.0
        # a fetch that failed otherwise (the network, a 5xx, a rate limit) answers the sends that waited
        # for it and those of the next few seconds: each waiter fetched again in turn (16 sends behind a
        # token endpoint timing out at 10 s: minutes, and a burst of fetches against the daily quota)
        self.fetch_retry = 5.0
        self.token_fetches = 0
        self.shared: SharedTokens | None = None  # several processes: the Official Account's token, shared

    # -- tokens ---------------------------------------------------------------------------------
    async def access_token(self, account: AccountInfo, force: bool = False, stale: str | None = None) -> str:
        key = token_key(account)
        cached = self._tokens.get(key)
        if cached and not force and cached.expires_at - self.refresh_margin > self.clock.now():
            return cached.value
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # single flight: whoever waited finds the fresh token
            cached = self._tokens.get(key)
            now = self.clock.now()
            fresh = cached and cached.expires_at - self.refresh_margin > now
            if fresh and (not force or cached.value != stale):
                return cached.value
            # an early refresh failed a moment ago: the token still valid serves until the next try
            usable = cached is not None and not force and cached.expires_at > now
            if usable and now < self._refresh_after.get(key, 0.0):
                return cached.value
            failed = self._fetch_failed.get(key)
            if not usable and failed is not None and now < failed[0]:
                # refused a moment ago: not fetched again for every send in the queue
                raise PlatformError(failed[1].errcode, failed[1].errmsg)
            try:
                refused = (stale or (cached.value if cached else None)) if force else None
                token = await self._new_token(account, key, refused)
            except PlatformError as exc:
                if not usable:
                    # a wrong secret or id: one fetch per refresh_retry, not one per send attempt (the
                    # Official Account may fetch 2,000 a day); anything else, one per fetch_retry
                    hold = self.refresh_retry if exc.errcode in CREDENTIAL_ERRORS else self.fetch_retry
                    self._fetch_failed[key] = (self.clock.now() + hold, exc)
                    raise
                # the token endpoint slow or failing in the refresh margin: sends go on with the
                # current token (every one of them failed, and each waiter fetched again in turn)
                self._refresh_after[key] = now + self.refresh_retry
                log.warning("early token refresh for %s failed (%s); the current token serves %.0f s more",
                            account.id, exc, cached.expires_at - now)
                return cached.value
            self._tokens[key] = token
            self._refresh_after.pop(key, None)
            self._fetch_failed.pop(key, None)
            return token.value

    async def _new_token(self, account: AccountInfo, key: str, stale: str | None) -> Token:
        """A token from the platform; an Official Account's through the store the processes share
        (a fetch there ends the token the others hold), which may have a newer one already."""
        if self.shared is None or account.platform != "oa":
            return await self._fetch_token(account)
        try:
            return await self.shared.get_or_fetch(key, lambda: self._fetch_token(account), stale=stale,
                                                  fresh_until=self.clock.now() + self.refresh_margin)
        except PlatformError:
            raise
        except Exception as exc:  # noqa: BLE001 - the database: a send retries later, a valid token serves
            log.warning("shared token store unavailable for %s: %s", account.id, exc)
            raise PlatformError(1_000_002, "token store unavailable") from None

    async def _fetch_token(self, account: AccountInfo) -> Token:
        self.token_fetches += 1
        base = self.bases[account.platform]
        if account.platform == "oa":
            url, params = f"{base}/cgi-bin/token", {"grant_type": "client_credential", "appid": account.receive_id,
                                                      "secret": account.secret}
        else:
            url, params = f"{base}/cgi-bin/gettoken", {"corpid": account.receive_id, "corpsecret": account.secret}
        data = await self._request("GET", url, params=params)
        token = data.get("access_token")
        if not token:
            raise PlatformError(int(data.get("errcode", -1)), str(data.get("errmsg", "no access_token")))
        return Token(token, self.clock.now() + float(data.get("expires_in", 7200)))

    # -- calls ----------------------------------------------------------------------------------
    async def _request(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self.session.request(method, url, **kwargs) as resp:
                if resp.status >= 500 or resp.status == 429:
                    raise PlatformError(1_000_000 + resp.status, f"HTTP {resp.status}")
                if resp.status >= 400:
                    raise PlatformError(2_000_000 + resp.status, f"HTTP {resp.status}")
                data = _platform_json(await resp.text(encoding="utf-8", errors="replace"))
        except PlatformError:
            raise
        except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
            raise network_error(exc) from None  # the cause's text names the URL and its secrets
        if not isinstance(data, dict):
            raise PlatformError(1_000_001, "answer is not a JSON object")
        return data

    async def call(self, account: AccountInfo, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """POST ``payload`` to ``path`` with the account's token; raise on a non-zero errcode."""
        url = self.bases[account.platform] + path
        token = await self.access_token(account)
        for attempt in (0, 1):
            data = await self._request("POST", url, params={"access_token": token}, json=payload)
            errcode = int(data.get("errcode", 0) or 0)
            if errcode == 0:
                return data
            if errcode in TOKEN_ERRORS and attempt == 0:
                log.info("token rejected for %s (errcode %s): refreshing once", account.id, errcode)
                token = await self.access_token(account, force=True, stale=token)
                continue
            raise PlatformError(errcode, str(data.get("errmsg", "")))
        raise AssertionError("unreachable")

    async def get(self, account: AccountInfo, path: str, params: dict[str, Any]) -> dict[str, Any]:
        """GET with the account's token (refresh-and-retry once on an expired token)."""
        url = self.bases[account.platform] + path
        token = await self.access_token(account)
        for attempt in (0, 1):
            data = await self._request("GET", url, params={**params, "access_token": token})
            errcode = int(data.get("errcode", 0) or 0)
            if errcode == 0:
                return data
            if errcode in TOKEN_ERRORS and attempt == 0:
                token = await self.access_token(account, force=True, stale=token)
                continue
            raise PlatformError(errcode, str(data.get("errmsg", "")))
        raise AssertionError("unreachable")

    async def customer_profile(self, account: AccountInfo, channel: str, peer_id: str) -> dict[str, str]:
        """unionid and name of a follower (OA user/info), a 微信客服 customer (kf/customer/batchget: not
        an external contact, whom externalcontact/get refuses) or an external contact (WeCom
        externalcontact/get)."""
        if account.platform == "oa":
            data = await self.get(account, "/cgi-bin/user/info", {"openid": peer_id, "lang": "zh_CN"})
            return {"unionid": str(data.get("unionid") or ""), "name": str(data.get("nickname") or "")}
        if channel == "kf":
            data = await self.call(account, "/cgi-bin/kf/customer/batchget",
                                   {"external_userid_list": [peer_id], "need_enter_session_context": 0})
            found = [c for c in data.get("customer_list") or []
                     if isinstance(c, dict) and c.get("external_userid") == peer_id]
            if not found:
                return {"unionid": "", "name": ""}
            return {"unionid": str(found[0].get("unionid") or ""), "name": str(found[0].get("nickname") or "")}
        data = await self.get(account, "/cgi-bin/externalcontact/get", {"external_userid": peer_id})
        contact = data.get("external_contact") or {}
        return {"unionid": str(contact.get("unionid") or ""), "name": str(contact.get("name") or "")}

    async def send(self, account: AccountInfo, api: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await self.call(account, SEND_PATHS[api], payload)

    async def kf_sync_msg(self, account: AccountInfo, *, cursor: str, token: str, open_kfid: str,
                          limit: int = 1000) -> dict[str, Any]:
        payload: dict[str, Any] = {"limit": limit, "open_kfid": open_kfid}
        if cursor:
            payload["cursor"] = cursor
        if token:
            payload["token"] = token
        return await self.call(account, "/cgi-bin/kf/sync_msg", payload)

    async def kf_service_state_trans(self, account: AccountInfo, *, open_kfid: str, external_userid: str,
                                     service_state: int, servicer_userid: str = "") -> dict[str, Any]:
        payload: dict[str, Any] = {"open_kfid": open_kfid, "external_userid": external_userid,
                                   "service_state": service_state}
        if servicer_userid:
            payload["servicer_userid"] = servicer_userid
        return await self.call(account, "/cgi-bin/kf/service_state/trans", payload)
