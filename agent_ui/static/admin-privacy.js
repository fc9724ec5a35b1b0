/* 隐私与数据 page (admins): per-account retention, legal holds, erasing a customer after a confirm step
 * that shows what will go (a dry run of the erase API), erasure records with "prove an identity was
 * erased", and the purge runs with a dry-run button. Everything goes through the privacy JSON API
 * (hub/privacy/api.py), which writes each change to the audit log. */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var DEFAULT = "*";
  var FIELDS = [["messages_days", "消息"], ["media_days", "图片 / 语音 / 视频 / 文件"], ["orders_days", "订单"]];
  var PRESETS = [["180", "180 天"], ["365", "1 年"], ["1095", "3 年"], ["forever", "永久保留"]];
  var KIND_LABELS = { customer: "客户", conversation: "会话" };
  var COUNT_LABELS = { customers: "客户", identities: "身份", conversations: "会话", messages: "消息", media_messages: "其中媒体消息",
    service_sessions: "服务会话", orders: "订单", media: "媒体消息", jobs: "处理任务", outbox: "待发消息", order_items: "订单明细",
    customer_tags: "标签", customer_merges: "合并记录", session_events: "会话时间线", bot_outcomes: "机器人记录", agent_events: "坐席事件" };
  var state = { retention: null, holdsAll: false, erasePlan: null, eraseBody: null, proving: null };
  var CODES = {
    invalid_messages_days: "请输入 1–36500 的天数，或选择永久保留", invalid_media_days: "请输入 1–36500 的天数，或选择永久保留",
    invalid_orders_days: "请输入 1–36500 的天数，或选择永久保留", unknown_account: "这个账号不存在",
    invalid_kind: "请选择客户或会话", invalid_target_id: "请输入客户或会话的 ID（整数）", missing_reason: "请填写保全原因",
    unknown_customer: "没有这个客户", unknown_conversation: "没有这个会话", unknown_hold: "这条保全已不存在",
    hold_lifted: "这条保全已经解除", missing_requester: "请填写是谁提出的删除请求", invalid_customer_id: "客户 ID 须为整数",
    missing_customer: "请填写客户 ID 或身份", invalid_identity: "身份的格式是 类型:值，如 phone:13812345678",
    unknown_identity: "没有客户使用这个身份", ambiguous_identity: "多个客户使用这个身份，请选择账号或改用客户 ID",
    legal_hold: "该客户处于法律保全中，解除保全后才能删除", merged_customer: "该客户已合并到另一个客户，请删除合并后的客户"
  };

  function errorText(err) { return CODES[err.code] || A.errorText(err); }
  function formError(root, err) { return A.fieldError(root, err.field, errorText(err)); }
  function when(t) { return t ? U.fullTime(t) : "—"; }
  function daysText(v) {
    if (v === null || v === undefined) return "永久保留";
    if (v === "forever") return "永久保留";
    if (v % 365 === 0) return (v / 365) + " 年";
    return v + " 天";
  }
  function countsText(counts) {
    var keys = Object.keys(counts || {}).filter(function (k) { return counts[k]; });
    if (!keys.length) return "无";
    return keys.map(function (k) {
      var base = k.replace(/ \(redacted\)$/, ""), label = COUNT_LABELS[base] || base.replace(/:.*$/, "");
      return label + (/redacted/.test(k) ? "（抹去）" : "") + " " + counts[k];
    }).join("，");
  }
  function accountOptions(select, blankLabel) {
    A.options(select, [["", blankLabel]].concat((A.boot.accounts || []).map(function (a) { return [a.id, a.name + "（" + a.id + "）"]; })));
  }

  // ---- retention ----------------------------------------------------------------------------------
  function loadRetention() {
    return A.api("GET", "/api/privacy/retention").then(function (res) { state.retention = res; renderRetention(); })
      .catch(function (e) { A.toast(errorText(e), "error"); });
  }

  function dayPicker(name, value, isDefault) {
    var select = h("select", { "aria-label": name, dataset: { field: name } });
    var opts = [["", isDefault ? "不限（永久保留）" : "沿用默认"]].concat(PRESETS, [["custom", "自定义天数…"]]);
    A.options(select, opts, "");
    var input = h("input.pv-days", { type: "number", min: "1", max: "36500", step: "1", placeholder: "天数", "aria-label": name + " 天数" });
    var v = value === null || value === undefined ? "" : String(value);
    if (PRESETS.some(function (p) { return p[0] === v; }) || v === "") select.value = v;
    else { select.value = "custom"; input.value = v; }
    input.hidden = select.value !== "custom";
    select.addEventListener("change", function () { input.hidden = select.value !== "custom"; if (!input.hidden) input.focus(); });
    return { select: select, input: input, get: function () {
      if (select.value === "custom") return input.value.trim() === "" ? "" : (/^\d+$/.test(input.value.trim()) ? Number(input.value) : input.value.trim());
      return select.value === "" ? null : select.value === "forever" ? "forever" : Number(select.value);
    } };
  }

  function renderRetention() {
    var host = U.clear($("pv-retention"));
    var res = state.retention, policies = {}, effective = {};
    res.policies.forEach(function (p) { policies[p.account_id] = p; });
    res.effective.forEach(function (p) { effective[p.account_id] = p; });
    var rows = [[DEFAULT, "默认（所有账号）"]].concat((A.boot.accounts || []).map(function (a) { return [a.id, a.name + "（" + a.id + "）"]; }));
    Object.keys(policies).forEach(function (id) { if (!rows.some(function (r) { return r[0] === id; })) rows.push([id, id]); });
    rows.forEach(function (r) {
      var id = r[0], isDefault = id === DEFAULT, own = policies[id] || {}, eff = isDefault ? res["default"] : effective[id];
      var pickers = {};
      var form = h("form.stat-card.pv-ret-row", { novalidate: true, dataset: { account: id } },
        h("div.pv-ret-name", h("strong", r[1]), own.account_id ? null : h("span.muted", isDefault ? "　未设置：全部永久保留" : "　沿用默认")),
        h("div.field-row.three", FIELDS.map(function (f) {
          if (f[0] === "orders_days" && !isDefault) {
            return h("div.field", h("span", f[1]), h("div.muted.pv-eff", "按默认：" + daysText(eff && eff.orders_days)));
          }
          var p = pickers[f[0]] = dayPicker(f[0], own[f[0]], isDefault);
          return h("label.field", h("span", f[1]), h("div.pv-day-pick", p.select, p.input),
            h("span.field-error", { dataset: { "for": f[0] }, hidden: true }),
            isDefault ? null : h("span.field-hint", "生效：" + daysText(eff && eff[f[0]])));
        })),
        h("p.form-error", { role: "alert", hidden: true }),
        h("div.pv-ret-actions",
          h("button.btn.btn-primary.btn-sm", { type: "submit" }, "保存"),
          own.account_id && !isDefault ? h("button.btn.btn-ghost.btn-sm", { type: "button", onclick: function () { resetPolicy(id, r[1]); } }, "恢复默认") : null));
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        A.clearErrors(form);
        var body = { account_id: id };
        Object.keys(pickers).forEach(function (k) { body[k] = pickers[k].get(); });
        A.api("PUT", "/api/privacy/retention", body).then(function () {
          A.toast("已保存 " + r[1] + " 的保存期限");
          return loadRetention();
        }).catch(function (e) { formError(form, e); });
      });
      host.appendChild(form);
    });
  }

  function resetPolicy(id, label) {
    A.confirm({ title: "恢复默认", text: label + " 的消息与媒体将按默认期限保存。", ok: "恢复默认", danger: false }).then(function (ok) {
      if (!ok) return;
      A.api("DELETE", "/api/privacy/retention/" + encodeURIComponent(id)).then(function () { A.toast("已恢复默认"); loadRetention(); })
        .catch(function (e) { A.toast(errorText(e), "error"); });
    });
  }

  // ---- legal holds -----------------------------------------------------------------------------------
  function loadHolds() {
    return A.api("GET", "/api/holds" + (state.holdsAll ? "?all=1" : "")).then(function (res) {
      var body = U.clear($("pv-hold-rows"));
      var active = res.holds.filter(function (x) { return x.active; }).length;
      $("pv-hold-count").textContent = String(active);
      $("pv-hold-empty").hidden = res.holds.length > 0;
      res.holds.forEach(function (x) {
        body.appendChild(h("tr", { dataset: { id: String(x.id) } },
          h("td", KIND_LABELS[x.kind] || x.kind, " ", h("code", "#" + x.target_id)),
          h("td", x.reason),
          h("td", h("div", x.placed_by), h("div.muted", when(x.placed_at))),
          h("td", x.active ? h("span.pill.bad", "保全中") : h("span.pill.lo", "已解除 · " + (x.lifted_by || "") + " " + when(x.lifted_at))),
          h("td.actions", x.active ? h("button.btn.btn-sm", { type: "button", onclick: function () { liftHold(x); } }, "解除") : null)));
      });
    }).catch(function (e) { A.toast(errorText(e), "error"); });
  }

  function liftHold(x) {
    A.confirm({ title: "解除法律保全", text: "解除后，" + (KIND_LABELS[x.kind] || x.kind) + " #" + x.target_id +
      " 的数据将按保存期限清理，也可以被删除。", ok: "解除保全" }).then(function (ok) {
      if (!ok) return;
      A.api("DELETE", "/api/holds/" + x.id).then(function () { A.toast("已解除保全"); loadHolds(); })
        .catch(function (e) { A.toast(errorText(e), "error"); loadHolds(); });
    });
  }

  function addHold(ev) {
    ev.preventDefault();
    var form = $("pv-hold-form");
    A.clearErrors(form);
    var target = $("pv-hold-target").value.trim();
    var body = { kind: $("pv-hold-kind").value, target_id: /^\d+$/.test(target) ? Number(target) : target,
      reason: $("pv-hold-reason").value.trim() };
    A.api("POST", "/api/holds", body).then(function () {
      A.toast("已添加法律保全");
      $("pv-hold-target").value = ""; $("pv-hold-reason").value = "";
      loadHolds();
    }).catch(function (e) { formError(form, e); });
  }

  // ---- erasure ---------------------------------------------------------------------------------------
  function eraseBy() { return document.querySelector('input[name="pv-erase-by"]:checked').value; }

  function eraseBody() {
    var body = { requester: $("pv-erase-requester").value.trim(), reason: $("pv-erase-reason").value.trim() };
    if (eraseBy() === "customer") {
      var id = $("pv-erase-customer").value.trim();
      body.customer_id = /^\d+$/.test(id) ? Number(id) : id;
    } else {
      body.identity = $("pv-erase-identity").value.trim();
      if ($("pv-erase-account").value) body.account_id = $("pv-erase-account").value;
    }
    return body;
  }

  function previewErase(ev) {
    ev.preventDefault();
    var form = $("pv-erase-form");
    A.clearErrors(form);
    var body = eraseBody();
    if (!body.requester) { A.fieldError(form, "requester", CODES.missing_requester); return; }
    if (eraseBy() === "customer" && body.customer_id === "") { A.fieldError(form, "customer_id", "请填写客户 ID"); return; }
    if (eraseBy() === "identity" && !body.identity) { A.fieldError(form, "identity", "请填写身份，如 phone:13812345678"); return; }
    A.api("POST", "/api/erasures", Object.assign({ dry_run: true }, body)).then(function (plan) {
      state.erasePlan = plan;
      state.eraseBody = Object.assign({}, body, { customer_id: plan.customer_id });
      delete state.eraseBody.identity; delete state.eraseBody.account_id;
      showPlan(plan);
    }).catch(function (e) { formError(form, e); });
  }

  function showPlan(plan) {
    $("pv-erase-who").textContent = "客户 #" + plan.customer_id + (plan.name ? "（" + plan.name + "）" : "") +
      (plan.merged_customers.length ? "，连同合并进来的客户 #" + plan.merged_customers.join("、#") : "") + " 的以下数据将被删除：";
    var dl = U.clear($("pv-erase-counts"));
    Object.keys(plan.counts).forEach(function (k) {
      dl.appendChild(h("dt.k", COUNT_LABELS[k] || k));
      dl.appendChild(h("dd", { dataset: { count: k } }, String(plan.counts[k])));
    });
    var ul = U.clear($("pv-erase-idents"));
    if (!plan.identities.length) ul.appendChild(h("li.muted", "（无）"));
    plan.identities.forEach(function (i) {
      ul.appendChild(h("li", h("code", i.kind + ":" + i.value), i.account_id ? h("span.muted", " · " + A.accountName(i.account_id)) : null));
    });
    var held = $("pv-erase-held");
    held.hidden = !plan.holds.length;
    held.textContent = plan.holds.length ? "处于法律保全中（" + plan.holds.map(function (x) { return x.reason; }).join("；") +
      "），解除保全后才能删除。" : "";
    $("pv-erase-confirm").disabled = plan.holds.length > 0;
    A.open("pv-erase-dialog", $("pv-erase-confirm").disabled ? null : $("pv-erase-confirm"));
  }

  function confirmErase() {
    var btn = $("pv-erase-confirm");
    btn.disabled = true;
    A.api("POST", "/api/erasures", state.eraseBody).then(function (record) {
      A.close("pv-erase-dialog");
      A.toast("已删除客户 #" + record.erased_customer + "，删除记录 #" + record.id);
      ["pv-erase-customer", "pv-erase-identity", "pv-erase-requester", "pv-erase-reason"].forEach(function (id) { $(id).value = ""; });
      loadErasures(); loadHolds();
    }).catch(function (e) {
      A.close("pv-erase-dialog");
      formError($("pv-erase-form"), e);
    }).then(function () { btn.disabled = false; });
  }

  // ---- erasure records -------------------------------------------------------------------------------
  function loadErasures() {
    var q = "";
    if (state.proving) {
      q = "?identity=" + encodeURIComponent(state.proving.identity) +
        (state.proving.account ? "&account_id=" + encodeURIComponent(state.proving.account) : "");
    }
    var form = $("pv-prove-form");
    return A.api("GET", "/api/erasures" + q).then(function (res) {
      var body = U.clear($("pv-rec-rows"));
      $("pv-rec-count").textContent = String(res.erasures.length);
      $("pv-rec-empty").hidden = res.erasures.length > 0;
      $("pv-rec-empty").textContent = state.proving ? "没有删除过这个身份的记录" : "还没有删除记录";
      var verdict = $("pv-prove-verdict");
      verdict.textContent = !state.proving ? "" : res.erasures.length
        ? "✓ 已找到 " + res.erasures.length + " 条删除记录，证明 " + state.proving.identity + " 已被删除"
        : "没有找到：这个身份没有被删除过（或拼写、账号不同）";
      verdict.className = "pv-verdict " + (!state.proving ? "" : res.erasures.length ? "pill ok" : "pill lo");
      $("pv-prove-clear").hidden = !state.proving;
      res.erasures.forEach(function (r) {
        body.appendChild(h("tr", { dataset: { id: String(r.id) } },
          h("td", "#" + r.id),
          h("td", when(r.finished_at || r.started_at), r.finished_at ? null : h("div.pill.bad", "未完成")),
          h("td", h("code", "#" + r.erased_customer)),
          h("td", h("div", r.requester), r.reason ? h("div.muted", r.reason) : null),
          h("td", r.done_by),
          h("td.muted", countsText(r.counts)),
          h("td", h("code", { title: r.identity_hashes.join("\n") }, r.identity_hashes.length + " 个"))));
      });
    }).catch(function (e) { formError(form, e); });
  }

  function prove(ev) {
    ev.preventDefault();
    var form = $("pv-prove-form");
    A.clearErrors(form);
    var identity = $("pv-prove-identity").value.trim();
    if (!identity) { A.fieldError(form, "identity", "请填写身份，如 phone:13812345678"); return; }
    state.proving = { identity: identity, account: $("pv-prove-account").value };
    loadErasures();
  }

  // ---- purge runs ------------------------------------------------------------------------------------
  function loadRuns() {
    return A.api("GET", "/api/privacy/purges").then(function (res) {
      var body = U.clear($("pv-run-rows"));
      $("pv-run-empty").hidden = res.runs.length > 0;
      res.runs.slice(0, 50).forEach(function (r) {
        var status = r.status === "done" ? h("span.pill.ok", "完成") : r.status === "running" ? h("span.pill", "进行中")
          : h("span.pill.bad", { title: r.error || "" }, "失败");
        body.appendChild(h("tr", { dataset: { id: String(r.id) } },
          h("td", "#" + r.id), h("td", when(r.started_at)),
          h("td", r.started_by === "schedule" ? "定时任务" : r.started_by),
          h("td", r.dry_run ? h("span.pill.lo", "试运行") : "清理"),
          h("td", status),
          h("td.muted", countsText(r.counts))));
      });
    }).catch(function (e) { A.toast(errorText(e), "error"); });
  }

  function dryRun() {
    var btn = $("pv-run-dry");
    btn.disabled = true;
    A.api("POST", "/api/privacy/purges", { dry_run: true }).then(function (run) {
      A.toast("试运行完成：到期可清理 " + countsText(run.counts));
      return loadRuns();
    }).catch(function (e) { A.toast(errorText(e), "error"); }).then(function () { btn.disabled = false; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    accountOptions($("pv-erase-account"), "不限账号");
    accountOptions($("pv-prove-account"), "不限账号");
    $("pv-hold-form").addEventListener("submit", addHold);
    $("pv-hold-all").addEventListener("change", function () { state.holdsAll = this.checked; loadHolds(); });
    document.querySelectorAll('input[name="pv-erase-by"]').forEach(function (r) {
      r.addEventListener("change", function () {
        var byId = eraseBy() === "customer";
        $("pv-erase-customer-field").hidden = !byId;
        $("pv-erase-identity-field").hidden = byId;
        A.clearErrors($("pv-erase-form"));
      });
    });
    $("pv-erase-form").addEventListener("submit", previewErase);
    $("pv-erase-confirm").addEventListener("click", confirmErase);
    $("pv-prove-form").addEventListener("submit", prove);
    $("pv-prove-clear").addEventListener("click", function () {
      state.proving = null; $("pv-prove-identity").value = ""; A.clearErrors($("pv-prove-form")); loadErasures();
    });
    $("pv-run-dry").addEventListener("click", dryRun);
    loadRetention(); loadHolds(); loadErasures(); loadRuns();
  });
})();
