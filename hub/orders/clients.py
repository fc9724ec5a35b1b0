"""Platform API clients for pulling orders (pollers) and re-fetching them after a push.

Each talks to a configurable ``api_base`` (the real gateway by default, a stand-in in tests) with
that shop's credentials from ``order_sources`` (see ``sync.py``):

* Taobao TOP (facts §1.1): ``POST {api_base}`` form fields ``method, app_key, session, timestamp``
  (GMT+8), ``v=2.0, format=json, simplify=false, sign_method=md5``, ``sign`` =
  ``MD5(secret + k1v1k2v2… (sorted, sign excluded) + secret)`` upper-case hex.
  ``taobao.trades.sold.increment.get`` lists ids by modified time; ``taobao.trade.fullinfo.get``
  gives the detail.
* JD JOS (facts §2.1): ``POST {api_base}`` (``…/routerjson``) fields ``method, app_key,
  access_token, timestamp, v=2.0, 360buy_param_json``, same MD5 ``sign``. ``jingdong.pop.order.search``
  (``dateType=0`` = by modified time) returns full ``orderInfo`` objects; ``jingdong.pop.order.get``
  one order.
* Youzan (facts §3.1): ``POST {api_base}/api/youzan.trade.get/4.0.0?access_token=…`` JSON ``{"tid"}``.
* Douyin 抖店 (facts §4.1): ``POST {api_base}/order/orderDetail`` with ``app_key, method,
  access_token, param_json`` (sorted keys, no spaces), ``timestamp, v=2, sign_method=hmac-sha256``,
  ``sign`` = HMAC-SHA256(app_secret, app_secret + "app_key…method…param_json…timestamp…v2" + app_secret).

Errors: ``GatewayError`` (HTTP failure or the platform's error envelope; retry later);
``PayloadError`` when a returned order does not parse.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any, Callable

import aiohttp

from ..privacy.redact import redact_error, redact_text
from . import parse_order
from .model import GMT8, Order

TOP_GATEWAY = "https://gw.api.taobao.com/router/rest"
JD_GATEWAY = "https://api.jd.com/routerjson"
YOUZAN_GATEWAY = "https://open.youzanyun.com"
DOUYIN_GATEWAY = "https://openapi-fxg.jinritemai.com"
TOP_TRADE_FIELDS = ("tid,tid_str,status,type,seller_nick,buyer_nick,buyer_open_uid,created,pay_time,consign_time,"
                    "end_time,modified,payment,total_fee,post_fee,discount_fee,receiver_name,receiver_mobile,"
                    "receiver_phone,receiver_address,oaid,orders")
JD_OPTIONAL_FIELDS = ("orderId,venderId,orderState,orderTotalPrice,orderPayment,freightPrice,sellerDiscount,"
                      "orderStartTime,paymentConfirmTime,modified,orderEndTime,pin,open_id_buyer,waybill,"
                      "logisticsId,consigneeInfo,itemInfoList")


class GatewayError(Exception):
    """The platform could not be asked (network, HTTP status, error envelope): retry later."""


def gmt8_text(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), GMT8).strftime("%Y-%m-%d %H:%M:%S")


def md5_sign(secret: str, params: dict[str, str]) -> str:
    """TOP / JOS ``sign_method=md5``."""
    text = "".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "sign" and v is not None)
    return hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest().upper()


def douyin_sign(app_key: str, app_secret: str, method: str, param_json: str, timestamp: str) -> str:
    text = f"{app_secret}app_key{app_key}method{method}param_json{param_json}timestamp{timestamp}v2{app_secret}"
    return hmac.new(app_secret.encode(), text.encode(), hashlib.sha256).hexdigest()


class _Client:
    platform = ""
    default_base = ""

    def __init__(self, http: aiohttp.ClientSession, cfg: dict[str, Any], now: Callable[[], float]):
        self.http, self.cfg, self.now = http, cfg, now
        self.base = str(cfg.get("api_base") or self.default_base).rstrip("/")

    @property
    def source(self) -> str:
        """The watermark key: platform, app and shop/name."""
        ident = self.cfg.get("name") or self.cfg.get("shop_id") or self.cfg.get("app_key") or "default"
        return f"{self.platform}:{ident}"

    async def _post(self, url: str, **kw: Any) -> dict:
        try:
            async with self.http.post(url, **kw) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise GatewayError(redact_text(f"{self.platform} HTTP {resp.status}: {text[:200]}"))
        except aiohttp.ClientError as exc:  # its text names the URL, whose query may carry access_token
            raise GatewayError(f"{self.platform} unreachable: {redact_error(exc)}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise GatewayError(redact_text(f"{self.platform} answered non-JSON: {text[:200]}")) from None
        if not isinstance(data, dict):
            raise GatewayError(f"{self.platform} answered {type(data).__name__}, not an object")
        return data

    def parse(self, payload: Any) -> Order:
        return parse_order(self.platform, payload, shop_id=str(self.cfg.get("shop_id") or ""))


class TaobaoClient(_Client):
    platform, default_base = "taobao", TOP_GATEWAY

    async def call(self, method: str, **params: Any) -> dict:
        form = {"method": method, "app_key": str(self.cfg["app_key"]), "session": str(self.cfg.get("session", "")),
                "timestamp": gmt8_text(self.now()), "v": "2.0", "format": "json", "simplify": "false",
                "sign_method": "md5", **{k: str(v) for k, v in params.items()}}
        form["sign"] = md5_sign(str(self.cfg["app_secret"]), form)
        data = await self._post(self.base, data=form)
        if "error_response" in data:
            raise GatewayError(f"TOP {method}: {data['error_response']!r}"[:300])
        return data

    async def list_page(self, start: float, end: float, page: int, size: int) -> tuple[int, list[Any]]:
        data = await self.call("taobao.trades.sold.increment.get", fields="tid,tid_str,modified,status",
                               start_modified=gmt8_text(start), end_modified=gmt8_text(end), page_no=page,
                               page_size=size, use_has_next="false")
        body = data.get("trades_sold_increment_get_response") or {}
        trades = body.get("trades") or {}
        trades = trades.get("trade", []) if isinstance(trades, dict) else trades
        return int(body.get("total_results") or 0), list(trades or [])

    async def detail(self, item: Any) -> Order:
        tid = item.get("tid_str") or item.get("tid") if isinstance(item, dict) else item
        return await self.fetch(str(tid))

    async def fetch(self, order_id: str) -> Order:
        return self.parse(await self.call("taobao.trade.fullinfo.get", fields=TOP_TRADE_FIELDS, tid=order_id))


class JdClient(_Client):
    platform, default_base = "jd", JD_GATEWAY

    async def call(self, method: str, params: dict[str, Any]) -> dict:
        form = {"method": method, "app_key": str(self.cfg["app_key"]),
                "access_token": str(self.cfg.get("access_token", "")), "timestamp": gmt8_text(self.now()),
                "v": "2.0", "360buy_param_json": json.dumps(params, ensure_ascii=False, separators=(",", ":"))}
        form["sign"] = md5_sign(str(self.cfg["app_secret"]), form)
        data = await self._post(self.base, data=form)
        if "error_response" in data:
            raise GatewayError(f"JD {method}: {data['error_response']!r}"[:300])
        return data

    async def list_page(self, start: float, end: float, page: int, size: int) -> tuple[int, list[Any]]:
        data = await self.call("jingdong.pop.order.search", {
            "start_date": gmt8_text(start), "end_date": gmt8_text(end), "dateType": 0, "sortType": 1,
            "page": page, "page_size": size, "optional_fields": JD_OPTIONAL_FIELDS})
        result = (data.get("jingdong_pop_order_search_responce") or {}).get("searchorderinfo_result") or {}
        if not (result.get("apiResult") or {}).get("success", False):
            raise GatewayError(f"JD order search failed: {result.get('apiResult')!r}"[:300])
        return int(result.get("orderTotal") or 0), list(result.get("orderInfoList") or [])

    async def detail(self, item: Any) -> Order:
        return self.parse(item)  # the search already returns the full orderInfo

    async def fetch(self, order_id: str) -> Order:
        return self.parse(await self.call("jingdong.pop.order.get", {
            "order_id": order_id, "optional_fields": JD_OPTIONAL_FIELDS}))


class YouzanClient(_Client):
    platform, default_base = "youzan", YOUZAN_GATEWAY

    async def fetch(self, order_id: str) -> Order:
        data = await self._post(f"{self.base}/api/youzan.trade.get/4.0.0",
                                params={"access_token": str(self.cfg.get("access_token", ""))}, json={"tid": order_id})
        if data.get("success") is False or data.get("gw_err_resp"):
            raise GatewayError(f"Youzan trade.get: {data!r}"[:300])
        return self.parse(data.get("data") if isinstance(data.get("data"), dict) else data)


class DouyinClient(_Client):
    platform, default_base = "douyin", DOUYIN_GATEWAY

    async def fetch(self, order_id: str) -> Order:
        method, ts = "order.orderDetail", str(int(self.now()))
        param_json = json.dumps({"shop_order_id": order_id}, sort_keys=True, separators=(",", ":"))
        key, secret = str(self.cfg["app_key"]), str(self.cfg["app_secret"])
        form = {"app_key": key, "method": method, "access_token": str(self.cfg.get("access_token", "")),
                "param_json": param_json, "timestamp": ts, "v": "2", "sign_method": "hmac-sha256",
                "sign": douyin_sign(key, secret, method, param_json, ts)}
        data = await self._post(f"{self.base}/order/orderDetail", data=form)
        if data.get("err_no") not in (0, None):
            raise GatewayError(f"Douyin orderDetail: {data.get('err_no')!r} {data.get('message')!r}")
        return self.parse(data)


CLIENTS = {"taobao": TaobaoClient, "jd": JdClient, "youzan": YouzanClient, "douyin": DouyinClient}
