/* SLA and quality alerts on the agent console: a session with an open alert turns red in the list and
   in the chat header at once (alert.raised), and back when it is met (alert.cleared). Open alerts are
   loaded at start, after every reconnect and on resync (GET /api/alerts?mine=1). Also the top bar's
   notice of a reply that failed after its session closed (replyFailed, called by console.js). */
(function () {
  "use strict";
  var KIND = { first_reply: "首次响应超时", unanswered: "消息未回复超时", avg_reply: "平均响应超时", quality: "质检预警" };
  var open = new Map();  // alert id -> alert

  function bySession() {
    var out = new Map();
    open.forEach(function (a) {
      if (a.session_id == null) return;
      if (!out.has(a.session_id)) out.set(a.session_id, []);
      out.get(a.session_id).push(a);
    });
    return out;
  }

  function label(a) { return (KIND[a.kind] || a.kind) + (a.rule_name ? "（规则：" + a.rule_name + "）" : ""); }

  function paint() {
    var hub = window.Hub, map = bySession();
    Array.prototype.forEach.call(document.querySelectorAll("#session-list li.session"), function (li) {
      var alerts = map.get(Number(li.dataset.id)) || [];
      li.classList.toggle("sla-alert", alerts.length > 0);
      if (alerts.length) li.title = alerts.map(label).join("\n");
    });
    var head = document.querySelector("#chat-main .chat-head");
    if (!head || !hub) return;
    var mine = map.get(hub.state.currentId) || [];
    head.classList.toggle("sla-alert", mine.length > 0);
    var badge = document.getElementById("chat-alert");
    if (!badge) {
      badge = document.createElement("span");
      badge.id = "chat-alert";
      badge.className = "alert-badge";
      badge.setAttribute("role", "status");
      var title = head.querySelector(".chat-title");
      (title || head).appendChild(badge);
    }
    badge.hidden = !mine.length;
    badge.textContent = mine.length ? mine.map(label).join("；") : "";
    // an agent-wide alert (rolling average reply time): a red badge in the top bar
    var avg = Array.from(open.values()).filter(function (a) { return a.kind === "avg_reply"; });
    var top = document.getElementById("avg-alert"), me = document.querySelector(".topbar .me");
    if (!top && me) {
      top = document.createElement("span");
      top.id = "avg-alert";
      top.className = "alert-badge avg-alert";
      top.setAttribute("role", "status");
      me.parentNode.insertBefore(top, me);
    }
    if (top) {
      top.hidden = !avg.length;
      var d = avg.length && avg[0].detail || {};
      top.textContent = avg.length ? "平均响应 " + Math.round(d.average || 0) + " 秒，超过 " + Math.round(d.seconds || 0) + " 秒" : "";
    }
  }

  /** These are stream events too: the console's resume point counts them. False for one already
   * applied (a replay after a resume), which must not toast again. */
  function fresh(p) {
    return !(window.Hub && window.Hub.fresh) || window.Hub.fresh(p);
  }

  function load() {
    return fetch("/api/alerts?mine=1", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { alerts: [] }; })
      .then(function (body) {
        open.clear();
        (body.alerts || []).forEach(function (a) { if (a.state === "open") open.set(a.id, a); });
        paint();
      })
      .catch(function () { /* offline: the next connect loads again */ });
  }

  function wire() {
    var hub = window.Hub;
    if (!hub || !hub.socket) return;
    hub.socket.on("alert.raised", function (a) {
      if (!a || !fresh(a)) return;
      if (a.state === "open") {
        var known = open.has(a.id);  // the same alert via a room and the stream: one toast
        open.set(a.id, a);
        paint();
        if (!known && a.session_id != null && hub.toast) hub.toast(label(a), "error");
      }
    });
    hub.socket.on("alert.cleared", function (a) {
      if (!a || !fresh(a)) return;
      open.delete(a.id);
      paint();
    });
    hub.socket.on("alert.escalated", function (a) {  // an SLA rule's "notify" escalation, to this user
      if (!a || !fresh(a)) return;
      if (hub.toast) hub.toast("预警升级：" + label(a) + (a.session_id != null ? "（会话 #" + a.session_id + "）" : ""), "error");
    });
    hub.socket.on("connect", load);
    hub.socket.on("resync", load);  // the stream could not be replayed: what was raised or cleared meanwhile is lost
    // the list and the chat header are re-rendered often: paint again after each render
    var observer = new MutationObserver(function () { observer.disconnect(); paint(); observe(); });
    function observe() {
      var list = document.getElementById("session-list"), head = document.getElementById("chat-main");
      if (list) observer.observe(list, { childList: true });
      if (head) observer.observe(head, { attributes: true, subtree: true, childList: true, characterData: true });
    }
    observe();
    load();
  }

  // a reply that failed after its session closed (微信客服 reports some failures later): the top bar
  // names the customer and quotes the reply until the agent dismisses it
  function replyFailed(p) {
    var bar = document.getElementById("send-failed"), me = document.querySelector(".topbar .me");
    if (!bar) {
      bar = document.createElement("span");
      bar.id = "send-failed";
      bar.className = "alert-badge send-failed";
      bar.setAttribute("role", "alert");
      bar.appendChild(document.createElement("span")).className = "text";
      var x = bar.appendChild(document.createElement("button"));
      x.type = "button"; x.className = "dismiss"; x.textContent = "×"; x.title = "知道了";
      x.addEventListener("click", function () { bar.hidden = true; });
      (me ? me.parentNode : document.querySelector(".topbar")).insertBefore(bar, me);
    }
    var why = (p.error && p.error.errmsg) || "发送失败";
    bar.querySelector(".text").textContent = "回复未送达" + (p.customer ? "（" + p.customer + "）" : "") +
      (p.text ? "：「" + p.text + "」" : "") + "，原因：" + why;
    bar.hidden = false;
  }

  document.addEventListener("DOMContentLoaded", wire);
  window.HubAlerts = { open: open, paint: paint, load: load, replyFailed: replyFailed };
})();
