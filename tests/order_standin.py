"""A stand-in for the e-commerce platforms' gateways: just enough of Taobao TOP, JD JOS, Youzan and
Douyin 抖店 for the hub's pull and re-fetch calls, with the signatures checked.

    standin = OrderStandin()                          # credentials below
    server = await aiohttp_server(standin.app()); standin.base_url = ...
    standin.taobao[tid] = trade                      # the `trade` object of trade.fullinfo.get
    standin.fail_once.add(("taobao.trade.fullinfo.get", tid))   # that call answers HTTP 500 once

Routes: ``POST /router/rest`` (TOP: ``taobao.trades.sold.increment.get`` — filtered by ``modified``
within [start_modified, end_modified], sorted by modified DESC, paged by ``page_no``/``page_size`` —
and ``taobao.trade.fullinfo.get``), ``POST /routerjson`` (JD: ``jingdong.pop.order.search`` with
``dateType=0``, ``jingdong.pop.order.get``), ``POST /api/youzan.trade.get/4.0.0`` and
``POST /order/orderDetail`` (Douyin). Every call is logged in ``calls``.
"""
from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from aiohttp import web

GMT8 = timezone(timedelta(hours=8))
TB_KEY, TB_SECRET, TB_SESSION = "12345678", "tb-secret", "tb-session"
JD_KEY, JD_SECRET, JD_TOKEN = "jd-app-key", "jd-secret", "jd-token"
YZ_ID, YZ_SECRET, YZ_TOKEN = "example-client-id", "example-client-secret", "yz-token"
DY_KEY, DY_SECRET, DY_TOKEN = "7100000000000000001", "dy-app-secret", "dy-token"


def gmt8_epoch(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=GMT8).timestamp()


def md5_sign(secret: str, params: dict[str, str]) -> str:
    text = "".join(f"{k}{v}" for k, v in sorted(params.items()) if k != "sign")
    return hashlib.md5(f"{secret}{text}{secret}".encode()).hexdigest().upper()


class OrderStandin:
    def __init__(self) -> None:
        self.base_url = ""
        self.taobao: dict[str, dict] = {}  # tid -> trade (fullinfo)
        self.jd: dict[str, dict] = {}  # orderId -> orderInfo
        self.youzan: dict[str, dict] = {}  # tid -> full_order_info
        self.douyin: dict[str, dict] = {}  # order_id -> shop_order_detail
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.fail_once: set[tuple[str, str]] = set()  # (method, order id) -> HTTP 500 once
        self.delay = 0.0  # seconds each Douyin order detail takes

    def _fail(self, method: str, key: str) -> bool:
        if (method, key) in self.fail_once:
            self.fail_once.discard((method, key))
            return True
        return False

    # ------------------------------------------------------------ Taobao TOP
    async def top(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if form.get("app_key") != TB_KEY or form.get("session") != TB_SESSION or \
                form.get("sign") != md5_sign(TB_SECRET, form) or form.get("sign_method") != "md5":
            return web.json_response({"error_response": {"code": 25, "msg": "Invalid signature"}})
        gmt8_epoch(form["timestamp"])  # the format TOP requires (GMT+8 text)
        method = form.get("method", "")
        self.calls.append((method, form))
        if method == "taobao.trades.sold.increment.get":
            start, end = gmt8_epoch(form["start_modified"]), gmt8_epoch(form["end_modified"])
            if end - start > 86400:
                return web.json_response({"error_response": {"code": 40, "msg": "window over one day"}})
            hits = [t for t in self.taobao.values() if start <= gmt8_epoch(t["modified"]) <= end]
            hits.sort(key=lambda t: (gmt8_epoch(t["modified"]), t["tid_str"]), reverse=True)
            page, size = int(form.get("page_no", 1)), int(form.get("page_size", 40))
            chunk = hits[(page - 1) * size: page * size]
            return web.json_response({"trades_sold_increment_get_response": {
                "total_results": len(hits), "trades": {"trade": [
                    {"tid": int(t["tid_str"]), "tid_str": t["tid_str"], "modified": t["modified"],
                     "status": t["status"]} for t in chunk]}}})
        if method == "taobao.trade.fullinfo.get":
            tid = form.get("tid", "")
            if self._fail(method, tid):
                return web.Response(status=500, text="gateway hiccup")
            if tid not in self.taobao:
                return web.json_response({"error_response": {"code": 15, "msg": "no such trade"}})
            return web.json_response({"trade_fullinfo_get_response": {"trade": copy.deepcopy(self.taobao[tid])}})
        return web.json_response({"error_response": {"code": 22, "msg": f"unknown method {method}"}})

    # ------------------------------------------------------------ JD JOS
    async def jos(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        if form.get("app_key") != JD_KEY or form.get("access_token") != JD_TOKEN or \
                form.get("sign") != md5_sign(JD_SECRET, form):
            return web.json_response({"error_response": {"code": "19", "zh_desc": "sign error"}})
        method, params = form.get("method", ""), json.loads(form.get("360buy_param_json") or "{}")
        self.calls.append((method, params))
        if method == "jingdong.pop.order.search":
            if params.get("dateType") != 0:
                return web.json_response({"error_response": {"code": "60", "zh_desc": "expected dateType 0"}})
            start, end = gmt8_epoch(params["start_date"]), gmt8_epoch(params["end_date"])
            hits = [o for o in self.jd.values() if start <= gmt8_epoch(o["modified"]) <= end]
            hits.sort(key=lambda o: (gmt8_epoch(o["modified"]), o["orderId"]), reverse=params.get("sortType") == 1)
            page, size = int(params.get("page", 1)), int(params.get("page_size", 20))
            if self._fail(method, str(page)):
                return web.Response(status=500, text="gateway hiccup")
            return web.json_response({"jingdong_pop_order_search_responce": {"code": "0", "searchorderinfo_result": {
                "apiResult": {"success": True}, "orderTotal": len(hits),
                "orderInfoList": copy.deepcopy(hits[(page - 1) * size: page * size])}}})
        if method == "jingdong.pop.order.get":
            info = self.jd.get(str(params.get("order_id")))
            return web.json_response({"jingdong_pop_order_get_responce": {"code": "0", "orderDetailInfo": {
                "apiResult": {"success": info is not None}, "orderInfo": copy.deepcopy(info)}}})
        return web.json_response({"error_response": {"code": "22", "zh_desc": f"unknown method {method}"}})

    # ------------------------------------------------------------ Youzan, Douyin
    async def youzan_get(self, request: web.Request) -> web.Response:
        if request.query.get("access_token") != YZ_TOKEN:
            return web.json_response({"gw_err_resp": {"err_code": 4201, "err_msg": "invalid token"}})
        tid = str((await request.json()).get("tid"))
        self.calls.append(("youzan.trade.get", {"tid": tid}))
        if self._fail("youzan.trade.get", tid):
            return web.Response(status=500, text="gateway hiccup")
        full = self.youzan.get(tid)
        if full is None:
            return web.json_response({"success": False, "code": 101300001, "message": "no such trade"})
        return web.json_response({"success": True, "code": 200, "data": {"full_order_info": copy.deepcopy(full)}})

    async def douyin_detail(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        text = (f"{DY_SECRET}app_key{form.get('app_key')}method{form.get('method')}param_json{form.get('param_json')}"
                f"timestamp{form.get('timestamp')}v2{DY_SECRET}")
        expected = hmac.new(DY_SECRET.encode(), text.encode(), hashlib.sha256).hexdigest()
        if form.get("app_key") != DY_KEY or form.get("access_token") != DY_TOKEN or form.get("sign") != expected:
            return web.json_response({"err_no": 30001, "message": "sign error"})
        params = json.loads(form["param_json"])
        if form["param_json"] != json.dumps(params, sort_keys=True, separators=(",", ":")):
            return web.json_response({"err_no": 30002, "message": "param_json must be sorted, no spaces"})
        order_id = str(params.get("shop_order_id"))
        self.calls.append(("order.orderDetail", params))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self._fail("order.orderDetail", order_id):
            return web.Response(status=500, text="gateway hiccup")
        detail = self.douyin.get(order_id)
        if detail is None:
            return web.json_response({"err_no": 10, "message": "no such order"})
        return web.json_response({"err_no": 0, "message": "success",
                                  "data": {"shop_order_detail": copy.deepcopy(detail)}})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/router/rest", self.top)
        app.router.add_post("/routerjson", self.jos)
        app.router.add_post("/api/youzan.trade.get/4.0.0", self.youzan_get)
        app.router.add_post("/order/orderDetail", self.douyin_detail)
        return app

    def sources(self, **extra: Any) -> dict[str, Any]:
        """An ``order_sources`` setting pointing every platform at this stand-in."""
        base = self.base_url
        cfg: dict[str, Any] = {
            "webhook_secrets": ["hub-webhook-secret"],
            "youzan": {"client_id": YZ_ID, "client_secret": YZ_SECRET, "api_base": base, "access_token": YZ_TOKEN},
            "douyin": {"app_key": DY_KEY, "app_secret": DY_SECRET, "api_base": base, "access_token": DY_TOKEN},
            "taobao": {"app_key": TB_KEY, "app_secret": TB_SECRET, "session": TB_SESSION,
                       "api_base": f"{base}/router/rest", "shop_id": "tb-shop"},
            "jd": {"app_key": JD_KEY, "app_secret": JD_SECRET, "access_token": JD_TOKEN,
                   "api_base": f"{base}/routerjson", "shop_id": "jd-shop"},
            "poll_interval": 0,
        }
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
        return cfg
