/* 关键词回复 page: the rules table (filter, enable/disable, edit, delete), the editor drawer with field
 * errors from the server (an invalid regex is refused there), and the "测试这条消息" box. */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var MATCH = { exact: ["完全匹配", "b-purple"], contains: ["包含", "b-blue"], regex: ["正则", "b-amber"] };
  var REPLY = { text: "文字", image: "图片", link: "图文链接" };
  var HINTS = {
    contains: "客户消息中出现这段文字即命中，如“营业时间”",
    exact: "客户消息与它完全一致才命中（忽略大小写和全角半角）",
    regex: "Python 正则，忽略大小写，如 ^(退款|退货).*(多久|几天)"
  };
  var state = { rules: [], editing: null, channels: {} };

  function accountPairs(anyLabel) {
    return [["", anyLabel]].concat((A.boot.accounts || []).map(function (a) {
      return [a.id, a.name + "（" + ((A.boot.platforms || {})[a.platform] || a.platform) + "）"];
    }));
  }

  function channelLabel(id) { return state.channels[id] ? state.channels[id] + "（#" + id + "）" : "渠道码 " + id; }

  // ---- list ------------------------------------------------------------------------------------
  function reload() {
    return A.api("GET", "/api/keyword-rules").then(function (res) {
      state.rules = res.rules;
      render();
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function replyPreview(r) {
    var rep = r.reply || {};
    if (rep.type === "image") return [h("span.badge.b-gray", "图片"), " ", h("span.muted", rep.media_id || rep.pic_url || "")];
    if (rep.type === "link") return [h("span.badge.b-gray", "链接"), " ", rep.title || "", h("div.cell-sub.one", rep.url || "")];
    return h("div.cell-sub", { title: rep.text || "" }, rep.text || "");
  }

  function matches(r, q, type) {
    if (type && r.match_type !== type) return false;
    if (!q) return true;
    var hay = [r.name, r.pattern, (r.reply || {}).text, (r.reply || {}).title].join("\n").toLowerCase();
    return hay.indexOf(q.toLowerCase()) >= 0;
  }

  function render() {
    var q = $("kw-q").value.trim(), type = $("kw-type").value;
    var shown = state.rules.filter(function (r) { return matches(r, q, type); });
    var body = U.clear($("kw-rows"));
    shown.forEach(function (r) { body.appendChild(row(r)); });
    $("kw-total").textContent = (q || type ? "筛选出 " + shown.length + " / " : "共 ") + state.rules.length + " 条";
    var empty = U.clear($("kw-empty"));
    empty.hidden = shown.length > 0;
    empty.appendChild(state.rules.length
      ? h("div", h("div.empty-title", "没有符合条件的规则"))
      : h("div", h("div.empty-title", "还没有关键词规则"),
        h("div.empty-note", A.canWrite ? "点右上角“新建规则”，例如关键词“营业时间”自动回复营业时间" : "管理员添加后会显示在这里")));
  }

  function row(r) {
    var m = MATCH[r.match_type] || [r.match_type, "b-gray"];
    var scope = [];
    if (r.account_id) scope.push(h("span.badge.b-gray", { title: "接入账号 " + r.account_id }, A.accountName(r.account_id)));
    if (r.channel) scope.push(h("span.badge.b-gray", channelLabel(r.channel)));
    return h("tr", { className: r.enabled ? "" : "off", dataset: { id: r.id } },
      h("td.num", h("strong", String(r.priority))),
      h("td", h("div", h("code.pattern", r.pattern)), r.name && r.name !== r.pattern.slice(0, 40) ? h("div.cell-sub.one", r.name) : null),
      h("td.nowrap", h("span.badge." + m[1], m[0])),
      h("td", replyPreview(r)),
      h("td", scope.length ? h("div.cell-meta", scope) : h("span.muted", "全部")),
      h("td.nowrap", A.toggle(r.enabled, function (on, input) { setEnabled(r, on, input); }, "启用")),
      h("td.num", String(r.hits || 0)),
      h("td.actions", A.canWrite ? [
        h("button.btn-link", { type: "button", onclick: function () { openEditor(r); } }, "编辑"),
        h("button.btn-link.danger", { type: "button", onclick: function () { remove(r); } }, "删除")] : null));
  }

  function setEnabled(r, on, input) {
    A.api("PUT", "/api/keyword-rules/" + r.id, { enabled: on }).then(function (saved) {
      r.enabled = saved.enabled;
      input.closest("tr").classList.toggle("off", !saved.enabled);
      A.toast(saved.enabled ? "规则已启用" : "规则已停用", "ok");
    }).catch(function (err) { input.checked = !on; A.toast(A.errorText(err), "error"); });
  }

  function remove(r) {
    A.confirm({ title: "删除关键词规则", text: "确定删除规则“" + (r.name || r.pattern) + "”吗？此操作无法恢复。", ok: "删除" })
      .then(function (yes) {
        if (!yes) return;
        return A.api("DELETE", "/api/keyword-rules/" + r.id).then(function () { A.toast("已删除", "ok"); return reload(); });
      }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  // ---- editor ----------------------------------------------------------------------------------
  function radio(name) { var el = document.querySelector('input[name="' + name + '"]:checked'); return el ? el.value : ""; }
  function setRadio(name, value) {
    document.querySelectorAll('input[name="' + name + '"]').forEach(function (el) { el.checked = el.value === value; });
  }

  function syncForm() {
    var mt = radio("match_type"), rt = radio("reply_type");
    $("kw-pattern-hint").textContent = HINTS[mt] || "";
    $("kw-pattern").classList.toggle("mono", mt === "regex");
    document.querySelectorAll("[data-reply]").forEach(function (el) { el.hidden = el.dataset.reply !== rt; });
  }

  function openEditor(r) {
    var form = $("kw-form");
    A.clearErrors(form);
    state.editing = r || null;
    var v = r || { name: "", match_type: "contains", pattern: "", priority: 0, account_id: "", channel: "", enabled: true,
      reply: { type: "text", text: "" } };
    var rep = v.reply || {};
    $("kw-title").textContent = r ? "编辑关键词规则" : "新建关键词规则";
    setRadio("match_type", v.match_type);
    $("kw-pattern").value = v.pattern;
    $("kw-name").value = r && v.name !== v.pattern.slice(0, 40) ? v.name : "";
    $("kw-priority").value = v.priority;
    A.options($("kw-account"), accountPairs("所有账号"), v.account_id || "");
    $("kw-channel").value = v.channel || "";
    setRadio("reply_type", rep.type || "text");
    $("kw-text").value = rep.type === "text" || !rep.type ? rep.text || "" : "";
    $("kw-media").value = rep.media_id || "";
    $("kw-pic").value = rep.type === "image" ? rep.pic_url || "" : "";
    $("kw-title-in").value = rep.title || "";
    $("kw-url").value = rep.url || "";
    $("kw-desc").value = rep.description || "";
    $("kw-cover").value = rep.type === "link" ? rep.pic_url || "" : "";
    $("kw-enabled").checked = v.enabled !== false;
    $("kw-meta").textContent = r ? "#" + r.id + " · 已命中 " + (r.hits || 0) + " 次" : "";
    syncForm();
    A.open("kw-drawer");
  }

  function collect() {
    var rt = radio("reply_type"), reply = { type: rt };
    if (rt === "text") reply.text = $("kw-text").value;
    if (rt === "image") {
      if ($("kw-media").value.trim()) reply.media_id = $("kw-media").value.trim();
      if ($("kw-pic").value.trim()) reply.pic_url = $("kw-pic").value.trim();
    }
    if (rt === "link") {
      reply.title = $("kw-title-in").value.trim();
      reply.url = $("kw-url").value.trim();
      if ($("kw-desc").value.trim()) reply.description = $("kw-desc").value.trim();
      if ($("kw-cover").value.trim()) reply.pic_url = $("kw-cover").value.trim();
    }
    var pr = $("kw-priority").value.trim();
    return { name: $("kw-name").value.trim(), match_type: radio("match_type"), pattern: $("kw-pattern").value,
      priority: pr === "" ? 0 : /^-?\d+$/.test(pr) ? parseInt(pr, 10) : pr, account_id: $("kw-account").value,
      channel: $("kw-channel").value.trim(), enabled: $("kw-enabled").checked, reply: reply };
  }

  function save(ev) {
    ev.preventDefault();
    var form = $("kw-form"), btn = $("kw-save");
    A.clearErrors(form);
    var r = state.editing, body = collect();
    btn.disabled = true;
    A.api(r ? "PUT" : "POST", r ? "/api/keyword-rules/" + r.id : "/api/keyword-rules", body).then(function (saved) {
      A.close("kw-drawer");
      A.toast(r ? "已保存" : "规则已创建：" + saved.pattern, "ok");
      return reload();
    }).catch(function (err) { A.formError(form, err); })
      .then(function () { btn.disabled = false; });
  }

  // ---- tester ----------------------------------------------------------------------------------
  function test(ev) {
    ev.preventDefault();
    var form = $("kw-test-form"), box = U.clear($("kt-result"));
    A.clearErrors(form);
    var text = $("kt-text").value;
    if (!text.trim()) { A.fieldError(form, "text", "请输入要测试的消息"); return; }
    var channel = $("kt-channel").value.trim();
    A.api("POST", "/api/keyword-rules/test", { text: text, account_id: $("kt-account").value, channel: channel || null })
      .then(function (res) {
        var r = res.rule;
        if (!r) {
          box.appendChild(h("div.verdict.none", { id: "kt-verdict", dataset: { verdict: "none" } }, h("span.verdict-icon", "–"),
            h("div", h("div.verdict-title", "没有规则命中"), h("div.verdict-note", "这条消息会交给 FAQ 机器人；它也答不上来时转人工。"))));
          return;
        }
        var rep = r.reply || {};
        box.appendChild(h("div.verdict.ok", { id: "kt-verdict", dataset: { verdict: "hit", rule: r.id } }, h("span.verdict-icon", "✓"),
          h("div", h("div.verdict-title", "命中规则 #" + r.id + "：" + (r.name || r.pattern)),
            h("div.verdict-note", (MATCH[r.match_type] || [r.match_type])[0] + " “" + r.pattern + "” · 优先级 " + r.priority),
            h("div.verdict-note", "自动回复（" + (REPLY[rep.type] || rep.type) + "）：" +
              (rep.type === "link" ? rep.title + " " + rep.url : rep.type === "image" ? rep.media_id || rep.pic_url : rep.text)))));
        var tr = document.querySelector('#kw-rows tr[data-id="' + r.id + '"]');
        if (tr) { tr.classList.add("flash"); setTimeout(function () { tr.classList.remove("flash"); }, 1600); }
      }).catch(function (err) { A.formError(form, err); });
  }

  function loadChannels() {
    return A.api("GET", "/api/channels").then(function (res) {
      var dl = U.clear($("channel-list"));
      (res.channels || []).forEach(function (c) {
        state.channels[String(c.id)] = c.name;
        dl.appendChild(h("option", { value: String(c.id) }, c.name));
      });
      render();
    }).catch(function () { return null; });  // optional: names for channel codes
  }

  document.addEventListener("DOMContentLoaded", function () {
    A.options($("kt-account"), accountPairs("不指定"));
    $("kw-new").addEventListener("click", function () { openEditor(null); });
    $("kw-form").addEventListener("submit", save);
    $("kw-form").addEventListener("change", function (ev) {
      if (ev.target.name === "match_type" || ev.target.name === "reply_type") syncForm();
    });
    $("kw-test-form").addEventListener("submit", test);
    $("kw-q").addEventListener("input", A.debounce(render, 150));
    $("kw-type").addEventListener("change", render);
    reload().then(loadChannels);
  });
})();
