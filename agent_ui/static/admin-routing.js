/* 路由规则 page: the ordered rule list (HTML5 drag and drop or ↑/↓ on the handle, saved with
 * /api/routing/rules/order), enable/disable, delete, the editor (conditions + actions) and the tester. */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var PLATFORMS = A.boot.platforms || { wecom: "企业微信", oa: "公众号", kf: "微信客服" };
  var KINDS = [
    ["platform", "平台是"], ["account", "接入账号是"], ["channel", "渠道码是"], ["vip_min", "VIP 等级至少"],
    ["tags_any", "有任一标签"], ["tags_all", "有全部标签"], ["tags_none", "没有这些标签"],
    ["keywords_any", "首条消息包含任一"], ["business_hours", "时间段"]
  ];
  var KIND_LABEL = {};
  KINDS.forEach(function (k) { KIND_LABEL[k[0]] = k[1]; });
  var state = { rules: [], editing: null, conds: [], users: [], dragId: null };
  var addTags = null, testTags = null;

  function userName(id) {
    var u = state.users.filter(function (x) { return x.id === id; })[0];
    return u ? (u.display_name || u.username) : "#" + id;
  }

  function valueText(c) {
    if (c.kind === "platform") return c.value.map(function (p) { return PLATFORMS[p] || p; }).join("、");
    if (c.kind === "account") return c.value.map(A.accountName).join("、");
    if (c.kind === "business_hours") return c.value ? "工作时间内" : "工作时间外";
    if (c.kind === "vip_min") return String(c.value);
    return c.value.join("、");
  }

  // ---- list ------------------------------------------------------------------------------------
  function reload() {
    return A.api("GET", "/api/routing/rules").then(function (res) { state.rules = res.rules; render(); })
      .catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function render() {
    var list = U.clear($("rt-list"));
    state.rules.forEach(function (r, i) { list.appendChild(item(r, i)); });
    $("rt-count").textContent = state.rules.length;
    var empty = U.clear($("rt-empty"));
    empty.hidden = state.rules.length > 0;
    empty.appendChild(h("div", h("div.empty-title", "还没有路由规则"),
      h("div.empty-note", "没有规则时，所有客户进入默认技能组，VIP 等级越高排得越前")));
  }

  function item(r, i) {
    var a = r.actions || {};
    var conds = r.conditions.length ? r.conditions.map(function (c) {
      return h("span.cond", h("span.ck", KIND_LABEL[c.kind] || c.kind), valueText(c));
    }) : [h("span.cond", h("span.ck", "所有客户"), "（兜底）")];
    var acts = [];
    acts.push(h("span.act", "→ 技能组 " + (a.group || "默认")));
    if (a.priority !== null && a.priority !== undefined) acts.push(h("span.act", "优先级 " + a.priority));
    if (a.agent_id) acts.push(h("span.act", "专属客服 " + userName(a.agent_id)));
    if (a.add_tags && a.add_tags.length) acts.push(h("span.act", "加标签 " + a.add_tags.join("、")));
    var handle = h("button.drag-handle", { type: "button", title: "拖动排序", "aria-label": "调整顺序：按 ↑ ↓ 移动" }, "⋮⋮");
    handle.addEventListener("keydown", function (ev) {
      if (ev.key === "ArrowUp" || ev.key === "ArrowDown") { ev.preventDefault(); move(r.id, ev.key === "ArrowUp" ? i - 1 : i + 1, true); }
    });
    var li = h("li.rule" + (r.enabled ? "" : ".off"), { dataset: { id: r.id }, draggable: A.canWrite ? "true" : null },
      handle, h("span.rule-pos", String(i + 1)),
      h("div.rule-body",
        h("div.rule-name", h("span.rule-title", r.name), r.enabled ? null : h("span.badge.b-gray", "已停用")),
        h("div.rule-line", h("span.lbl", "如果"), conds),
        h("div.rule-line", h("span.lbl", "那么"), acts)),
      h("div.rule-side", A.toggle(r.enabled, function (on, input) { setEnabled(r, on, input); }, "启用"),
        A.canWrite ? h("button.btn-link", { type: "button", onclick: function () { openEditor(r); } }, "编辑") : null,
        A.canWrite ? h("button.btn-link.danger", { type: "button", onclick: function () { remove(r); } }, "删除") : null));
    if (A.canWrite) wireDrag(li);
    return li;
  }

  // ---- drag and drop ---------------------------------------------------------------------------
  function clearMarks() {
    document.querySelectorAll(".rule.drop-before, .rule.drop-after").forEach(function (el) {
      el.classList.remove("drop-before", "drop-after");
    });
  }

  function wireDrag(li) {
    li.addEventListener("dragstart", function (ev) {
      if (ev.target.closest("input, button:not(.drag-handle), a")) { ev.preventDefault(); return; }
      state.dragId = Number(li.dataset.id);
      ev.dataTransfer.effectAllowed = "move";
      ev.dataTransfer.setData("text/plain", li.dataset.id);
      setTimeout(function () { li.classList.add("dragging"); }, 0);
    });
    li.addEventListener("dragend", function () { li.classList.remove("dragging"); clearMarks(); state.dragId = null; });
    li.addEventListener("dragover", function (ev) {
      if (state.dragId === null || state.dragId === Number(li.dataset.id)) return;
      ev.preventDefault();
      ev.dataTransfer.dropEffect = "move";
      var rect = li.getBoundingClientRect(), before = ev.clientY < rect.top + rect.height / 2;
      clearMarks();
      li.classList.add(before ? "drop-before" : "drop-after");
    });
    li.addEventListener("dragleave", function (ev) { if (!li.contains(ev.relatedTarget)) li.classList.remove("drop-before", "drop-after"); });
    li.addEventListener("drop", function (ev) {
      ev.preventDefault();
      var before = li.classList.contains("drop-before"), id = state.dragId;
      clearMarks();
      if (id === null || id === Number(li.dataset.id)) return;
      var ids = state.rules.map(function (r) { return r.id; }).filter(function (x) { return x !== id; });
      var at = ids.indexOf(Number(li.dataset.id)) + (before ? 0 : 1);
      ids.splice(at, 0, id);
      saveOrder(ids);
    });
  }

  function move(id, to, keepFocus) {
    if (to < 0 || to >= state.rules.length) return;
    var ids = state.rules.map(function (r) { return r.id; }).filter(function (x) { return x !== id; });
    ids.splice(to, 0, id);
    saveOrder(ids).then(function () {
      if (keepFocus) { var el = document.querySelector('.rule[data-id="' + id + '"] .drag-handle'); if (el) el.focus(); }
    });
  }

  function saveOrder(ids) {
    var before = state.rules.slice();
    var byId = {};
    state.rules.forEach(function (r) { byId[r.id] = r; });
    if (ids.join() === before.map(function (r) { return r.id; }).join()) return Promise.resolve();
    state.rules = ids.map(function (x) { return byId[x]; });
    render();
    return A.api("POST", "/api/routing/rules/order", { order: ids }).then(function (res) {
      state.rules = res.rules;
      render();
      A.toast("顺序已保存", "ok");
    }).catch(function (err) { state.rules = before; render(); A.toast(A.errorText(err), "error"); });
  }

  function setEnabled(r, on, input) {
    A.api("PUT", "/api/routing/rules/" + r.id, { enabled: on }).then(function (saved) {
      Object.assign(r, saved); render();
      A.toast(saved.enabled ? "规则已启用" : "规则已停用", "ok");
    }).catch(function (err) { input.checked = !on; A.toast(A.errorText(err), "error"); });
  }

  function remove(r) {
    A.confirm({ title: "删除路由规则", text: "确定删除规则“" + r.name + "”吗？之后命中它的客户会按后面的规则或默认技能组分配。", ok: "删除" })
      .then(function (yes) {
        if (!yes) return;
        return A.api("DELETE", "/api/routing/rules/" + r.id).then(function () { A.toast("已删除", "ok"); return reload(); });
      }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  // ---- editor: conditions ----------------------------------------------------------------------
  function defaultValue(kind) {
    if (kind === "vip_min") return 1;
    if (kind === "business_hours") return false;
    return [];
  }

  function checks(pairs, values, onchange) {
    var box = h("div.check-group");
    pairs.forEach(function (p) {
      var input = h("input", { type: "checkbox", value: p[0] });
      input.checked = values.indexOf(p[0]) >= 0;
      input.addEventListener("change", function () {
        onchange(Array.prototype.filter.call(box.querySelectorAll("input"), function (x) { return x.checked; })
          .map(function (x) { return x.value; }));
      });
      box.appendChild(h("label.check", input, p[1]));
    });
    return box;
  }

  function valueInput(c, i) {
    var field = "conditions[" + i + "].value";
    var set = function (v) { c.value = v; };
    var el;
    if (c.kind === "platform") {
      el = checks(Object.keys(PLATFORMS).map(function (k) { return [k, PLATFORMS[k]]; }), c.value, set);
    } else if (c.kind === "account" && (A.boot.accounts || []).length) {
      el = checks(A.boot.accounts.map(function (a) { return [a.id, a.name]; }), c.value, set);
    } else if (c.kind === "vip_min") {
      el = h("input", { type: "number", min: 0, step: 1, value: c.value });
      el.addEventListener("input", function () { var t = el.value.trim(); c.value = /^\d+$/.test(t) ? parseInt(t, 10) : t; });
    } else if (c.kind === "business_hours") {
      el = h("select", h("option", { value: "true" }, "在工作时间内"), h("option", { value: "false" }, "在工作时间外"));
      el.value = c.value ? "true" : "false";
      el.addEventListener("change", function () { c.value = el.value === "true"; });
    } else {
      var list = c.kind === "channel" ? "channel-list" : /^tags_/.test(c.kind) ? "tag-list" : null;
      var tok = A.tokenInput({ list: list, onchange: set, label: KIND_LABEL[c.kind],
        placeholder: c.kind === "keywords_any" ? "关键词，回车添加" : c.kind === "channel" ? "渠道码 ID，回车添加" : "输入后回车" });
      tok.set(c.value);
      c.read = tok.get;
      el = tok.el;
    }
    el.dataset.field = field;
    return h("div", el, h("span.field-error", { dataset: { for: field }, hidden: true }));
  }

  function renderConds() {
    var box = U.clear($("rt-conds"));
    if (!state.conds.length) box.appendChild(h("div.cond-none", "没有条件：这条规则匹配所有客户（适合放在最后做兜底）"));
    state.conds.forEach(function (c, i) {
      var kind = h("select", { "aria-label": "条件类型", dataset: { field: "conditions[" + i + "].kind" } },
        KINDS.map(function (k) { return h("option", { value: k[0] }, k[1]); }));
      kind.value = c.kind;
      kind.addEventListener("change", function () { harvest(); c.kind = kind.value; c.value = defaultValue(c.kind); delete c.read; renderConds(); });
      box.appendChild(h("div.cond-row", { dataset: { index: i } },
        h("div", kind, h("span.field-error", { dataset: { for: "conditions[" + i + "].kind" }, hidden: true })),
        valueInput(c, i),
        h("button.icon-btn", { type: "button", "aria-label": "删除条件", title: "删除条件", onclick: function () {
          harvest(); state.conds.splice(i, 1); renderConds();
        } }, "×")));
    });
  }

  /** Commit half-typed tokens into the condition values. */
  function harvest() { state.conds.forEach(function (c) { if (c.read) c.value = c.read(); }); }

  // ---- editor: open / save ---------------------------------------------------------------------
  function openEditor(r) {
    var form = $("rt-form");
    A.clearErrors(form);
    state.editing = r || null;
    var v = r || { name: "", enabled: true, conditions: [], actions: { group: null, priority: null, agent_id: null, add_tags: [] } };
    var a = v.actions || {};
    $("rt-title").textContent = r ? "编辑路由规则" : "新建路由规则";
    $("rt-name").value = v.name;
    $("rt-enabled").checked = v.enabled !== false;
    state.conds = v.conditions.map(function (c) { return { kind: c.kind, value: Array.isArray(c.value) ? c.value.slice() : c.value }; });
    renderConds();
    $("rt-group").value = a.group || "";
    $("rt-priority").value = a.priority === null || a.priority === undefined ? "" : a.priority;
    A.options($("rt-agent"), [["", "不指定"]].concat(state.users.filter(function (u) { return !u.disabled || u.id === a.agent_id; })
      .map(function (u) { return [String(u.id), (u.display_name || u.username) + "（" + u.username + "）"]; })), a.agent_id ? String(a.agent_id) : "");
    addTags.set(a.add_tags || []);
    $("rt-meta").textContent = r ? "#" + r.id + " · 第 " + (state.rules.indexOf(r) + 1) + " 条" : "新规则会加在最后";
    A.open("rt-drawer");
  }

  function collect() {
    harvest();
    var pr = $("rt-priority").value.trim();
    return {
      name: $("rt-name").value, enabled: $("rt-enabled").checked,
      conditions: state.conds.map(function (c) { return { kind: c.kind, value: c.value }; }),
      actions: { group: $("rt-group").value.trim() || null,
        priority: pr === "" ? null : /^\d+$/.test(pr) ? parseInt(pr, 10) : -1,
        agent_id: $("rt-agent").value ? parseInt($("rt-agent").value, 10) : null, add_tags: addTags.get() }
    };
  }

  function save(ev) {
    ev.preventDefault();
    var form = $("rt-form"), btn = $("rt-save"), r = state.editing;
    A.clearErrors(form);
    btn.disabled = true;
    A.api(r ? "PUT" : "POST", r ? "/api/routing/rules/" + r.id : "/api/routing/rules", collect()).then(function (saved) {
      A.close("rt-drawer");
      A.toast(r ? "已保存" : "规则已创建：" + saved.name, "ok");
      return reload();
    }).catch(function (err) { A.formError(form, err); })
      .then(function () { btn.disabled = false; });
  }

  // ---- tester ----------------------------------------------------------------------------------
  var TRACE = [
    [/^rule #(\d+) '(.*)': skipped \(disabled\)$/, "规则 #$1「$2」：已停用，跳过", "skip"],
    [/^rule #(\d+) '(.*)': no match \((.*)\)$/, "规则 #$1「$2」：不满足（$3）", ""],
    [/^rule #(\d+) '(.*)': matched$/, "规则 #$1「$2」：命中 ✓", "hit"],
    [/^group '(.*)' from default group$/, "技能组 $1（默认技能组）", ""],
    [/^group '(.*)' from rule #(\d+)$/, "技能组 $1（来自规则 #$2）", ""],
    [/^priority (\d+) from vip level (-?\d+)$/, "优先级 $1（按 VIP 等级 $2）", ""],
    [/^priority (\d+) from rule #(\d+)$/, "优先级 $1（来自规则 #$2）", ""],
    [/^exclusive agent (\d+) from rule #(\d+)$/, "专属客服 #$1（来自规则 #$2）", ""],
    [/^add tags (.*)$/, "添加标签 $1", ""]
  ];
  function traceLine(line) {
    for (var i = 0; i < TRACE.length; i++) {
      if (TRACE[i][0].test(line)) return h("li" + (TRACE[i][2] ? "." + TRACE[i][2] : ""), { title: line }, line.replace(TRACE[i][0], TRACE[i][1]));
    }
    return h("li", line);
  }

  function test(ev) {
    ev.preventDefault();
    var form = $("rt-test-form"), box = U.clear($("rtt-result"));
    A.clearErrors(form);
    var vip = $("rtt-vip").value.trim();
    var body = { account_id: $("rtt-account").value, platform: $("rtt-platform").value, channel: $("rtt-channel").value.trim() || null,
      tags: testTags.get(), vip_level: vip === "" ? 0 : Number(vip), first_message: $("rtt-message").value,
      in_business_hours: $("rtt-hours").checked };
    A.api("POST", "/api/routing/test", body).then(function (res) {
      var rule = state.rules.filter(function (r) { return r.id === res.matched_rule_id; })[0];
      box.appendChild(h("div.verdict." + (rule ? "ok" : "none"), { id: "rtt-verdict" }, h("span.verdict-icon", rule ? "✓" : "–"),
        h("div", h("div.verdict-title", "分到技能组 ", h("strong", { id: "rtt-group" }, res.group)),
          h("div.verdict-note", rule ? "命中第 " + (state.rules.indexOf(rule) + 1) + " 条规则「" + rule.name + "」" : "没有规则命中，进入默认技能组"))));
      box.appendChild(h("div.kv-grid",
        h("div.k", "优先级"), h("div", { id: "rtt-priority" }, String(res.priority)),
        h("div.k", "命中规则"), h("div", { id: "rtt-rule" }, rule ? "#" + rule.id + " " + rule.name : res.matched_rule_id ? "#" + res.matched_rule_id : "无"),
        h("div.k", "专属客服"), h("div", res.agent_id ? userName(res.agent_id) : "—"),
        h("div.k", "加标签"), h("div", res.add_tags && res.add_tags.length ? res.add_tags.join("、") : "—")));
      box.appendChild(h("ol.trace", { id: "rtt-trace", "aria-label": "决策过程" }, res.trace.map(traceLine)));
      document.querySelectorAll(".rule.matched").forEach(function (el) { el.classList.remove("matched"); });
      var li = rule && document.querySelector('.rule[data-id="' + rule.id + '"]');
      if (li) li.classList.add("matched");
    }).catch(function (err) { A.formError(form, err); });
  }

  // ---- the group for customers no rule matches (setting default_group) --------------------------
  function fillDefault(groups) {
    var sel = $("rt-default-group");
    return A.api("GET", "/api/settings").then(function (res) {
      var current = res.settings.default_group, opts = groups.map(function (g) { return [g.name, g.display_name || g.name]; });
      // a group that no longer exists (or never did) stays visible, marked, until another is picked
      if (current && !groups.some(function (g) { return g.name === current; })) opts.unshift([current, current + "（技能组不存在）"]);
      A.options(sel, opts);
      sel.value = current;
    });
  }

  function refreshDefault() {
    A.api("GET", "/api/groups").then(function (res) { return fillDefault(res.groups); }).catch(function () { return null; });
  }

  function saveDefault() {
    var sel = $("rt-default-group");
    A.api("PUT", "/api/settings", { default_group: sel.value }).then(function (res) {
      sel.value = res.settings.default_group;
      A.toast("已保存：未命中规则的客户分到 " + sel.options[sel.selectedIndex].text, "ok");
    }).catch(function (err) {
      A.toast(A.errorText(err), "error");  // (the group was deleted meanwhile, say): show what is stored
      refreshDefault();
    });
  }

  // ---- start -----------------------------------------------------------------------------------
  function fillLists() {
    A.api("GET", "/api/groups").then(function (res) {
      var dl = U.clear($("group-list"));
      res.groups.forEach(function (g) { dl.appendChild(h("option", { value: g.name }, g.display_name)); });
      return fillDefault(res.groups);
    }).catch(function () { return null; });
    A.api("GET", "/api/tags").then(function (res) {
      var dl = U.clear($("tag-list"));
      (res.tags || []).forEach(function (t) { var name = typeof t === "string" ? t : t.name || t.tag; if (name) dl.appendChild(h("option", { value: name })); });
    }).catch(function () { return null; });
    A.api("GET", "/api/channels").then(function (res) {
      var dl = U.clear($("channel-list"));
      (res.channels || []).forEach(function (c) { dl.appendChild(h("option", { value: String(c.id) }, c.name)); });
    }).catch(function () { return null; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    addTags = A.tokenInput({ list: "tag-list", field: "actions.add_tags", placeholder: "标签，回车添加" });
    $("rt-add-tags").appendChild(addTags.el);
    testTags = A.tokenInput({ list: "tag-list", placeholder: "如 VIP，回车添加" });
    $("rtt-tags").appendChild(testTags.el);
    A.options($("rt-add-kind"), KINDS);
    var accounts = (A.boot.accounts || []).map(function (a) { return [a.id, a.name]; });
    A.options($("rtt-account"), accounts.length ? accounts : [["", "—"]]);
    var syncPlatform = function () {
      var a = (A.boot.accounts || []).filter(function (x) { return x.id === $("rtt-account").value; })[0];
      if (a) $("rtt-platform").value = a.platform;
    };
    $("rtt-account").addEventListener("change", syncPlatform);
    syncPlatform();
    $("rt-new").addEventListener("click", function () { openEditor(null); });
    $("rt-add-cond").addEventListener("click", function () {
      harvest();
      var kind = $("rt-add-kind").value;
      state.conds.push({ kind: kind, value: defaultValue(kind) });
      renderConds();
      var rows = $("rt-conds").querySelectorAll(".cond-row");
      var last = rows[rows.length - 1], input = last && last.querySelector(".cond-row > div:nth-child(2) input, .cond-row > div:nth-child(2) select");
      if (input) input.focus();
    });
    $("rt-form").addEventListener("submit", save);
    $("rt-default-group").addEventListener("change", saveDefault);
    // a group made in the panel beside it since the page loaded is offered too
    $("rt-default-group").addEventListener("focus", refreshDefault);
    $("rt-test-form").addEventListener("submit", test);
    A.api("GET", "/api/users").then(function (res) { state.users = res.users; }).catch(function () { return null; })
      .then(reload);
    fillLists();
  });
})();
