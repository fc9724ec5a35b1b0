/* scrm-hub console: the transfer and close dialogs and the quick-reply picker. */
(function () {
  "use strict";
  var U = window.HubUtil, R = window.HubRender, $ = U.$, h = U.h, L = U.LABELS;
  var Hub = window.Hub, S = Hub.state;
  var pick = { kind: "agent", value: null };
  var lastFocus = null;
  var target = { transfer: null, close: null };  // the session a dialog was opened for: the one it acts on

  function openModal(id) {
    lastFocus = document.activeElement;
    $(id).hidden = false;
    var first = $(id).querySelector("input:not([hidden]), textarea, button.tab.active, button:not([data-close])");
    if (first) first.focus();
  }

  function closeModal(id) {
    $(id).hidden = true;
    if (lastFocus && lastFocus.focus) lastFocus.focus();
  }

  /** Esc: close whatever is open (dialogs first, then the quick-reply picker). True when something closed. */
  function closeTop() {
    var open = ["transfer-dialog", "close-dialog"].filter(function (id) { return !$(id).hidden; });
    if (open.length) { open.forEach(closeModal); return true; }
    if (!$("quick-pop").hidden) { toggleQuick(false); return true; }
    return false;
  }

  /** A reply of the session not yet confirmed (sending, or unsent with 重试): transferring or closing
   * now would drop it without a word. True (and says why) when that is the case. */
  function replyPending(e) {
    var n = e.pend.filter(function (p) { return p.state === "sending" || p.state === "unsent"; }).length;
    if (n) Hub.toast("还有 " + n + " 条回复未发出（发送中或待重试），请先等它发出或重试成功", "warn");
    return n > 0;
  }

  function showError(id, msg) { var el = $(id); el.textContent = msg || ""; el.hidden = !msg; }

  /** After a transfer or close: the session leaves the list and the next one opens. */
  function finish(e, message) {
    var ids = S.order(), i = ids.indexOf(e.s.id), next = ids[i + 1] !== undefined ? ids[i + 1] : ids[i - 1];
    S.sessions.delete(e.s.id);
    if (S.currentId === e.s.id) S.currentId = null;
    $("reply").value = "";
    if (next !== undefined && S.sessions.has(next)) Hub.open(next);
    else { Hub.call("viewing", {}); Hub.renderAll(); }
    Hub.toast(message, "ok");
  }

  // ---- transfer --------------------------------------------------------------------------------
  function setTab(kind) {
    pick = { kind: kind, value: null };
    Array.prototype.forEach.call(document.querySelectorAll("#transfer-dialog .tab"), function (t) {
      t.classList.toggle("active", t.dataset.tab === kind);
    });
    $("transfer-agents").hidden = kind !== "agent";
    $("transfer-groups").hidden = kind !== "group";
    renderTargets();
  }

  function renderTargets() {
    var agents = U.clear($("transfer-agents")), groups = U.clear($("transfer-groups"));
    var list = S.agents.filter(function (a) { return a.id !== S.me.id; });
    list.sort(function (a, b) { return (a.status === "online" ? 0 : 1) - (b.status === "online" ? 0 : 1) || a.load - b.load; });
    list.forEach(function (a) {
      var full = a.load >= a.cap, ok = a.status === "online" && !full;
      var why = a.status !== "online" ? L.status[a.status] || a.status : full ? "已满" : "";
      agents.appendChild(h("li", h("button.pick" + (pick.value === a.id ? ".picked" : ""), {
        type: "button", disabled: !ok, dataset: { agent: a.id }, title: ok ? "转给 " + a.name : a.name + "：" + why
      },
        h("span.avatar.sm", R.initial(a.name)),
        h("span.pick-main", h("span.pick-name", a.name), h("span.pick-sub", (a.groups || []).join("、") || "无技能组")),
        h("span.pick-side", h("span.status-dot.s-" + a.status), L.status[a.status] || a.status,
          h("span.load" + (full ? ".full" : ""), a.load + "/" + a.cap)))));
    });
    if (!list.length) agents.appendChild(h("li.pick-none", "暂无其他同事"));
    var names = S.groups.slice();
    Object.keys(S.queue).forEach(function (g) { if (names.indexOf(g) < 0) names.push(g); });
    names.forEach(function (g) {
      var online = S.agents.filter(function (a) { return a.status === "online" && (a.groups || []).indexOf(g) >= 0; }).length;
      groups.appendChild(h("li", h("button.pick" + (pick.value === g ? ".picked" : ""), { type: "button", dataset: { group: g } },
        h("span.avatar.sm.grp", "组"),
        h("span.pick-main", h("span.pick-name", g), h("span.pick-sub", online + " 人在线")),
        h("span.pick-side", S.queue[g] ? S.queue[g] + " 人排队" : "无排队"))));
    });
    if (!names.length) groups.appendChild(h("li.pick-none", "暂无技能组"));
    $("transfer-submit").disabled = pick.value === null;
  }

  function openTransfer() {
    var e = S.current();
    if (!e || e.gone) return;
    if (replyPending(e)) return;
    target.transfer = e.s.id;
    pick = { kind: "agent", value: null };
    $("transfer-note").value = "";
    showError("transfer-error", "");
    setTab("agent");
    openModal("transfer-dialog");
    Hub.loadAgents().then(function (ack) {
      if (ack && !ack.ok) showError("transfer-error", "同事列表加载失败：" + U.errorText(ack));
      renderTargets();
    });
  }

  function submitTransfer() {
    var e = S.sessions.get(target.transfer);
    if (!e || pick.value === null) return;
    if (replyPending(e)) return;
    var data = { session_id: e.s.id, note: $("transfer-note").value.trim() };
    var label;
    if (pick.kind === "agent") {
      data.to_agent = pick.value;
      label = (S.agents.filter(function (a) { return a.id === pick.value; })[0] || {}).name;
    } else {
      data.to_group = pick.value;
      label = "技能组 " + pick.value;
    }
    $("transfer-submit").disabled = true;
    e.closingByMe = true;
    var addedSeq = e.addedSeq;
    Hub.call("transfer", data).then(function (ack) {
      $("transfer-submit").disabled = false;
      if (!ack.ok) { e.closingByMe = false; showError("transfer-error", "转接失败：" + U.errorText(ack)); Hub.loadAgents().then(renderTargets); return; }
      closeModal("transfer-dialog");
      // nobody else could take it (a group of one online): the hub gave it back, its session.new came already
      var back = S.sessions.get(e.s.id);
      if (back && !back.gone && back.addedSeq !== addedSeq && back.s.agent_id === S.me.id) {
        back.closingByMe = false;
        Hub.renderAll();
        Hub.toast("暂无其他同事可接，会话已回到你这里", "warn");
        return;
      }
      finish(e, "已转接给 " + label);
    });
  }

  // ---- close -----------------------------------------------------------------------------------
  function openClose() {
    var e = S.current();
    if (!e || e.gone) return;
    if (replyPending(e)) return;
    target.close = e.s.id;
    document.querySelector("input[name=close-reason][value=resolved]").checked = true;
    $("close-other").hidden = true;
    $("close-other").value = "";
    showError("close-error", "");
    openModal("close-dialog");
  }

  function submitClose() {
    var e = S.sessions.get(target.close);
    if (!e || replyPending(e)) return;
    var reason = document.querySelector("input[name=close-reason]:checked").value;
    if (reason === "other") {
      reason = $("close-other").value.trim();
      if (!reason) { showError("close-error", "请填写结束原因"); $("close-other").focus(); return; }
    }
    $("close-submit").disabled = true;
    e.closingByMe = true;
    Hub.call("close", { session_id: e.s.id, reason: reason }).then(function (ack) {
      $("close-submit").disabled = false;
      if (!ack.ok) { e.closingByMe = false; showError("close-error", "结束失败：" + U.errorText(ack)); return; }
      closeModal("close-dialog");
      finish(e, "会话已结束");
    });
  }

  // ---- quick replies ---------------------------------------------------------------------------
  function toggleQuick(show) {
    var pop = $("quick-pop");
    show = show === undefined ? pop.hidden : show;
    if (show && $("reply").disabled) return;
    pop.hidden = !show;
    $("quick-btn").classList.toggle("active", show);
    if (show) { $("quick-filter").value = ""; R.renderQuick(S); $("quick-filter").focus(); }
    else if (!$("reply").disabled && (document.activeElement === document.body || pop.contains(document.activeElement))) {
      $("reply").focus();  // closed with Esc: the agent's next keys went nowhere
    }
  }

  function pickQuick(i) {
    var r = S.quickReplies[i];
    toggleQuick(false);
    if (r) Hub.insertText(r.text);
  }

  // ---- customer tags -----------------------------------------------------------------------------
  function tag(change) {
    var e = S.current();
    if (!e) return;
    Hub.call("tag", Object.assign({ session_id: e.s.id }, change)).then(function (ack) {
      if (!ack.ok) { Hub.toast("标签保存失败：" + U.errorText(ack), "error"); return; }
      e.customer = Object.assign({}, e.customer || {}, { tags: ack.tags || [] });
      if (S.currentId === e.s.id) R.renderProfile(S);
      if (change.add) { var input = $("tag-input"); if (input) { input.hidden = false; input.focus(); } }
    });
  }

  function wireTags() {
    var pane = $("profile");
    pane.addEventListener("click", function (ev) {
      var x = ev.target.closest("[data-untag]");
      if (x) { tag({ remove: [x.dataset.untag] }); return; }
      if (ev.target.closest("#tag-add")) { var input = $("tag-input"); input.hidden = false; input.focus(); }
    });
    pane.addEventListener("focusout", function (ev) {
      if (ev.target.id === "tag-input" && !ev.target.value.trim()) ev.target.hidden = true;
    });
    pane.addEventListener("keydown", function (ev) {
      if (ev.target.id !== "tag-input") return;
      if (ev.key === "Escape") {
        ev.stopPropagation(); ev.target.value = ""; ev.target.hidden = true;
        if (!$("reply").disabled) $("reply").focus();  // (focus stayed on the hidden input: keys went nowhere)
        return;
      }
      if (ev.key !== "Enter" || ev.isComposing || ev.keyCode === 229) return;
      ev.preventDefault();
      var name = ev.target.value.trim();
      if (name) tag({ add: [name] });
    });
  }

  function wire() {
    wireTags();
    $("transfer-btn").addEventListener("click", openTransfer);
    $("close-btn").addEventListener("click", openClose);
    $("transfer-submit").addEventListener("click", submitTransfer);
    $("close-submit").addEventListener("click", submitClose);
    document.querySelectorAll("[data-close]").forEach(function (b) {
      b.addEventListener("click", function () { closeModal(b.closest(".modal-backdrop").id); });
    });
    document.querySelectorAll(".modal-backdrop").forEach(function (m) {
      m.addEventListener("mousedown", function (ev) { if (ev.target === m) closeModal(m.id); });
    });
    document.querySelectorAll("#transfer-dialog .tab").forEach(function (t) {
      t.addEventListener("click", function () { setTab(t.dataset.tab); });
    });
    $("transfer-dialog").addEventListener("click", function (ev) {
      var b = ev.target.closest("button.pick");
      if (!b || b.disabled) return;
      pick.value = b.dataset.agent ? Number(b.dataset.agent) : b.dataset.group;
      renderTargets();
    });
    $("close-reasons").addEventListener("change", function () {
      var other = document.querySelector("input[name=close-reason]:checked").value === "other";
      $("close-other").hidden = !other;
      if (other) $("close-other").focus();
    });
    $("quick-btn").addEventListener("click", function () { toggleQuick(); });
    $("quick-filter").addEventListener("input", function () { R.renderQuick(S); });
    $("quick-filter").addEventListener("keydown", function (ev) {
      if (ev.key === "Enter") {
        ev.preventDefault();
        var first = $("quick-list").querySelector("[data-quick]");
        if (first) pickQuick(Number(first.dataset.quick));
      }
    });
    $("quick-list").addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-quick]");
      if (b) pickQuick(Number(b.dataset.quick));
    });
    document.addEventListener("mousedown", function (ev) {
      if (!$("quick-pop").hidden && !ev.target.closest("#quick-pop, #quick-btn")) toggleQuick(false);
    });
  }

  Hub.dialogs = { openTransfer: openTransfer, openClose: openClose, closeTop: closeTop, toggleQuick: toggleQuick };
  document.addEventListener("DOMContentLoaded", wire);
})();
