/* scrm-hub operator pages: shared helpers on top of util.js (HubUtil.h builds DOM; never innerHTML).
 * JSON over fetch with the session cookie, field errors beside the fields, dialogs/drawers, confirm,
 * toasts, small editors (list of lines, tokens/chips, on-off switch). Exposed as window.Admin. */
(function () {
  "use strict";
  var U = window.HubUtil, h = U.h;
  var boot = {};
  try { boot = JSON.parse(document.body.dataset.boot || "{}"); } catch (e) { boot = {}; }

  // ---- JSON API --------------------------------------------------------------------------------
  /** api("POST", "/api/faq", {..}) -> Promise of the JSON answer; rejects with err.code/.field/.status. */
  function api(method, url, body, opts) {
    opts = opts || {};
    var init = { method: method, credentials: "same-origin", headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      if (opts.raw) {
        init.body = body;
        init.headers["Content-Type"] = opts.contentType || "text/plain; charset=utf-8";
      } else {
        init.body = JSON.stringify(body);
        init.headers["Content-Type"] = "application/json";
      }
    }
    return fetch(url, init).then(function (resp) {
      return resp.text().then(function (text) {
        var data = null;
        try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
        if (resp.ok) return data;
        if (resp.status === 401) window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
        var err = new Error((data && data.message) || ("HTTP " + resp.status));
        err.status = resp.status;
        err.code = (data && data.error) || (resp.status === 403 ? "forbidden" : "http_" + resp.status);
        err.field = (data && data.field) || null;
        err.serverMessage = (data && data.message) || "";
        throw err;
      });
    }, function () {
      var err = new Error("network");
      err.status = 0; err.code = "network"; err.field = null; err.serverMessage = "";
      throw err;
    });
  }

  var CODES = {
    network: "无法连接服务器，请检查网络后重试", forbidden: "你的角色没有权限执行此操作",
    unauthorized: "登录已失效，请重新登录", internal: "服务器出错了，请稍后重试",
    invalid_question: "请填写标准问题（1–500 字）", invalid_answer: "请填写答案（1–4000 字）",
    invalid_similar: "相似问法格式不正确（每条 1–500 字）", invalid_category: "分类最多 64 个字",
    invalid_enabled: "请选择启用或停用", invalid_words: "每个词 1–64 个字，不能包含空格",
    invalid_username: "账号为 2–64 位字母、数字、“.”、“_” 或 “-”", invalid_role: "请选择角色",
    invalid_cap: "接待上限为 0–100 的整数", invalid_groups: "技能组名称不能为空", weak_password: "密码至少 8 位",
    username_taken: "该账号已存在", unknown_faq: "这条 FAQ 已被删除", unknown_rule: "这条规则已被删除",
    unknown_user: "该用户不存在", invalid_order: "规则列表已被他人修改，请刷新后重试",
    invalid_text: "请输入要测试的消息", invalid_vip_level: "VIP 等级须为整数", invalid_tags: "标签格式不正确",
    group_exists: "已有同名的技能组", invalid_members: "成员须是已有的用户", unknown_group: "没有这个技能组（已删除，或需先在“技能组”里创建）",
    invalid_display_name: "显示名称最多 64 个字", group_in_use: "这个技能组还在使用（路由规则、渠道活码、工单设置、SLA 规则、默认技能组或未结束的会话），请先修改或转走",
    invalid_welcome_text: "欢迎语过长：公众号与微信客服最多 2048 字节（约 682 个汉字），企业微信最多 4000 字节",
    platform_error: "平台接口调用失败，请检查账号的 Secret 与网络后重试",
    type_exists: "已有同名的工单类型", unknown_type: "这个工单类型不存在", invalid_label: "请填写显示名称（最多 64 字）",
    invalid_due_hours: "处理时限为 0–8760 之间的小时数", invalid_priority: "请选择优先级", invalid_group: "请填写技能组（1–64 字）",
    invalid_keywords: "关键词最多 50 个，每个 1–64 字", invalid_types: "请选择工单类型",
    last_admin: "至少要保留一位启用的管理员：请先把另一位用户设为管理员",
    invalid_id: "账号 ID 为 1–64 位英文字母、数字、“-” 或 “_”（是回调地址的一部分）", account_exists: "已有这个账号 ID",
    id_fixed: "账号 ID 是回调地址的一部分，不能修改", platform_fixed: "账号的平台不能修改，请添加一个新账号",
    invalid_platform: "请选择平台", invalid_receive_id: "请填写 CorpID / AppID（英文字母、数字、“-” 或 “_”）",
    invalid_token: "Token 为 3–32 位英文字母或数字（可点“生成”）",
    invalid_encoding_aes_key: "EncodingAESKey 为 43 位英文字母或数字（可点“生成”）", invalid_secret: "Secret 最多 128 个字符",
    invalid_message_mode: "请选择消息加解密方式"
  };
  var MESSAGES = [
    [/^1 to 500 characters$/, "请填写 1–500 个字符"],
    [/^an integer from -1000 to 1000$/, "请输入 -1000 到 1000 的整数"],
    [/^a text reply needs text$/, "请填写回复内容"],
    [/^an image reply needs media_id or pic_url$/, "图片回复需要素材 media_id 或图片链接"],
    [/^a link reply needs an http\(s\) url$/, "请填写以 http:// 或 https:// 开头的链接"],
    [/^a link reply needs a title$/, "请填写链接标题"],
    [/^must be a non-empty string$/, "不能为空"],
    [/^must be a non-empty list$/, "至少填写一项"],
    [/^must be an integer >= 0$/, "请输入不小于 0 的整数"],
    [/^must be an integer 0\.\.(\d+)$/, "请输入 0–$1 的整数"],
    [/^must be a positive integer$/, "请选择一位客服"],
    [/^at least one action/, "至少设置一个动作：技能组、优先级、专属客服或标签"],
    [/^longer than (\d+) characters$/, "不能超过 $1 个字"],
    [/^must be one of/, "取值无效"],
    [/^must be true or false$/, "请选择是或否"],
    [/^must be a number of seconds, 0 < seconds <= (\d+)$/, "请输入大于 0、不超过 $1 的秒数"],
    [/^must be an integer (\d+)\.\.(\d+)$/, "请输入 $1–$2 的整数"],
    [/^must be an integer 0\.\.100 \(0 = anywhere in the session\)$/, "请输入 0–100 的整数（0 = 整个会话）"],
    [/^must be a non-empty list of at most 500 strings$/, "至少填写一个词（最多 500 个）"],
    [/^must be a non-empty string of at most 100 characters$/, "每个词 1–100 个字"],
    [/^must be a string of at most (\d+) characters$/, "最多 $1 个字"],
    [/^notify needs the id of the user to tell$/, "请选择要通知的人"],
    [/^an average over an agent's replies has no one session to reassign$/, "平均响应时长针对客服而不是单个会话，不能“转给他人”"]
  ];

  // PUT /api/settings refusals ("key: detail", hub/settings_api.py and hub/business_hours.py), in Chinese
  var SETTING_MESSAGES = [
    [/^text of at most (\d+) characters, not empty$/, "请填写内容，最多 $1 个字"],
    [/^text of at most (\d+) characters$/, "最多 $1 个字"],
    [/^a list of at most (\d+) entries$/, "最多 $1 项"],
    [/^entry (\d+): 1 to (\d+) characters$/, "第 $1 项须为 1–$2 个字"],
    [/^must contain \{n\}.*$/, "必须包含 {n}（客户前面还有几位）"],
    [/^only \{n\} and \{position\} may be in braces.*$/, "花括号里只能写 {n} 或 {position}（要显示花括号本身，请写 {{ 或 }}）"],
    [/^an integer from (-?\d+) to (\d+)$/, "请输入 $1–$2 的整数"],
    [/^a number of seconds above (\d+), at most (\d+)$/, "请输入大于 $1、不超过 $2 的秒数"],
    [/^true or false$/, "请选择是或否"],
    [/^one of .*$/, "取值无效"],
    [/^unknown timezone '(.*)'$/, "未知的时区“$1”（例如 Asia/Shanghai）"],
    [/^an IANA timezone name.*$/, "请填写时区名称（例如 Asia/Shanghai）"],
    [/^bad time '(.*)', expected 'HH:MM'$/, "时间“$1”格式不对，应为 HH:MM（如 09:00）"],
    [/^end equals start.*$/, "结束时间不能与开始时间相同（全天请填 00:00-24:00）"],
    [/^a period is a pair.*$/, "每个时段需要开始和结束时间，如 09:00-18:00"],
    [/^bad date '(.*)', expected 'YYYY-MM-DD'$/, "日期“$1”格式不对，应为 YYYY-MM-DD"],
    [/^must be a list of ISO dates$/, "请每行填写一个日期 YYYY-MM-DD"],
    [/^(\d{4}-\d{2}-\d{2}) is also a holiday$/, "$1 同时被设为节假日，调休上班日与节假日不能重复"]
  ];
  function settingText(msg) {
    var detail = msg.replace(/^([A-Za-z_][\w.\[\]]*: )+/, "");  // "business_hours: weekly.0[0].start: bad time ..."
    for (var i = 0; i < SETTING_MESSAGES.length; i++) {
      if (SETTING_MESSAGES[i][0].test(detail)) return detail.replace(SETTING_MESSAGES[i][0], SETTING_MESSAGES[i][1]);
    }
    return "设置无效：" + detail;
  }

  // Python's re errors, in words an operator can act on ({n}: the 1-based character it points at)
  var REGEX_ERRORS = [
    [/^missing \), unterminated subpattern/, "第 {n} 个字符的左括号 ( 没有对应的右括号 )"],
    [/^unbalanced parenthesis/, "第 {n} 个字符的右括号 ) 多余"],
    [/^unterminated character set/, "第 {n} 个字符的方括号 [ 没有闭合"],
    [/^nothing to repeat/, "第 {n} 个字符的量词（* + ? {}）前面缺少内容"],
    [/^multiple repeat/, "第 {n} 个字符处量词重复"],
    [/^bad escape/, "第 {n} 个字符处是无效的转义"]
  ];
  function regexText(detail) {
    var pos = /at position (\d+)/.exec(detail);
    for (var i = 0; i < REGEX_ERRORS.length; i++) {
      if (REGEX_ERRORS[i][0].test(detail) && pos) {
        return "正则表达式无效：" + REGEX_ERRORS[i][1].replace("{n}", String(Number(pos[1]) + 1));
      }
    }
    return "正则表达式无效：" + detail;
  }

  /** A Chinese message for an API error (falls back to the server's own words). */
  function errorText(err) {
    if (!err) return "操作失败";
    var msg = err.serverMessage || "";
    if (err.code === "invalid_setting") return settingText(msg);
    if (/^invalid regular expression: /.test(msg)) return regexText(msg.replace(/^invalid regular expression: /, ""));
    for (var i = 0; i < MESSAGES.length; i++) {
      if (MESSAGES[i][0].test(msg)) return msg.replace(MESSAGES[i][0], MESSAGES[i][1]);
    }
    return CODES[err.code] || msg || err.message || "操作失败";
  }

  // ---- field errors ----------------------------------------------------------------------------
  function parentField(f) {
    if (/\[\d+\]$/.test(f)) return f.replace(/\[\d+\]$/, "");
    if (/\.[^.\[\]]+$/.test(f)) return f.replace(/\.[^.\[\]]+$/, "");
    return "";
  }

  function clearErrors(root) {
    root.querySelectorAll(".field-error").forEach(function (el) { el.textContent = ""; el.hidden = true; });
    root.querySelectorAll(".invalid").forEach(function (el) { el.classList.remove("invalid"); });
    root.querySelectorAll(".form-error").forEach(function (el) { el.textContent = ""; el.hidden = true; });
  }

  /** Show ``message`` beside the field named ``field`` (or its closest named parent: "conditions[1].value[0]"
   * -> "conditions[1].value" -> ...); else in the form's .form-error. True if placed beside a field. */
  function fieldError(root, field, message) {
    var f = field || "";
    while (f) {
      var slot = root.querySelector('.field-error[data-for="' + CSS.escape(f) + '"]');
      if (slot && slot.parentElement && slot.parentElement.getClientRects().length) {
        slot.textContent = message;
        slot.hidden = false;
        var input = root.querySelector('[data-field="' + CSS.escape(f) + '"]');
        if (input) {
          input.classList.add("invalid");
          var focusable = input.matches("input, textarea, select") ? input : input.querySelector("input, textarea, select");
          if (focusable) focusable.focus();
        }
        return true;
      }
      f = parentField(f);
    }
    var box = root.querySelector(".form-error");
    if (box) { box.textContent = message; box.hidden = false; }
    else toast(message, "error");
    return false;
  }

  /** Show an API error from a form submit: beside its field when the answer names one. */
  function formError(root, err) { return fieldError(root, err.field, errorText(err)); }

  // ---- toasts, dialogs, drawers, confirm -------------------------------------------------------
  function toast(text, kind) {
    var box = U.$("toasts");
    var el = h("div.toast" + (kind ? "." + kind : ""), { role: "status" }, text);
    box.appendChild(el);
    setTimeout(function () { el.classList.add("out"); }, 2600);
    setTimeout(function () { if (el.parentNode) el.parentNode.removeChild(el); }, 3100);
  }

  var openStack = [];
  /** Show a dialog or drawer and focus ``focus`` (default: its first field). */
  function open(id, focus) {
    var el = U.$(id);
    el.hidden = false;
    if (openStack.indexOf(id) < 0) openStack.push(id);
    var first = focus || el.querySelector("[autofocus], input:not([type=hidden]):not([type=checkbox]):not([type=radio]):not([type=file]):not(:disabled), textarea, select");
    if (first) first.focus();
  }
  function close(id) {
    var el = U.$(id);
    if (!el || el.hidden) return;
    el.hidden = true;
    openStack = openStack.filter(function (x) { return x !== id; });
    el.dispatchEvent(new CustomEvent("admin:closed"));
  }
  document.addEventListener("click", function (ev) {
    var closer = ev.target.closest("[data-close]");
    if (closer) { var host = closer.closest(".modal-backdrop, .drawer-backdrop"); if (host) close(host.id); }
  });
  document.addEventListener("mousedown", function (ev) {
    var t = ev.target;
    if (t.classList && (t.classList.contains("modal-backdrop") || t.classList.contains("drawer-backdrop"))) close(t.id);
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && openStack.length) { ev.preventDefault(); close(openStack[openStack.length - 1]); }
  });

  var confirmResolve = null;
  /** confirm({title, text, ok, danger}) -> Promise<boolean> */
  function confirm(opts) {
    U.$("confirm-title").textContent = opts.title || "确认";
    U.$("confirm-text").textContent = opts.text || "";
    var ok = U.$("confirm-ok");
    ok.textContent = opts.ok || "确定";
    ok.className = "btn " + (opts.danger === false ? "btn-primary" : "btn-danger");
    open("confirm-dialog", ok);
    return new Promise(function (resolve) { confirmResolve = resolve; });
  }
  function settleConfirm(value) {
    if (confirmResolve) { var r = confirmResolve; confirmResolve = null; r(value); }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var dlg = U.$("confirm-dialog");
    U.$("confirm-ok").addEventListener("click", function () { settleConfirm(true); close("confirm-dialog"); });
    dlg.addEventListener("admin:closed", function () { settleConfirm(false); });
    var logout = U.$("logout");
    if (logout) logout.addEventListener("click", function () {
      api("POST", "/api/logout", {}).catch(function () { return null; })
        .then(function () { window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname)); });
    });
  });

  // ---- small editors ---------------------------------------------------------------------------
  /** A list of one-line inputs with remove buttons and an "add" button (similar questions). */
  function listEditor(host, opts) {
    opts = opts || {};
    var rows = h("div.list-rows");
    var add = h("button.btn.btn-sm.btn-ghost.list-add", { type: "button" }, "+ " + (opts.addLabel || "添加一行"));
    U.clear(host).appendChild(rows);
    host.appendChild(add);
    function row(value) {
      var input = h("input", { type: "text", value: value || "", placeholder: opts.placeholder || "", maxlength: opts.maxlength || 500 });
      input.value = value || "";
      var el = h("div.list-row", input,
        h("button.icon-btn.list-x", { type: "button", "aria-label": "删除这一行", title: "删除", onclick: function () {
          rows.removeChild(el); if (!rows.children.length) row("");
        } }, "×"));
      input.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter") { ev.preventDefault(); row("").querySelector("input").focus(); }
      });
      rows.appendChild(el);
      return el;
    }
    add.addEventListener("click", function () { row("").querySelector("input").focus(); });
    return {
      set: function (values) { U.clear(rows); (values && values.length ? values : [""]).forEach(row); },
      get: function () {
        return Array.prototype.map.call(rows.querySelectorAll("input"), function (i) { return i.value.trim(); })
          .filter(Boolean);
      }
    };
  }

  /** Chips with an input: Enter, comma or blur adds; Backspace on empty removes the last (tags, groups, keywords). */
  function tokenInput(opts) {
    opts = opts || {};
    var values = [];
    var input = h("input.token-entry", { type: "text", placeholder: opts.placeholder || "输入后回车", list: opts.list || null,
      "aria-label": opts.label || opts.placeholder || "" });
    var box = h("div.tokens", { dataset: opts.field ? { field: opts.field } : {} }, input);
    function render() {
      Array.prototype.slice.call(box.querySelectorAll(".token")).forEach(function (t) { box.removeChild(t); });
      values.forEach(function (v, i) {
        box.insertBefore(h("span.token", h("span.token-text", v),
          h("button.token-x", { type: "button", "aria-label": "移除 " + v, onclick: function () {
            values.splice(i, 1); render(); if (opts.onchange) opts.onchange(values.slice());
          } }, "×")), input);
      });
      input.placeholder = values.length ? "" : (opts.placeholder || "输入后回车");
    }
    function commit() {
      var parts = input.value.split(/[,，、\n]/).map(function (s) { return s.trim(); }).filter(Boolean);
      var changed = false;
      parts.forEach(function (p) { if (values.indexOf(p) < 0) { values.push(p); changed = true; } });
      input.value = "";
      if (changed) { render(); if (opts.onchange) opts.onchange(values.slice()); }
    }
    input.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === "," || ev.key === "，") { ev.preventDefault(); commit(); }
      else if (ev.key === "Backspace" && !input.value && values.length) { values.pop(); render(); }
    });
    input.addEventListener("blur", commit);
    input.addEventListener("change", function () { if (opts.list) commit(); });
    box.addEventListener("click", function (ev) { if (ev.target === box) input.focus(); });
    return {
      el: box, input: input,
      set: function (list) { values = (list || []).map(String); render(); },
      get: function () { commit(); return values.slice(); }
    };
  }

  /** An on/off switch (a styled checkbox). */
  function toggle(checked, onchange, label) {
    var input = h("input", { type: "checkbox", role: "switch", "aria-label": label || "启用" });
    input.checked = !!checked;
    if (!boot.can_write) input.disabled = true;
    if (onchange) input.addEventListener("change", function () { onchange(input.checked, input); });
    return h("label.switch", input, h("span.switch-track", { "aria-hidden": "true" }));
  }

  function debounce(fn, ms) {
    var t = null;
    return function () { var args = arguments; clearTimeout(t); t = setTimeout(function () { fn.apply(null, args); }, ms); };
  }

  function roleBadge(role) {
    return h("span.role-badge.role-" + role, (boot.roles || {})[role] || role);
  }

  function accountName(id) {
    var a = (boot.accounts || []).filter(function (x) { return x.id === id; })[0];
    return a ? a.name : id;
  }

  /** Fill a <select> with [value, label] pairs, keeping the current value when it is still there. */
  function options(select, pairs, keep) {
    var current = keep === undefined ? select.value : keep;
    U.clear(select);
    pairs.forEach(function (p) { select.appendChild(h("option", { value: p[0] }, p[1])); });
    if (pairs.some(function (p) { return String(p[0]) === String(current); })) select.value = current;
  }

  /** A form's save, one at a time: its submit buttons stay disabled until ``req`` settles (a double
   * click on 保存并生成二维码 created two channel codes, each registered on the platform). */
  function submitting(form, req) {
    var buttons = Array.prototype.slice.call(form.querySelectorAll("button[type=submit]"));
    buttons.forEach(function (b) { b.disabled = true; });
    var done = function () { buttons.forEach(function (b) { b.disabled = false; }); };
    return req.then(function (v) { done(); return v; }, function (e) { done(); throw e; });
  }

  window.Admin = {
    boot: boot, canWrite: !!boot.can_write, api: api, errorText: errorText, clearErrors: clearErrors,
    fieldError: fieldError, formError: formError, toast: toast, open: open, close: close, confirm: confirm,
    listEditor: listEditor, tokenInput: tokenInput, toggle: toggle, debounce: debounce, roleBadge: roleBadge,
    accountName: accountName, options: options, submitting: submitting
  };
})();
