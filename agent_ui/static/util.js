/* scrm-hub console: small helpers shared by the other scripts (no framework, no build step).
 * Everything that shows user data goes through h()/text nodes: never innerHTML. */
(function () {
  "use strict";

  // CSRF (hub/csrf.py): every same-origin state-changing fetch carries the hub_csrf cookie's value
  function csrfToken() {
    var m = document.cookie.match(/(?:^|;\s*)hub_csrf=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  if (window.fetch && !window.fetch.hubCsrf) {
    var plainFetch = window.fetch;
    window.fetch = function (input, init) {
      init = init || {};
      var method = String(init.method || (input && input.method) || "GET").toUpperCase();
      var url = new URL(typeof input === "string" ? input : input.url, window.location.href);
      if (method !== "GET" && method !== "HEAD" && url.origin === window.location.origin && csrfToken()) {
        var headers = new Headers(init.headers || (typeof input === "string" ? undefined : input.headers));
        headers.set("X-CSRF-Token", csrfToken());
        init = Object.assign({}, init, { headers: headers });
      }
      return plainFetch.call(window, input, init);
    };
    window.fetch.hubCsrf = true;
  }

  /** h("div.cls1.cls2", {title: "x", onclick: fn, dataset: {id: 1}}, child, "text", [more]) */
  function h(spec, attrs) {
    var parts = String(spec).split(".");
    var el = document.createElement(parts[0] || "div");
    if (parts.length > 1) el.className = parts.slice(1).join(" ");
    var start = 1;
    if (attrs && typeof attrs === "object" && !(attrs instanceof Node) && !Array.isArray(attrs)) {
      start = 2;
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) return;
        if (k === "dataset") Object.keys(v).forEach(function (d) { el.dataset[d] = v[d]; });
        else if (k.slice(0, 2) === "on" && typeof v === "function") el.addEventListener(k.slice(2), v);
        else if (k === "className") el.className += (el.className ? " " : "") + v;
        else if (k === "text") el.textContent = v;
        else if (v === true) el.setAttribute(k, "");
        else el.setAttribute(k, String(v));
      });
    }
    for (var i = start; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, child) {
    if (child === undefined || child === null || child === false) return;
    if (Array.isArray(child)) { child.forEach(function (c) { append(el, c); }); return; }
    el.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }

  function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }
  function $(id) { return document.getElementById(id); }

  /** Only http(s) links and images are ever put into href/src. */
  function safeUrl(url) {
    if (typeof url !== "string") return null;
    var u = url.trim();
    return /^https?:\/\//i.test(u) ? u : null;
  }

  /** A random id that works on plain http too (crypto.randomUUID needs a secure context). */
  function uid() {
    var b = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(b);
    return "c" + Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  function pad(n) { return n < 10 ? "0" + n : "" + n; }

  // ---- times in the brand's timezone -------------------------------------------------------------
  // Every time shown, and every day boundary, is the brand's (the page's data-boot timezone, the one
  // today's figures and business hours use), whatever the browser's own clock: a supervisor abroad saw
  // alerts at 20:52 beside a header saying 09:53（Asia/Shanghai）, and a search for the brand's today
  // found nothing.
  var ZONE = (function () {
    try { return JSON.parse(document.body.dataset.boot || "{}").timezone || undefined; } catch (e) { return undefined; }
  })();
  var zoneFormat = (function () {
    var opts = { year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric",
      second: "numeric", hourCycle: "h23" };
    try { return new Intl.DateTimeFormat("en-US", Object.assign({ timeZone: ZONE }, opts)); } catch (e) {
      return new Intl.DateTimeFormat("en-US", opts);  // an unknown timezone name: the browser's
    }
  })();

  /** Epoch seconds -> {y, m (1-12), d, H, M, S} in the brand's timezone. */
  function parts(ts) {
    var out = {};
    zoneFormat.formatToParts(new Date(ts * 1000)).forEach(function (p) { out[p.type] = Number(p.value); });
    return { y: out.year, m: out.month, d: out.day, H: out.hour % 24, M: out.minute, S: out.second };
  }

  /** Epoch seconds of midnight starting day ``d`` of month ``m`` (1-12) of year ``y`` in the brand's timezone
   *  (days past the month's end roll over, as Date.UTC does). */
  function zoneMidnight(y, m, d) {
    var guess = Date.UTC(y, m - 1, d) / 1000;
    for (var i = 0; i < 2; i++) {
      var p = parts(guess), shownAs = Date.UTC(p.y, p.m - 1, p.d, p.H, p.M, p.S) / 1000;
      guess -= shownAs - Date.UTC(y, m - 1, d) / 1000;
    }
    return guess;
  }

  function dayKey(ts) { var p = parts(ts); return p.y * 10000 + p.m * 100 + p.d; }
  function dayOffset(ts, days) { var p = parts(ts); return dayKey(zoneMidnight(p.y, p.m, p.d + days) + 3600); }

  /** Epoch seconds -> "14:05" today, "昨天 14:05", "明天 14:05" (a ticket's due time), "3月2日 14:05",
   *  "2025/3/2 14:05". */
  function clock(ts) {
    if (!ts) return "";
    var p = parts(ts), key = dayKey(ts), today = dayKey(now());
    var hm = pad(p.H) + ":" + pad(p.M);
    if (key === dayOffset(now(), 1)) return "明天 " + hm;
    if (key === today) return hm;
    if (key === dayOffset(now(), -1)) return "昨天 " + hm;
    if (p.y === parts(now()).y) return p.m + "月" + p.d + "日 " + hm;
    return p.y + "/" + p.m + "/" + p.d + " " + hm;
  }

  /** Epoch seconds -> "今天", "昨天", "3月2日", "2025年3月2日" (day separators in the chat). */
  function day(ts) {
    var p = parts(ts), key = dayKey(ts);
    if (key >= dayKey(now())) return "今天";
    if (key === dayOffset(now(), -1)) return "昨天";
    var md = p.m + "月" + p.d + "日";
    return p.y === parts(now()).y ? md : p.y + "年" + md;
  }

  function fullTime(ts) {
    if (!ts) return "";
    var p = parts(ts);
    return p.y + "-" + pad(p.m) + "-" + pad(p.d) + " " + pad(p.H) + ":" + pad(p.M) + ":" + pad(p.S);
  }

  /** Seconds -> "45秒", "3:07", "1:02:03" (live waiting timers). */
  function duration(sec) {
    sec = Math.max(0, Math.floor(sec));
    if (sec < 60) return sec + "秒";
    var h = Math.floor(sec / 3600), m = Math.floor((sec % 3600) / 60), s = sec % 60;
    return h ? h + ":" + pad(m) + ":" + pad(s) : m + ":" + pad(s);
  }

  /** Integer fen -> "¥1,299.00" (string arithmetic: no float rounding). */
  function money(fen) {
    if (fen === undefined || fen === null || fen === "" || isNaN(Number(fen))) return "";
    var n = Math.round(Number(fen)), neg = n < 0;
    n = Math.abs(n);
    var yuan = String(Math.floor(n / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (neg ? "-¥" : "¥") + yuan + "." + pad(n % 100);
  }

  function now() { return Date.now() / 1000; }

  var LABELS = {
    channel: { wecom: "企业微信", oa: "公众号", kf: "微信客服" },
    state: { queued: "排队中", assigned: "待接入", active: "服务中", closed: "已结束", removed: "已移出" },
    status: { online: "在线", busy: "忙碌", away: "离开", offline: "离线" },
    delivery: { queued: "发送中", sending: "发送中", sent: "已送达", failed: "发送失败" },
    // why a send failed, by the platform's errcode (the hub's own codes: 2000001, 2000404); else its errmsg
    sendError: {
      45015: "客户超过48小时未互动，平台不再允许回复", 45047: "超出平台允许的连续回复条数", 45002: "内容过长",
      95018: "会话已结束或不在可回复状态", 2000001: "平台无法送达该客户", 2000404: "该账号已删除"
    },
    removed: {
      transferred: "会话已转接给其他同事", not_accepted: "超时未接入，会话已重新分配",
      unanswered: "客户等待过久，会话已重新分配", agent_offline: "你已离线，会话已重新排队",
      sla_breach: "超出服务时限，会话已由主管重新分配", agent_disabled: "你的账号已停用，会话已重新排队",
      erased: "该客户的个人信息已按要求删除，会话已移除"
    },
    identity: {
      openid: "OpenID", external_userid: "外部联系人", unionid: "UnionID", phone: "手机", mobile: "手机", taobao: "淘宝",
      jd: "京东", youzan: "有赞", douyin: "抖音", custom: "自定义", id: "ID"
    },
    order: {
      pending_payment: "待付款", paid: "已付款", shipped: "已发货", completed: "已完成",
      refunding: "退款中", refunded: "已退款", closed: "已关闭"
    },
    refund: { requested: "买家申请退款", refunding: "退款处理中", rejected: "卖家已拒绝退款", refunded: "已退款" },
    platform: { taobao: "淘宝", jd: "京东", youzan: "有赞", douyin: "抖音", custom: "自营" },
    closeReason: { resolved: "已解决", no_response: "客户无响应", duplicate: "重复会话", spam: "骚扰/无效", ended_on_platform: "已在企业微信中结束", unsubscribed: "客户已取消关注", contact_deleted: "好友关系已删除" },
    error: {
      forbidden: "这不是你的会话", session_closed: "会话已结束", agent_unavailable: "对方不在线或已满负荷",
      session_changed: "会话刚被他人处理（转接、结束或重新排队），请查看最新状态",
      unknown_session: "会话不存在", invalid_text: "消息内容无效", unauthorized: "登录已失效，请重新登录",
      internal: "服务器出错了，请稍后重试", timeout: "网络超时，请重试", invalid_target: "请选择转接对象",
      invalid_status: "状态无效", unknown_agent: "没有这个同事", unknown_group: "没有这个技能组",
      invalid_group: "技能组名称无效", no_customer: "该会话还没有关联客户", unknown_customer: "客户不存在",
      invalid_tags: "标签无效", invalid_tag: "标签无效", unknown_tag: "标签不存在",
      unknown_ticket: "工单不存在", ticket_closed: "工单已关闭", ticket_changed: "工单已被他人修改，请刷新后再试",
      unknown_conversation: "会话记录不存在", busy: "系统繁忙，请稍后重试"
    }
  };

  /** The agent's words for a refusal: its code's label; else, for a field's refusal (invalid_*) or a thing
   * gone (unknown_*), a general one rather than the server's English. */
  function errorText(ack) {
    if (!ack) return LABELS.error.timeout;
    var code = ack.error || "";
    if (LABELS.error[code]) return LABELS.error[code];
    if (/^invalid_/.test(code)) return "输入有误" + (ack.field ? "（" + ack.field + "）" : "") + "，请检查后重试";
    if (/^unknown_/.test(code)) return "要操作的对象不存在或已被删除，请刷新";
    return ack.message || code || "操作失败";
  }

  window.HubUtil = {
    h: h, clear: clear, $: $, safeUrl: safeUrl, uid: uid, clock: clock, day: day, fullTime: fullTime,
    dayKey: dayKey, zoneMidnight: zoneMidnight, zone: ZONE,
    duration: duration, money: money, now: now, LABELS: LABELS, errorText: errorText
  };
})();
