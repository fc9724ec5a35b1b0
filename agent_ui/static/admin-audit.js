/* 操作日志 page: filter the audit log (kind, actor, action, target, dates), page through it, see one
 * entry's before / after side by side, export what the filters select as CSV. */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var ACTIONS = { create: "新建", update: "修改", "delete": "删除", order: "调整顺序", add: "添加", "import": "导入",
    remove: "移除", erase: "删除个人数据", erase_preview: "预览删除", place: "设置", lift: "解除", reveal: "查看明文",
    set: "设置", purge: "清理", rotate: "轮换", merge: "合并", unmerge: "撤销合并", segment: "客户分群" };
  var SUBJECTS = { faq: "FAQ", keyword_rule: "关键词规则", brand_words: "品牌词", routing_rule: "路由规则", user: "用户",
    group: "技能组", channel_code: "渠道活码", settings: "设置", account: "平台账号", sla_rule: "SLA 规则", quality_rule: "质检规则",
    ticket_type: "工单类型", ticket_rule: "工单分派规则", search: "记录搜索", conversation: "会话", customer: "客户",
    reveal: "显示明文", retention: "保留期限", hold: "法律保全", erasure: "删除客户数据", pii: "个人信息",
    secrets: "平台密钥", "export": "导出" };
  var state = { page: 1, total: 0, size: 50, entries: [] };

  function label(action) {
    var p = action.split(".");
    return (SUBJECTS[p[0]] || p[0]) + (p[1] ? " · " + (ACTIONS[p[1]] || p[1]) : "");
  }

  function params() {
    var q = new URLSearchParams();
    [["kind", "af-kind"], ["actor", "af-actor"], ["action", "af-action"], ["target", "af-target"]].forEach(function (p) {
      var v = $(p[1]).value.trim(); if (v) q.set(p[0], v);
    });
    var tz = function (d, end) { // the brand's midnight of the picked day (the end day is included)
      var p = d.split("-").map(Number); return String(U.zoneMidnight(p[0], p[1], p[2] + (end ? 1 : 0)));
    };
    if ($("af-since").value) q.set("since", tz($("af-since").value, false));
    if ($("af-until").value) q.set("until", tz($("af-until").value, true));
    return q;
  }

  function load() {
    var q = params();
    $("audit-csv").href = "/api/audit?format=csv&" + q.toString();
    q.set("page", String(state.page));
    var err = $("audit-error"); err.hidden = true;
    A.api("GET", "/api/audit?" + q.toString()).then(function (res) {
      state.entries = res.entries; state.total = res.total; state.size = res.page_size; render();
    }).catch(function (e) { err.textContent = A.errorText(e); err.hidden = false; });
  }

  function render() {
    var body = U.clear($("audit-rows"));
    $("audit-empty").hidden = state.entries.length > 0;
    $("audit-total").textContent = "共 " + state.total + " 条";
    var pages = Math.max(1, Math.ceil(state.total / state.size));
    $("audit-page").textContent = state.page + " / " + pages;
    $("audit-prev").disabled = state.page <= 1; $("audit-next").disabled = state.page >= pages;
    state.entries.forEach(function (e) {
      body.appendChild(h("tr", { dataset: { id: String(e.id) } },
        h("td", U.fullTime(e.at)),
        h("td", e.actor_name, " ", A.roleBadge ? A.roleBadge(e.actor_role) : e.actor_role),
        h("td", e.kind === "access" ? h("span.pill", "查看") : null, " ", label(e.action), h("div.muted", e.action)),
        h("td", h("code", e.target)),
        h("td", e.ip || "—"),
        h("td.actions", h("button.btn.btn-sm", { type: "button", onclick: function () { show(e); } }, "查看"))));
    });
  }

  function pretty(v) { return v === null || v === undefined ? "（无）" : JSON.stringify(v, null, 2); }

  function show(e) {
    $("audit-title").textContent = label(e.action) + " · " + e.target;
    $("audit-meta").textContent = U.fullTime(e.at) + " · " + e.actor_name + " · " +
      (e.ip || "") + " · " + (e.user_agent || "");
    $("audit-before").textContent = pretty(e.before);
    $("audit-after").textContent = pretty(e.after);
    var d = $("audit-detail"); d.hidden = !e.detail; d.textContent = e.detail ? pretty(e.detail) : "";
    A.open("audit-dialog");
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("audit-filters").addEventListener("submit", function (ev) { ev.preventDefault(); state.page = 1; load(); });
    $("audit-prev").addEventListener("click", function () { state.page -= 1; load(); });
    $("audit-next").addEventListener("click", function () { state.page += 1; load(); });
    // links from other pages preselect filters (e.g. /admin/audit?kind=access from the privacy page)
    var given = new URLSearchParams(location.search);
    [["kind", "af-kind"], ["actor", "af-actor"], ["action", "af-action"], ["target", "af-target"]].forEach(function (p) {
      if (given.get(p[0])) $(p[1]).value = given.get(p[0]);
    });
    load();
  });
})();
