/* scrm-hub console: work orders (工单). "转工单" in the session header opens a form that creates a ticket
 * from the open session (POST /api/tickets); "工单" in the top bar lists the tickets of the agent's groups and
 * their own, with the status moves. Live: ticket.created / ticket.updated / ticket.overdue (docs/realtime.md). */
(function () {
  "use strict";
  var U = window.HubUtil, h = U.h, $ = U.$;
  var STATUS = { open: "待处理", in_progress: "处理中", resolved: "已解决", closed: "已关闭" };
  var PRIORITY = { low: "低", normal: "普通", high: "高", urgent: "紧急" };
  var MOVES = { open: [["in_progress", "开始处理"]], in_progress: [["resolved", "标记已解决"]],
    resolved: [["closed", "关闭"], ["in_progress", "重新打开"]], closed: [] };
  var ERRORS = { invalid_title: "请填写标题", invalid_type: "请选择工单类型", forbidden: "没有权限",
    invalid_transition: "当前状态不能这样操作", ticket_closed: "工单已关闭", unauthorized: "登录已失效，请重新登录" };
  var T = { types: [], tickets: new Map(), overdue: new Set() };

  function toast(msg, kind) { if (window.Hub && window.Hub.toast) window.Hub.toast(msg, kind); }
  function api(method, url, body) {
    return fetch(url, { method: method, credentials: "same-origin",
      headers: body ? { "Content-Type": "application/json" } : undefined, body: body ? JSON.stringify(body) : undefined })
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) { return { ok: r.ok, status: r.status, body: j }; }); })
      .catch(function () { return { ok: false, status: 0, body: { error: "offline", message: "网络错误，请重试" } }; });
  }
  function errText(res) { return ERRORS[res.body.error] || res.body.message || "操作失败"; }

  function loadTypes() {
    return api("GET", "/api/ticket-types").then(function (res) {
      if (res.ok) T.types = res.body.types.filter(function (t) { return t.enabled; });
    });
  }

  // ---- a modal built here (the console's markup stays small) ---------------------------------------
  function modal(id, title, body, foot) {
    var old = $(id);
    if (old) old.remove();
    var close = function () {
      var m = $(id), reply = $("reply");
      if (m) m.remove();
      if (reply && !reply.disabled && (!document.activeElement || document.activeElement === document.body)) reply.focus();
    };
    var el = h("div.modal-backdrop", { id: id },
      h("div.modal", { role: "dialog", "aria-modal": "true", "aria-label": title },
        h("div.modal-head", h("h3", title), h("button.icon-btn", { type: "button", "aria-label": "关闭", onclick: close }, "×")),
        h("div.modal-body", body), foot ? h("div.modal-foot", foot) : null));
    el.addEventListener("click", function (ev) { if (ev.target === el) close(); });
    el.addEventListener("keydown", function (ev) { if (ev.key === "Escape") { ev.stopPropagation(); close(); } });
    document.body.appendChild(el);
    // focus inside, so Esc (heard on the dialog) closes it: it stayed on the button behind, which opened it
    (el.querySelector(".modal-body input, .modal-body select, .modal-body textarea") || el.querySelector(".icon-btn")).focus();
    return { el: el, close: close };
  }

  // ---- create from the open session ----------------------------------------------------------------
  function openCreate() {
    var e = window.Hub && window.Hub.state.current();
    if (!e) { toast("请先选择一个会话", "error"); return; }
    loadTypes().then(function () {
      var type = h("select", { id: "ticket-type" }, T.types.map(function (t) {
        return h("option", { value: t.name }, t.label + "（" + t.due_hours + " 小时内）");
      }));
      var prio = h("select", { id: "ticket-priority" }, h("option", { value: "" }, "按类型默认"),
        Object.keys(PRIORITY).map(function (p) { return h("option", { value: p }, PRIORITY[p]); }));
      var title = h("input", { id: "ticket-title", type: "text", maxlength: "200", placeholder: "例如：商品破损申请退货" });
      var desc = h("textarea", { id: "ticket-desc", rows: "4", maxlength: "4000", placeholder: "问题经过、订单号、客户诉求" });
      var err = h("p.form-error", { id: "ticket-error", role: "alert", hidden: true });
      var submit = h("button.btn.btn-primary", { type: "button", id: "ticket-submit" }, "创建工单");
      var m = modal("ticket-dialog", "转工单", [
        h("label.field", h("span", "类型"), type), h("label.field", h("span", "优先级"), prio),
        h("label.field", h("span", "标题"), title), h("label.field", h("span", "描述"), desc), err],
        [h("button.btn", { type: "button", onclick: function () { m.close(); } }, "取消"), submit]);
      title.value = Array.from(e.s.first_message || "").slice(0, 60).join("");  // characters: an emoji is two units
      title.focus();
      submit.addEventListener("click", function () {
        submit.disabled = true;
        api("POST", "/api/tickets", { session_id: e.s.id, type: type.value, title: title.value,
          description: desc.value, priority: prio.value || undefined }).then(function (res) {
          submit.disabled = false;
          if (!res.ok) { err.textContent = errText(res); err.hidden = false; return; }
          T.tickets.set(res.body.id, res.body);
          m.close();
          updateBadge();
          toast("工单 #" + res.body.id + " 已创建，分配到 " + res.body.group, "ok");
        });
      });
    });
  }

  // ---- the list ------------------------------------------------------------------------------------
  function openList() {
    api("GET", "/api/tickets?status=open,in_progress,resolved&limit=100").then(function (res) {
      if (!res.ok) { toast(errText(res), "error"); return; }
      T.tickets = new Map(res.body.tickets.map(function (t) { return [t.id, t]; }));
      var list = h("ul.pick-list", { id: "ticket-list" });
      var m = modal("tickets-dialog", "我的工单", [list], [h("button.btn", { type: "button", onclick: function () { m.close(); } }, "关闭")]);
      renderList();
      updateBadge();
      return m;
    });
  }

  function renderList() {
    var list = $("ticket-list");
    if (!list) return;
    U.clear(list);
    var items = Array.from(T.tickets.values()).filter(function (t) { return t.status !== "closed"; })
      .sort(function (a, b) { return (b.overdue_at ? 1 : 0) - (a.overdue_at ? 1 : 0) || (a.due_at || 0) - (b.due_at || 0); });
    if (!items.length) list.appendChild(h("li.empty-note", "没有进行中的工单"));
    items.forEach(function (t) {
      var overdue = !!t.overdue_at && (t.status === "open" || t.status === "in_progress");
      list.appendChild(h("li" + (overdue ? ".ticket-overdue" : ""), { dataset: { ticket: t.id } },
        h("div", h("strong", "#" + t.id + " " + t.title), " ",
          h("span.badge.plat", STATUS[t.status] || t.status), " ", h("span.badge.plat", PRIORITY[t.priority] || t.priority),
          overdue ? h("span.unread", "已超时") : null),
        h("div.muted", t.group + (t.due_at ? " · 截止 " + U.clock(t.due_at) : "")),
        h("div", (MOVES[t.status] || []).map(function (mv) {
          return h("button.btn.btn-sm", { type: "button", dataset: { move: mv[0] }, onclick: function () { move(t.id, mv[0]); } }, mv[1]);
        }))));
    });
  }

  function move(id, status) {
    api("POST", "/api/tickets/" + id + "/transition", { status: status }).then(function (res) {
      if (!res.ok) { toast(errText(res), "error"); return; }
      T.tickets.set(id, res.body);
      renderList();
      updateBadge();
    });
  }

  function updateBadge() {
    var btn = $("tickets-btn");
    if (!btn) return;
    var overdue = Array.from(T.tickets.values()).filter(function (t) {
      return t.overdue_at && (t.status === "open" || t.status === "in_progress");
    }).length;
    btn.textContent = overdue ? "工单（" + overdue + " 超时）" : "工单";
    btn.classList.toggle("btn-danger-ghost", overdue > 0);
  }

  function onTicket(kind) {
    return function (p) {
      var t = p && p.ticket;
      if (!t) return;
      // the user's stream copy is numbered: counted for the resume point (a replayed one is dropped)
      if (typeof p.seq === "number" && window.Hub && window.Hub.fresh && !window.Hub.fresh(p)) return;
      var before = T.tickets.get(t.id);
      if (before && before.updated_at > t.updated_at) return; // the same event via the group room and the stream
      T.tickets.set(t.id, t);
      if (kind === "overdue" && !T.overdue.has(t.id)) {
        T.overdue.add(t.id);
        toast("工单 #" + t.id + "「" + t.title + "」已超时", "error");
      }
      renderList();
      updateBadge();
    };
  }

  function wire() {
    var create = $("ticket-btn"), list = $("tickets-btn");
    if (create) create.addEventListener("click", openCreate);
    if (list) list.addEventListener("click", openList);
    var socket = window.Hub && window.Hub.socket;
    if (socket) {
      socket.on("ticket.created", onTicket("created"));
      socket.on("ticket.updated", onTicket("updated"));
      socket.on("ticket.overdue", onTicket("overdue"));
    }
    api("GET", "/api/tickets?status=open,in_progress&limit=100").then(function (res) {
      if (res.ok) res.body.tickets.forEach(function (t) { T.tickets.set(t.id, t); });
      updateBadge();
    });
  }

  window.HubTickets = { state: T, openCreate: openCreate, openList: openList };
  document.addEventListener("DOMContentLoaded", wire);
})();
