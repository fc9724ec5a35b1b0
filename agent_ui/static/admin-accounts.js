/* 平台账号 page: list / add / edit WeCom corps and Official Accounts; callback URL, Token and
 * EncodingAESKey with copy and generate buttons; live status (polled every 5 s). */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var PLATFORMS = A.boot.platforms || { wecom: "企业微信", oa: "公众号" };
  var state = { accounts: [], now: 0, editing: null, origin: window.location.origin };

  function ago(t) {
    if (!t) return "从未";
    var s = Math.max(0, Math.round(state.now - t));
    if (s < 60) return s + " 秒前";
    if (s < 3600) return Math.floor(s / 60) + " 分钟前";
    if (s < 86400) return Math.floor(s / 3600) + " 小时前";
    return U.fullTime(t);
  }

  function copy(text) {
    var done = function () { A.toast("已复制", "ok"); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { A.toast("复制失败，请手动选择", "error"); });
      return;
    }
    var ta = h("textarea", { readonly: true }, text);
    document.body.appendChild(ta); ta.select();
    try { document.execCommand("copy"); done(); } catch (e) { A.toast("复制失败，请手动选择", "error"); }
    document.body.removeChild(ta);
  }

  function statusCell(ok, t, none) {
    if (!t) return h("td", h("span.pill.lo", none));
    return h("td", h("span.pill." + (ok ? "ok" : "bad"), ok ? "正常" : "失败"), " ", h("span.muted", ago(t)));
  }

  function render() {
    var body = U.clear($("acct-rows"));
    $("acct-empty").hidden = state.accounts.length > 0;
    $("acct-total").textContent = "共 " + state.accounts.length + " 个";
    state.accounts.forEach(function (a) {
      var st = a.status || {};
      body.appendChild(h("tr", { dataset: { id: a.id } },
        h("td", h("strong", a.name || a.id), h("div.muted", a.id)),
        h("td", PLATFORMS[a.platform] || a.platform),
        h("td", h("code.copy-value", a.callback_url), " ",
          h("button.btn.btn-ghost.btn-sm", { type: "button", onclick: function () { copy(a.callback_url); } }, "复制")),
        statusCell(true, st.last_callback_at, "尚未收到"),
        statusCell(st.last_verify_ok, st.last_verify_at, "尚未验证"),
        h("td.acct-failure", st.last_failure ? [h("span.muted", ago(st.last_failure_at) + " "), st.last_failure] : h("span.muted", "—")),
        h("td.actions", h("button.btn.btn-sm", { type: "button", onclick: function () { edit(a); } }, "编辑"))));
    });
  }

  function reload() {
    return A.api("GET", "/api/accounts").then(function (res) {
      state.accounts = res.accounts; state.now = res.now; render();
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function poll() {
    A.api("GET", "/api/accounts/status").then(function (res) {
      state.now = res.now;
      state.accounts.forEach(function (a) { a.status = res.status[a.id] || a.status; });
      render();
    }).catch(function () { /* next tick */ });
  }

  function urlPreview() {
    var id = $("af-id").value.trim() || "{账号ID}", p = $("af-platform").value;
    $("af-url").textContent = state.origin + "/callbacks/" + p + "/" + id;
    $("af-receive-label").firstChild.textContent = p === "wecom" ? "CorpID" : "AppID";
    $("af-mode-field").hidden = p !== "oa";  // WeCom sends encrypted messages only
  }

  function edit(a) {
    var form = $("acct-form");
    A.clearErrors(form);
    state.editing = a || null;
    $("acct-title").textContent = a ? "编辑账号 · " + (a.name || a.id) : "添加账号";
    $("af-platform").value = a ? a.platform : "wecom";
    $("af-platform").disabled = !!a;
    $("af-id").value = a ? a.id : ""; $("af-id").disabled = !!a;
    $("af-name").value = a ? a.name : "";
    $("af-receive").value = a ? a.receive_id : "";
    $("af-secret").value = "";
    $("af-token").value = a ? a.token : "";
    $("af-key").value = a ? a.encoding_aes_key : "";
    $("af-mode").value = a ? a.message_mode || "compat" : "safe";
    if (a) state.origin = a.callback_url.slice(0, a.callback_url.length - a.callback_path.length);
    urlPreview();
    A.open("acct-dialog", a ? $("af-name") : $("af-id"));
    if (!a) generate(true, true);
  }

  function generate(token, key) {
    return A.api("POST", "/api/accounts/generate").then(function (res) {
      if (token) $("af-token").value = res.token;
      if (key) $("af-key").value = res.encoding_aes_key;
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function save(ev) {
    ev.preventDefault();
    var form = $("acct-form");
    A.clearErrors(form);
    var body = { name: $("af-name").value, receive_id: $("af-receive").value, token: $("af-token").value,
      encoding_aes_key: $("af-key").value, secret: $("af-secret").value, message_mode: $("af-mode").value };
    var req = A.submitting(form, state.editing ? A.api("PUT", "/api/accounts/" + encodeURIComponent(state.editing.id), body)
      : A.api("POST", "/api/accounts", Object.assign(body, { id: $("af-id").value.trim(), platform: $("af-platform").value })));
    req.then(function () {
      A.close("acct-dialog"); A.toast("已保存，所有服务进程立即生效", "ok"); reload();
    }).catch(function (err) { A.formError(form, err); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("acct-new").addEventListener("click", function () { edit(null); });
    $("acct-form").addEventListener("submit", save);
    $("af-id").addEventListener("input", urlPreview);
    $("af-platform").addEventListener("change", urlPreview);
    $("af-gen-token").addEventListener("click", function () { generate(true, false); });
    $("af-gen-key").addEventListener("click", function () { generate(false, true); });
    document.querySelectorAll("[data-copy]").forEach(function (btn) {
      btn.addEventListener("click", function () {
        var el = $(btn.dataset.copy);
        copy(el.value !== undefined && el.tagName === "INPUT" ? el.value : el.textContent);
      });
    });
    reload();
    setInterval(poll, 5000);
  });
})();
