/* 工单设置 page: ticket types (GET/POST /api/ticket-types, PUT /api/ticket-types/{name}) and ticket routing
 * rules (GET/POST /api/ticket-rules, PUT/DELETE /api/ticket-rules/{id}). */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var PRIORITIES = [["low", "低"], ["normal", "普通"], ["high", "高"], ["urgent", "紧急"]];
  var P_LABEL = {};
  PRIORITIES.forEach(function (p) { P_LABEL[p[0]] = p[1]; });
  var P_BADGE = { low: "b-gray", normal: "b-blue", high: "b-amber", urgent: "b-red" };
  var state = { types: [], rules: [], groups: [], editingType: null, editingRule: null };
  var keywords = null;

  function groupName(name) {
    var g = state.groups.filter(function (x) { return x.name === name; })[0];
    return g ? (g.display_name || g.name) : name;
  }
  function typeLabel(name) {
    var t = state.types.filter(function (x) { return x.name === name; })[0];
    return t ? t.label : name;
  }
  function hours(n) { return n >= 24 && n % 24 === 0 ? n / 24 + " 天" : n + " 小时"; }
  function empty(id, shown, text) {
    var box = U.clear($(id));
    box.hidden = shown;
    box.appendChild(h("div.empty-title", text));
  }
  function num(input) {
    var raw = input.value.trim();
    if (raw === "") return null;
    var n = Number(raw);
    return isFinite(n) ? n : raw;
  }

  // ---- types -----------------------------------------------------------------------------------
  function loadTypes() {
    return A.api("GET", "/api/ticket-types").then(function (res) { state.types = res.types; renderTypes(); })
      .catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function renderTypes() {
    var body = U.clear($("tt-rows"));
    $("tt-count").textContent = state.types.length;
    state.types.forEach(function (t) {
      body.appendChild(h("tr" + (t.enabled ? "" : ".off"), { dataset: { name: t.name } },
        h("td", h("div.cell-main", t.label), h("div.cell-sub.one", t.name)),
        h("td.num", hours(t.due_hours)),
        h("td", h("span.badge." + P_BADGE[t.priority], P_LABEL[t.priority] || t.priority)),
        h("td", t.group ? groupName(t.group) : h("span.muted", "会话所在的组")),
        h("td", A.toggle(t.enabled, function (on, input) {
          A.api("PUT", "/api/ticket-types/" + encodeURIComponent(t.name), { enabled: on })
            .then(function () { A.toast(on ? "已启用" : "已停用", "ok"); return loadTypes(); })
            .catch(function (err) { input.checked = !on; A.toast(A.errorText(err), "error"); });
        }, "启用")),
        h("td.actions.nowrap", A.canWrite ? h("button.btn-link", { type: "button", onclick: function () { openType(t); } }, "编辑") : null)));
    });
    empty("tt-empty", state.types.length > 0, "还没有工单类型");
  }

  function openType(t) {
    state.editingType = t;
    var form = $("tt-form");
    A.clearErrors(form);
    $("tt-title").textContent = t ? "编辑工单类型：" + t.label : "新建工单类型";
    $("tf-name").value = t ? t.name : "";
    $("tf-name").disabled = !!t;
    $("tf-label").value = t ? t.label : "";
    $("tf-hours").value = t ? String(t.due_hours) : "24";
    A.options($("tf-priority"), PRIORITIES, t ? t.priority : "normal");
    $("tf-group").value = t ? t.group : "";
    $("tf-enabled").checked = t ? t.enabled : true;
    A.open("tt-drawer", t ? $("tf-label") : $("tf-name"));
  }

  function saveType(ev) {
    ev.preventDefault();
    var form = $("tt-form"), btn = $("tf-save"), t = state.editingType;
    A.clearErrors(form);
    var body = { label: $("tf-label").value.trim(), due_hours: num($("tf-hours")), priority: $("tf-priority").value,
      group: $("tf-group").value.trim(), enabled: $("tf-enabled").checked };
    if (!t) body.name = $("tf-name").value.trim();
    btn.disabled = true;
    A.api(t ? "PUT" : "POST", t ? "/api/ticket-types/" + encodeURIComponent(t.name) : "/api/ticket-types", body).then(function () {
      A.close("tt-drawer");
      A.toast(t ? "工单类型已保存" : "工单类型已创建", "ok");
      return loadTypes().then(renderRules);
    }).catch(function (err) { A.formError(form, err); }).then(function () { btn.disabled = false; });
  }

  // ---- rules -----------------------------------------------------------------------------------
  function loadRules() {
    return A.api("GET", "/api/ticket-rules").then(function (res) { state.rules = res.rules; renderRules(); })
      .catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function conditions(r) {
    var parts = [];
    if (r.types.length) parts.push("类型：" + r.types.map(typeLabel).join("、"));
    if (r.min_priority) parts.push("优先级 ≥ " + P_LABEL[r.min_priority]);
    if (r.keywords.length) parts.push("包含：" + r.keywords.join(" / "));
    return parts.length ? parts.join("；") : "所有工单";
  }

  function renderRules() {
    var body = U.clear($("tr-rows"));
    $("tr-count").textContent = state.rules.length;
    state.rules.forEach(function (r, i) {
      body.appendChild(h("tr" + (r.enabled ? "" : ".off"), { dataset: { id: r.id } },
        h("td", h("div.cell-main", (i + 1) + ". " + (r.name || "规则 #" + r.id))),
        h("td", h("div.params-text", conditions(r))),
        h("td", groupName(r.group)),
        h("td", A.toggle(r.enabled, function (on, input) {
          A.api("PUT", "/api/ticket-rules/" + r.id, { enabled: on })
            .then(function () { A.toast(on ? "已启用" : "已停用", "ok"); return loadRules(); })
            .catch(function (err) { input.checked = !on; A.toast(A.errorText(err), "error"); });
        }, "启用")),
        h("td.actions.nowrap", A.canWrite ? [
          h("button.btn-link", { type: "button", onclick: function () { openRule(r); } }, "编辑"),
          h("button.btn-link.danger", { type: "button", onclick: function () { removeRule(r); } }, "删除")] : null)));
    });
    empty("tr-empty", state.rules.length > 0, "还没有分派规则：工单交给类型的默认技能组或会话所在的组");
  }

  function openRule(r) {
    state.editingRule = r;
    var form = $("tr-form");
    A.clearErrors(form);
    $("tr-title").textContent = r ? "编辑分派规则" : "新建分派规则";
    $("rf-name").value = r ? r.name : "";
    $("rf-group").value = r ? r.group : "";
    var box = U.clear($("rf-types"));
    state.types.forEach(function (t) {
      var input = h("input", { type: "checkbox", value: t.name });
      input.checked = !!r && r.types.indexOf(t.name) >= 0;
      box.appendChild(h("label.check", input, " " + t.label));
    });
    A.options($("rf-priority"), [["", "不限"]].concat(PRIORITIES), r && r.min_priority ? r.min_priority : "");
    keywords.set(r ? r.keywords : []);
    $("rf-enabled").checked = r ? r.enabled : true;
    $("rf-meta").textContent = r ? "规则 #" + r.id : "";
    A.open("tr-drawer", $("rf-name"));
  }

  function saveRule(ev) {
    ev.preventDefault();
    var form = $("tr-form"), btn = $("rf-save"), r = state.editingRule;
    A.clearErrors(form);
    var body = { name: $("rf-name").value.trim(), group: $("rf-group").value.trim(),
      types: Array.prototype.filter.call($("rf-types").querySelectorAll("input"), function (x) { return x.checked; })
        .map(function (x) { return x.value; }),
      min_priority: $("rf-priority").value || null, keywords: keywords.get(), enabled: $("rf-enabled").checked };
    btn.disabled = true;
    A.api(r ? "PUT" : "POST", r ? "/api/ticket-rules/" + r.id : "/api/ticket-rules", body).then(function () {
      A.close("tr-drawer");
      A.toast(r ? "分派规则已保存" : "分派规则已创建", "ok");
      return loadRules();
    }).catch(function (err) { A.formError(form, err); }).then(function () { btn.disabled = false; });
  }

  function removeRule(r) {
    A.confirm({ title: "删除分派规则", text: "删除“" + (r.name || "规则 #" + r.id) + "”？", ok: "删除" }).then(function (yes) {
      if (!yes) return null;
      return A.api("DELETE", "/api/ticket-rules/" + r.id).then(function () { A.toast("已删除", "ok"); return loadRules(); });
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    keywords = A.tokenInput({ field: "keywords", placeholder: "如：投诉、315，回车添加", label: "关键词" });
    $("rf-keywords").appendChild(keywords.el);
    $("tt-form").addEventListener("submit", saveType);
    $("tr-form").addEventListener("submit", saveRule);
    var ready = A.api("GET", "/api/groups").then(function (res) {
      state.groups = res.groups;
      var dl = U.clear($("group-list"));
      res.groups.forEach(function (g) { dl.appendChild(h("option", { value: g.name }, g.display_name)); });
    }).catch(function () { return null; })
      .then(function () { return loadTypes(); });
    ready.then(loadRules);
    // a rule's form lists the ticket types: open the forms once they are here
    $("tt-new").addEventListener("click", function () { ready.then(function () { openType(null); }); });
    $("tr-new").addEventListener("click", function () { ready.then(function () { openRule(null); }); });
  });
})();
