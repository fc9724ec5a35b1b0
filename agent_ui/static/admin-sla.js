/* SLA 与质检 page: SLA rules (/api/sla/rules) and quality-check rules (/api/quality/rules): list, add,
 * edit, enable/disable, delete. The server validates; its refusals show beside the field they name. */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var SLA_KINDS = { first_reply: "首次响应", unanswered: "消息未回复", avg_reply: "平均响应时长" };
  var ESCALATIONS = { none: "看板提醒", reassign: "转给其他客服", notify: "通知" };
  var Q_KINDS = { forbidden_words: "禁用语", required_phrase: "必说话术", anxiety_words: "客户情绪预警", slow_reply: "回复过慢" };
  var state = { sla: [], quality: [], users: [], groups: [], editingSla: null, editingQ: null };
  var words = null, phrases = null;

  function duration(sec) {
    if (sec % 3600 === 0) return sec / 3600 + " 小时";
    if (sec % 60 === 0) return sec / 60 + " 分钟";
    return sec + " 秒";
  }
  function userName(id) {
    var u = state.users.filter(function (x) { return x.id === id; })[0];
    return u ? (u.display_name || u.username) : "#" + id;
  }
  function groupName(name) {
    var g = state.groups.filter(function (x) { return x.name === name; })[0];
    return g ? g.display_name || g.name : name;
  }
  function statusCell(rule, url, reload) {
    return A.toggle(rule.enabled, function (on, input) {
      A.api("PUT", url + rule.id, { enabled: on }).then(function () {
        A.toast(on ? "已启用" : "已停用", "ok");
        return reload();
      }).catch(function (err) { input.checked = !on; A.toast(A.errorText(err), "error"); });
    }, "启用");
  }
  function actions(edit, remove) {
    return h("td.actions.nowrap", A.canWrite ? [h("button.btn-link", { type: "button", onclick: edit }, "编辑"),
      h("button.btn-link.danger", { type: "button", onclick: remove }, "删除")] : null);
  }
  function empty(id, shown, text) {
    var box = U.clear($(id));
    box.hidden = shown;
    box.appendChild(h("div.empty-title", text));
  }
  function removeRule(kind, rule, url, reload) {
    A.confirm({ title: "删除" + kind, text: "删除“" + rule.name + "”？", ok: "删除" }).then(function (yes) {
      if (!yes) return null;
      return A.api("DELETE", url + rule.id).then(function () { A.toast("已删除", "ok"); return reload(); });
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  // ---- SLA rules -------------------------------------------------------------------------------
  function loadSla() {
    return A.api("GET", "/api/sla/rules").then(function (res) { state.sla = res.rules; renderSla(); })
      .catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function renderSla() {
    var body = U.clear($("sla-rows"));
    $("sla-count").textContent = state.sla.length;
    state.sla.forEach(function (r) {
      var scope = [r.account_id ? A.accountName(r.account_id) : "全部账号", r.group ? groupName(r.group) : "全部技能组"];
      if (r.business_hours_only) scope.push("仅营业时间");
      var esc = ESCALATIONS[r.escalation] + (r.escalation === "notify" ? " " + userName(r.notify_user_id) : "");
      body.appendChild(h("tr" + (r.enabled ? "" : ".off"), { dataset: { id: r.id } },
        h("td", h("div.cell-main", r.name), h("div.rule-kind", SLA_KINDS[r.kind] || r.kind)),
        h("td.nowrap", duration(r.seconds) + (r.kind === "avg_reply" ? "（最近 " + r.window + " 次）" : "")),
        h("td", scope.join(" · ")),
        h("td", esc),
        h("td", statusCell(r, "/api/sla/rules/", loadSla)),
        actions(function () { openSla(r); }, function () { removeRule("SLA 规则", r, "/api/sla/rules/", loadSla); })));
    });
    empty("sla-empty", state.sla.length > 0, "还没有 SLA 规则：新建一条“首次响应 60 秒”试试");
  }

  function syncSlaForm() {
    $("sf-avg-fields").hidden = $("sf-kind").value !== "avg_reply";
    $("sf-notify-field").hidden = $("sf-escalation").value !== "notify";
  }

  function openSla(r) {
    state.editingSla = r;
    var form = $("sla-form");
    A.clearErrors(form);
    $("sla-title").textContent = r ? "编辑 SLA 规则" : "新建 SLA 规则";
    $("sf-name").value = r ? r.name : "";
    $("sf-enabled").checked = r ? r.enabled : true;
    $("sf-kind").value = r ? r.kind : "first_reply";
    var unit = r ? (r.seconds % 3600 === 0 ? 3600 : r.seconds % 60 === 0 ? 60 : 1) : 60;
    $("sf-unit").value = String(unit);
    $("sf-seconds").value = r ? String(r.seconds / unit) : "";
    $("sf-window").value = r ? String(r.window) : "20";
    $("sf-min").value = r ? String(r.min_samples) : "3";
    $("sf-hours").checked = r ? r.business_hours_only : false;
    A.options($("sf-account"), [["", "全部账号"]].concat((A.boot.accounts || []).map(function (a) { return [a.id, a.name]; })),
      r ? r.account_id : "");
    A.options($("sf-group"), [["", "全部技能组"]].concat(state.groups.map(function (g) { return [g.name, g.display_name || g.name]; })),
      r ? r.group : "");
    $("sf-escalation").value = r ? r.escalation : "none";
    A.options($("sf-notify"), [["", "请选择"]].concat(state.users.filter(function (u) { return !u.disabled && u.role !== "agent"; })
      .map(function (u) { return [String(u.id), (u.display_name || u.username) + "（" + ((A.boot.roles || {})[u.role] || u.role) + "）"]; })),
      r && r.notify_user_id ? String(r.notify_user_id) : "");
    $("sf-meta").textContent = r ? "规则 #" + r.id : "";
    syncSlaForm();
    A.open("sla-drawer", $("sf-name"));
  }

  /** A number input's value as a number; what is not a number goes as typed, so the server names the field. */
  function num(input) {
    var raw = input.value.trim();
    if (raw === "") return null;
    var n = Number(raw);
    return isFinite(n) ? n : raw;
  }

  function saveSla(ev) {
    ev.preventDefault();
    var form = $("sla-form"), btn = $("sf-save"), r = state.editingSla;
    A.clearErrors(form);
    var seconds = num($("sf-seconds"));
    if (typeof seconds === "number") seconds = Math.round(seconds * Number($("sf-unit").value) * 1000) / 1000;
    var notify = $("sf-notify").value;
    var body = {
      name: $("sf-name").value.trim(), enabled: $("sf-enabled").checked, kind: $("sf-kind").value, seconds: seconds,
      business_hours_only: $("sf-hours").checked, account_id: $("sf-account").value, group: $("sf-group").value,
      escalation: $("sf-escalation").value, notify_user_id: notify ? Number(notify) : null,
      window: num($("sf-window")), min_samples: num($("sf-min"))
    };
    if (body.kind !== "avg_reply") { delete body.window; delete body.min_samples; }
    btn.disabled = true;
    A.api(r ? "PUT" : "POST", r ? "/api/sla/rules/" + r.id : "/api/sla/rules", body).then(function () {
      A.close("sla-drawer");
      A.toast(r ? "SLA 规则已保存" : "SLA 规则已创建", "ok");
      return loadSla();
    }).catch(function (err) { A.formError(form, err); }).then(function () { btn.disabled = false; });
  }

  // ---- quality rules ---------------------------------------------------------------------------
  function loadQuality() {
    return A.api("GET", "/api/quality/rules").then(function (res) { state.quality = res.rules; renderQuality(); })
      .catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function paramsText(r) {
    var p = r.params || {};
    if (r.kind === "forbidden_words" || r.kind === "anxiety_words") return (p.words || []).join("、");
    if (r.kind === "required_phrase") {
      return (p.within_first ? "前 " + p.within_first + " 条回复内说到：" : "会话中说到：") + (p.phrases || []).join(" / ");
    }
    return "客户等待超过 " + duration(p.seconds);
  }

  function renderQuality() {
    var body = U.clear($("qr-rows"));
    $("qr-count").textContent = state.quality.length;
    state.quality.forEach(function (r) {
      body.appendChild(h("tr" + (r.enabled ? "" : ".off"), { dataset: { id: r.id } },
        h("td", h("div.cell-main", r.name)),
        h("td.nowrap", h("span.badge." + (r.kind === "anxiety_words" ? "b-red" : r.kind === "forbidden_words" ? "b-amber" : "b-blue"),
          Q_KINDS[r.kind] || r.kind)),
        h("td", h("div.params-text", { title: paramsText(r) }, paramsText(r))),
        h("td", statusCell(r, "/api/quality/rules/", loadQuality)),
        actions(function () { openQuality(r); }, function () { removeRule("质检规则", r, "/api/quality/rules/", loadQuality); })));
    });
    empty("qr-empty", state.quality.length > 0, "还没有质检规则");
  }

  function syncQualityForm() {
    var kind = $("qf-kind").value;
    $("qf-words-field").hidden = kind !== "forbidden_words" && kind !== "anxiety_words";
    $("qf-phrases-field").hidden = $("qf-within-field").hidden = kind !== "required_phrase";
    $("qf-seconds-field").hidden = kind !== "slow_reply";
  }

  function openQuality(r) {
    state.editingQ = r;
    var form = $("qr-form"), p = (r && r.params) || {};
    A.clearErrors(form);
    $("qr-title").textContent = r ? "编辑质检规则" : "新建质检规则";
    $("qf-name").value = r ? r.name : "";
    $("qf-enabled").checked = r ? r.enabled : true;
    $("qf-kind").value = r ? r.kind : "forbidden_words";
    words.set(p.words || []);
    phrases.set(p.phrases || []);
    $("qf-within").value = p.within_first !== undefined ? String(p.within_first) : "1";
    $("qf-seconds").value = p.seconds !== undefined ? String(p.seconds) : "";
    syncQualityForm();
    A.open("qr-drawer", $("qf-name"));
  }

  function saveQuality(ev) {
    ev.preventDefault();
    var form = $("qr-form"), btn = $("qf-save"), r = state.editingQ, kind = $("qf-kind").value;
    A.clearErrors(form);
    var params = {};
    if (kind === "forbidden_words" || kind === "anxiety_words") params.words = words.get();
    else if (kind === "required_phrase") { params.phrases = phrases.get(); params.within_first = num($("qf-within")); }
    else params.seconds = num($("qf-seconds"));
    var body = { name: $("qf-name").value.trim(), enabled: $("qf-enabled").checked, kind: kind, params: params };
    btn.disabled = true;
    A.api(r ? "PUT" : "POST", r ? "/api/quality/rules/" + r.id : "/api/quality/rules", body).then(function () {
      A.close("qr-drawer");
      A.toast(r ? "质检规则已保存" : "质检规则已创建", "ok");
      return loadQuality();
    }).catch(function (err) { A.formError(form, err); }).then(function () { btn.disabled = false; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    words = A.tokenInput({ field: "params.words", placeholder: "如：不知道、自己看，回车添加", label: "词语" });
    $("qf-words").appendChild(words.el);
    phrases = A.tokenInput({ field: "params.phrases", placeholder: "如：您好，回车添加", label: "话术" });
    $("qf-phrases").appendChild(phrases.el);
    $("sf-kind").addEventListener("change", syncSlaForm);
    $("sf-escalation").addEventListener("change", syncSlaForm);
    $("qf-kind").addEventListener("change", syncQualityForm);
    // the SLA form's people and groups lists come first, so a form opened at once is complete
    var ready = Promise.all([
      A.api("GET", "/api/users").then(function (res) { state.users = res.users; }).catch(function () { return null; }),
      A.api("GET", "/api/groups").then(function (res) { state.groups = res.groups; }).catch(function () { return null; })
    ]);
    $("sla-new").addEventListener("click", function () { ready.then(function () { openSla(null); }); });
    $("qr-new").addEventListener("click", function () { openQuality(null); });
    $("sla-form").addEventListener("submit", saveSla);
    $("qr-form").addEventListener("submit", saveQuality);
    ready.then(function () { return Promise.all([loadSla(), loadQuality()]); });
  });
})();
