/* scrm-hub supervisor dashboard: one snapshot from GET /api/supervisor/dashboard, then live over Socket.IO
 * (dashboard.update, queue.changed, agent.status, alert.raised / alert.cleared). Waiting times tick locally
 * against the server's clock. Protocol: docs/realtime.md. */
(function () {
  "use strict";
  var U = window.HubUtil, h = U.h, $ = U.$, L = U.LABELS;
  var S = { snap: null, offset: 0, alerts: new Map(), alertsEnabled: null };

  // ---- formatting --------------------------------------------------------------------------------
  // figures to the nearest second (24.4 s showed 24秒 and 12.9 s 12秒); live waits tick down to the second
  function dur(sec) { return sec === null || sec === undefined ? "—" : U.duration(Math.round(sec)); }
  function pct(x) { return x === null || x === undefined ? "—" : (Math.round(x * 1000) / 10) + "%"; }
  function serverNow() { return Date.now() / 1000 + S.offset; }
  function agentName(id) {
    var a = (S.snap && S.snap.agents || []).find(function (x) { return x.id === id; });
    return a ? a.display_name : (id ? "#" + id : "—");
  }
  function setKpi(id, value, note, cls) {
    var el = $(id);
    el.querySelector("[data-v]").textContent = value;
    if (note !== undefined) el.querySelector("[data-n]").textContent = note;
    el.classList.remove("kpi-bad", "kpi-good");
    if (cls) el.classList.add(cls);
  }
  /** "#12": opens the session in the console (a new tab: the dashboard stays live). */
  function sessionLink(id) {
    return h("a.session-link", { href: "/console?session=" + id, target: "_blank", rel: "noopener",
      title: "在工作台中查看会话 #" + id }, "#" + id);
  }

  /** 确认: the alert is acknowledged (cleared for every supervisor; POST /api/alerts/{id}/clear). */
  function acknowledge(a, button) {
    button.disabled = true;
    fetch("/api/alerts/" + a.id + "/clear", { method: "POST", credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error(String(r.status));
      S.alerts.delete(a.id);
      renderAlerts();
    }).catch(function () { button.disabled = false; button.textContent = "确认失败，重试"; });
  }

  function row(cells, cls) {
    return h("tr" + (cls ? "." + cls : ""), cells.map(function (c) { return c instanceof Node ? h("td", c) : h("td", String(c)); }));
  }
  function fill(tableId, emptyId, rows) {
    var body = $(tableId).querySelector("tbody");
    U.clear(body);
    rows.forEach(function (r) { body.appendChild(r); });
    if (emptyId) $(emptyId).hidden = rows.length > 0;
    $(tableId).hidden = rows.length === 0 && !!emptyId;
  }

  // ---- open alerts mark agents and sessions red ----------------------------------------------------
  function alertedAgents() {
    var out = new Set();
    S.alerts.forEach(function (a) { if (a.agent_id) out.add(a.agent_id); });
    return out;
  }
  function alertedSessions() {
    var out = new Set();
    S.alerts.forEach(function (a) { if (a.session_id) out.add(a.session_id); });
    return out;
  }

  // ---- rendering -----------------------------------------------------------------------------------
  function render() {
    var s = S.snap;
    if (!s) return;
    var today = s.today || {}, total = today.total || {}, bots = today.bots || {};
    var online = s.agents.filter(function (a) { return a.status === "online"; }).length;
    var load = s.agents.reduce(function (n, a) { return n + a.load; }, 0);
    var cap = s.agents.filter(function (a) { return a.status === "online"; }).reduce(function (n, a) { return n + a.cap; }, 0);
    setKpi("kpi-queue", String(s.queue.total), groupsNote(s.queue.per_group), s.queue.total ? "kpi-bad" : null);
    setKpi("kpi-agents", online + " / " + s.agents.length, "接待中 " + load + " · 空位 " + Math.max(0, cap - load));
    setKpi("kpi-awaiting", String(s.awaiting_first_reply.length), "超过 " + dur(s.sla.first_reply) + " 标红",
      s.awaiting_first_reply.some(function (w) { return w.over_sla; }) ? "kpi-bad" : null);
    setKpi("kpi-sessions", String(total.sessions || 0), "已结束 " + (total.closed || 0));
    setKpi("kpi-frt", dur(total.first_response_p50) + " / " + dur(total.first_response_p90),
      "从转人工开始计时 · 机器人接待平均 " + dur(total.bot_time_avg));
    setKpi("kpi-reply", dur(total.avg_reply), (total.replies || 0) + " 条客户消息得到人工回复");
    setKpi("kpi-bot", pct(bots.bot_resolution_rate), (bots.resolved_by_bot || 0) + " / " + (bots.conversations || 0) + " 个对话");
    setKpi("kpi-handover", pct(bots.handover_rate), (bots.handed_over || 0) + " 个对话转人工");
    setKpi("kpi-csat", today.satisfaction === null || today.satisfaction === undefined ? "—" : String(today.satisfaction),
      today.satisfaction === null || today.satisfaction === undefined ? "暂无评价数据" : "");
    renderHealth(s.health || {});
    renderAgents(s, today);
    renderGroups(s, today);
    renderAwaiting(s);
    renderQueue(s);
    $("sla-note").textContent = "首次回复 SLA " + dur(s.sla.first_reply);
    $("dash-updated").textContent = s.figures_at ? "今日指标更新于 " + zoned(s.figures_at, today.timezone) : "";
    tick();
  }

  /** "14:05（Asia/Shanghai）": the time in the hub's timezone, which the label names (the browser's
   *  own clock may be another: a supervisor abroad saw their local time labelled Shanghai's). */
  function zoned(ts, tz) {
    try {
      var hm = new Intl.DateTimeFormat("zh-CN", { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: tz || undefined })
        .format(new Date(ts * 1000));
      return hm + (tz ? "（" + tz + "）" : "");
    } catch (err) { return U.clock(ts); }  // an unknown timezone name
  }

  function groupsNote(perGroup) {
    var keys = Object.keys(perGroup || {});
    return keys.length ? keys.map(function (g) { return g + " " + perGroup[g]; }).join(" · ") : "无人排队";
  }

  function renderHealth(hl) {
    var a = hl.answered_48h || {}, o = hl.linked_orders || {};
    var card = $("health-48h");
    card.querySelector("[data-v]").textContent = pct(a.share);
    card.querySelector("[data-bar]").style.width = a.share === null || a.share === undefined ? "0" : (a.share * 100) + "%";
    card.classList.toggle("healthy", a.healthy === true);
    card.classList.toggle("unhealthy", a.healthy === false);
    card.querySelector("[data-b]").textContent = a.healthy === true ? "健康" : a.healthy === false ? "需关注" : "暂无数据";
    card.querySelector("[data-n]").textContent = "近 " + (hl.days || 7) + " 天 " + (a.judged || 0) + " 条客户消息，" +
      (a.answered || 0) + " 条在 48 小时内得到回复" + (a.pending ? "，另有 " + a.pending + " 条仍在 48 小时内" : "") +
      "（高于 " + Math.round((a.threshold || 0.9) * 100) + "% 为健康）";
    var oc = $("health-orders");
    oc.querySelector("[data-v]").textContent = pct(o.share);
    oc.querySelector("[data-bar]").style.width = o.share === null || o.share === undefined ? "0" : (o.share * 100) + "%";
    oc.querySelector("[data-n]").textContent = "近 " + (hl.days || 7) + " 天 " + (o.orders || 0) + " 笔订单，" +
      (o.linked || 0) + " 笔已识别到客户";
  }

  function statusChip(status) {
    return h("span.status-chip", { dataset: { status: status } }, h("span.dot"), L.status[status] || status);
  }

  function renderAgents(s, today) {
    var per = today.agents || {}, red = alertedAgents();
    fill("agents-table", "agents-empty", s.agents.map(function (a) {
      var f = per[String(a.id)] || {};
      var full = a.cap > 0 && a.load >= a.cap;
      return row([h("span", { dataset: { agent: a.id } }, a.display_name), statusChip(a.status),
        h("span" + (full ? ".full" : ""), a.load + " / " + a.cap), a.groups.join("、") || "—",
        String(f.sessions || 0), dur(f.first_response_p50), dur(f.first_response_p90), dur(f.avg_reply)],
        red.has(a.id) ? "alert-agent" : null);
    }));
    $("agents-note").textContent = "在线 " + s.agents.filter(function (a) { return a.status === "online"; }).length +
      " · 忙碌 " + s.agents.filter(function (a) { return a.status === "busy"; }).length;
  }

  function renderGroups(s, today) {
    var per = today.groups || {}, names = new Set(Object.keys(per).concat(Object.keys(s.queue.per_group || {})));
    fill("groups-table", null, Array.from(names).sort().map(function (g) {
      var f = per[g] || {};
      return row([g, String((s.queue.per_group || {})[g] || 0), String(f.sessions || 0), String(f.closed || 0),
        String(f.awaiting_first_reply || 0), dur(f.first_response_p50), dur(f.first_response_p90), dur(f.avg_reply),
        dur(f.bot_time_avg)]);
    }));
    $("groups-note").textContent = names.size ? "" : "今天还没有会话";
  }

  function renderAwaiting(s) {
    var red = alertedSessions();
    fill("awaiting-table", "awaiting-empty", s.awaiting_first_reply.map(function (w) {
      var bad = w.over_sla || red.has(w.session_id);
      return row([sessionLink(w.session_id), agentName(w.agent_id), w.group || "—", w.first_message || "—",
        h("span.wait", { dataset: { since: w.handover_at, sla: s.sla.first_reply } }, dur(w.waiting))],
        bad ? "over-sla" : null);
    }));
  }

  function renderQueue(s) {
    fill("queue-table", "queue-empty", s.queue.waiting.map(function (q) {
      return row([sessionLink(q.session_id), q.group, q.priority ? "P" + q.priority : "普通",
        h("span.wait", { dataset: { since: q.enqueued_at } }, "")]);
    }));
    $("queue-note").textContent = s.queue.total > s.queue.waiting.length ? "显示前 " + s.queue.waiting.length + " / " + s.queue.total : "";
  }

  function renderAlerts() {
    var list = $("alerts");
    U.clear(list);
    var items = Array.from(S.alerts.values()).sort(function (a, b) { return b.raised_at - a.raised_at; });
    var KIND = { first_reply: "首次回复超时", unanswered: "客户未回复", avg_reply: "平均回复过慢", quality: "质检" };
    items.forEach(function (a) {
      var ack = h("button.btn.btn-sm.alert-ack", { type: "button", title: "确认已知晓（告警对所有主管清除）" }, "确认");
      ack.addEventListener("click", function () { acknowledge(a, ack); });
      list.appendChild(h("li.alert-open", { dataset: { alert: a.id } },
        h("div.alert-title", (KIND[a.kind] || a.kind) + (a.rule_name ? "（规则：" + a.rule_name + "）" : ""), ack),
        h("div.alert-meta.muted", [a.agent_id ? agentName(a.agent_id) : null, a.group || null,
          U.clock(a.raised_at)].filter(Boolean).join(" · "), a.session_id ? [" · 会话 ", sessionLink(a.session_id)] : null),
        a.detail && typeof a.detail === "string" ? h("div.alert-detail", a.detail) : null));
    });
    $("alerts-count").textContent = String(items.length);
    $("alerts-empty").hidden = items.length > 0;
    $("alerts-empty").textContent = S.alertsEnabled === false ? "告警功能未启用" : "暂无告警";
    if (S.snap) { renderAgents(S.snap, S.snap.today || {}); renderAwaiting(S.snap); }
  }

  // ---- ticking waits -------------------------------------------------------------------------------
  function tick() {
    if (!S.snap) return;
    var now = serverNow();
    document.querySelectorAll(".wait").forEach(function (el) {
      var since = Number(el.dataset.since), waited = now - since;
      el.textContent = dur(waited);
      if (el.dataset.sla) el.closest("tr").classList.toggle("over-sla", waited > Number(el.dataset.sla) || el.closest("tr").classList.contains("over-sla"));
    });
    var oldest = S.snap.queue.oldest_enqueued_at;
    setKpi("kpi-wait", oldest ? dur(now - oldest) : "—", oldest ? "自 " + U.clock(oldest) + " 起" : "无人排队",
      oldest && now - oldest > S.snap.sla.first_reply ? "kpi-bad" : null);
  }

  // ---- data ----------------------------------------------------------------------------------------
  function apply(snap) {
    var first = !S.snap;
    S.snap = snap;
    S.offset = snap.now - Date.now() / 1000;
    render();
    if (first) renderAlerts();  // alerts that came first named agents by number: the names are here now
  }

  function load() {
    return fetch("/api/supervisor/dashboard?fresh=1", { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) { window.location.assign("/login?next=/supervisor"); return null; }
      return r.ok ? r.json() : null;
    }).then(function (snap) { if (snap) apply(snap); });
  }

  function loadAlerts() {
    return fetch("/api/alerts?state=open", { credentials: "same-origin" }).then(function (r) {
      if (r.status === 404) { S.alertsEnabled = false; return null; }
      return r.ok ? r.json() : null;
    }).then(function (body) {
      if (body && Array.isArray(body.alerts)) {
        S.alertsEnabled = true;
        S.alerts.clear();
        body.alerts.forEach(function (a) { if (a.state === "open") S.alerts.set(a.id, a); });
      }
      renderAlerts();
    }).catch(function () { renderAlerts(); });
  }

  function setConn(state) {
    var el = $("conn");
    el.dataset.state = state;
    el.querySelector(".conn-label").textContent = { connected: "已连接", connecting: "连接中…", offline: "已断开，重连中…" }[state] || state;
  }

  function connect() {
    var socket = window.io({ reconnectionDelay: 800, reconnectionDelayMax: 5000, transports: ["websocket"] });
    socket.on("connect", function () { setConn("connected"); load(); loadAlerts(); });
    socket.on("disconnect", function () { setConn("offline"); });
    socket.on("connect_error", function (err) {
      if (err && err.message === "unauthorized") window.location.assign("/login?next=/supervisor");
      else setConn("offline");
    });
    socket.on("dashboard.update", apply);
    socket.on("agent.status", function (p) {
      if (!S.snap) return;
      S.snap.agents.forEach(function (a) { if (a.id === p.agent_id) a.status = p.status; });
      render();
    });
    socket.on("queue.changed", function (p) {
      if (!S.snap || !Array.isArray(p.queue)) return; // the group-room form carries no queue
      S.snap.queue.total = p.total;
      S.snap.queue.per_group = p.per_group;
      S.snap.queue.waiting = p.queue.map(function (q) {
        return { session_id: q.session_id, group: q.group, priority: q.priority, enqueued_at: q.enqueued_at };
      });
      // the whole queue's oldest (the listed head, in priority order, may be VIPs queued later)
      S.snap.queue.oldest_enqueued_at = p.oldest_enqueued_at !== undefined ? p.oldest_enqueued_at
        : p.queue.length ? Math.min.apply(null, p.queue.map(function (q) { return q.enqueued_at; })) : null;
      var byId = new Map((p.agents || []).map(function (a) { return [a.id, a]; }));
      S.snap.agents.forEach(function (a) {
        var b = byId.get(a.id);
        if (b) { a.status = b.status; a.load = b.load; a.cap = b.cap; }
      });
      render();
    });
    socket.on("alert.raised", function (a) { S.alertsEnabled = true; S.alerts.set(a.id, a); renderAlerts(); });
    socket.on("alert.cleared", function (a) { S.alerts.delete(a.id); renderAlerts(); });
  }

  function wire() {
    $("logout").addEventListener("click", function () {
      fetch("/api/logout", { method: "POST", credentials: "same-origin" }).finally(function () { window.location.assign("/login"); });
    });
    connect();
    setInterval(tick, 1000);
  }

  window.HubDashboard = { state: S, render: render, load: load };
  document.addEventListener("DOMContentLoaded", wire);
})();
