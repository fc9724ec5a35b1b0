/* 用户 page: the users table (role, groups, status, load/cap, disabled), add user, edit role/groups/cap/
 * display name, disable/enable, reset password. */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var ROLES = A.boot.roles || { agent: "客服", supervisor: "主管", admin: "管理员" };
  var STATUS = U.LABELS.status;
  var me = (A.boot.user || {}).id;
  var state = { users: [], editing: null, resetting: null };
  var groups = null;

  function name(u) { return u.display_name || u.username; }

  function reload() {
    return A.api("GET", "/api/users").then(function (res) {
      state.users = res.users;
      var pairs = [["", "全部角色"]].concat((res.roles || Object.keys(ROLES)).map(function (r) { return [r, ROLES[r] || r]; }));
      A.options($("user-role"), pairs);
      render();
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function stats() {
    var active = state.users.filter(function (u) { return !u.disabled; });
    var online = active.filter(function (u) { return u.status === "online" || u.status === "busy"; });
    var load = active.reduce(function (n, u) { return n + (u.load || 0); }, 0);
    var cap = online.reduce(function (n, u) { return n + (u.cap || 0); }, 0);
    var box = U.clear($("user-stats"));
    [["启用的账号", active.length, ""], ["在线客服", online.length, "hi"], ["正在接待的会话", load + (cap ? " / " + cap : ""), ""],
      ["已停用", state.users.length - active.length, "lo"]].forEach(function (s) {
      box.appendChild(h("div.stat-card", h("div.stat-n." + (s[2] || "x"), String(s[1])), h("div.stat-l", s[0])));
    });
  }

  function render() {
    stats();
    var q = $("user-q").value.trim().toLowerCase(), role = $("user-role").value, showOff = $("user-show-disabled").checked;
    var shown = state.users.filter(function (u) {
      if (role && u.role !== role) return false;
      if (!showOff && u.disabled) return false;
      return !q || [u.username, u.display_name].concat(u.groups).join("\n").toLowerCase().indexOf(q) >= 0;
    });
    var body = U.clear($("user-rows"));
    shown.forEach(function (u) { body.appendChild(row(u)); });
    $("user-total").textContent = "共 " + state.users.length + " 人" + (shown.length !== state.users.length ? "，显示 " + shown.length : "");
    var empty = U.clear($("user-empty"));
    empty.hidden = shown.length > 0;
    empty.appendChild(h("div.empty-title", "没有符合条件的用户"));
  }

  function loadCell(u) {
    if (u.disabled) return h("span.muted", "—");
    var pct = u.cap ? Math.min(100, Math.round(100 * (u.load || 0) / u.cap)) : 0;
    var fill = h("i" + (pct >= 100 ? ".full" : pct >= 70 ? ".high" : ""));
    fill.style.width = pct + "%";
    return h("span.nowrap", h("span.load-bar", fill), h("span.num", (u.load || 0) + " / " + u.cap));
  }

  function row(u) {
    var self = u.id === me;
    return h("tr", { className: u.disabled ? "off" : "", dataset: { id: u.id, username: u.username } },
      h("td", h("div.user-cell", h("span.avatar", { "aria-hidden": "true" }, name(u).slice(0, 1)),
        h("div", h("div.cell-main", name(u), self ? h("span.muted", "（你）") : null), h("div.cell-sub.one", "@" + u.username)))),
      h("td.nowrap", A.roleBadge(u.role)),
      h("td", u.groups.length ? h("div.cell-meta", u.groups.map(function (g) { return h("span.badge.b-gray", g); })) : h("span.muted", "—")),
      h("td.nowrap", u.disabled ? h("span.muted", "—") : h("span.dot-status", h("span.status-dot.s-" + u.status), STATUS[u.status] || u.status)),
      h("td", loadCell(u)),
      h("td.nowrap", h("span.badge." + (u.disabled ? "b-red" : "b-green"), u.disabled ? "已停用" : "正常")),
      h("td.actions", A.canWrite ? [
        h("button.btn-link", { type: "button", onclick: function () { openEditor(u); } }, "编辑"),
        h("button.btn-link", { type: "button", onclick: function () { openReset(u); } }, "重置密码"),
        self ? null : h("button.btn-link" + (u.disabled ? "" : ".danger"), { type: "button", onclick: function () { setDisabled(u, !u.disabled); } },
          u.disabled ? "启用" : "停用")] : null));
  }

  // ---- add / edit ------------------------------------------------------------------------------
  function openEditor(u) {
    var form = $("user-form");
    A.clearErrors(form);
    state.editing = u || null;
    $("user-title").textContent = u ? "编辑用户 · " + name(u) : "添加用户";
    $("uf-username-field").hidden = !!u;
    $("uf-password-field").hidden = !!u;
    $("uf-username").value = u ? u.username : "";
    $("uf-password").value = "";
    $("uf-display").value = u ? u.display_name : "";
    A.options($("uf-role"), Object.keys(ROLES).map(function (r) { return [r, ROLES[r]]; }), u ? u.role : "agent");
    $("uf-role").disabled = !!u && u.id === me;
    $("uf-cap").value = u ? u.cap : 5;
    groups.set(u ? u.groups : []);
    A.open("user-dialog");
  }

  function save(ev) {
    ev.preventDefault();
    var form = $("user-form"), btn = $("uf-save"), u = state.editing;
    A.clearErrors(form);
    var capText = $("uf-cap").value.trim();
    var body = { display_name: $("uf-display").value.trim(), role: $("uf-role").value, groups: groups.get(),
      cap: /^\d+$/.test(capText) ? parseInt(capText, 10) : -1 };
    if (!u) { body.username = $("uf-username").value.trim(); body.password = $("uf-password").value; }
    else {
      // an edit sends only what the operator changed: the rest of the form is a copy from when it was opened,
      // and sending it back undid changes made meanwhile (a skill group's editor adding this user, say)
      if (body.display_name === (u.display_name || "")) delete body.display_name;
      if (body.role === u.role) delete body.role;
      if (body.cap === u.cap) delete body.cap;
      if (body.groups.slice().sort().join("\n") === u.groups.slice().sort().join("\n")) delete body.groups;
      if (!Object.keys(body).length) { A.close("user-dialog"); A.toast("没有改动", "ok"); return; }
    }
    btn.disabled = true;
    A.api(u ? "PUT" : "POST", u ? "/api/users/" + u.id : "/api/users", body).then(function (saved) {
      A.close("user-dialog");
      A.toast(u ? "已保存" : "已添加用户 " + saved.username, "ok");
      return reload();
    }).catch(function (err) { A.formError(form, err); })
      .then(function () { btn.disabled = false; });
  }

  // ---- disable / reset password ----------------------------------------------------------------
  function setDisabled(u, disabled) {
    var go = disabled
      ? A.confirm({ title: "停用账号", text: "停用后“" + name(u) + "”无法登录，正在接待的会话会重新排队分配。确定停用吗？", ok: "停用" })
      : Promise.resolve(true);
    go.then(function (yes) {
      if (!yes) return;
      return A.api("PUT", "/api/users/" + u.id, { disabled: disabled }).then(function () {
        A.toast(disabled ? "已停用 " + name(u) : "已启用 " + name(u), "ok");
        return reload();
      });
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function openReset(u) {
    var form = $("password-form");
    A.clearErrors(form);
    state.resetting = u;
    $("password-who").textContent = "为 " + name(u) + "（@" + u.username + "）设置新密码；对方下次登录时使用。";
    $("pw-new").value = "";
    $("pw-again").value = "";
    A.open("password-dialog");
  }

  function reset(ev) {
    ev.preventDefault();
    var form = $("password-form"), u = state.resetting, pw = $("pw-new").value;
    A.clearErrors(form);
    if (pw.length < 8) { A.fieldError(form, "password", "密码至少 8 位"); return; }
    if (pw !== $("pw-again").value) { A.fieldError(form, "password_again", "两次输入的密码不一致"); return; }
    $("pw-save").disabled = true;
    A.api("PUT", "/api/users/" + u.id, { password: pw }).then(function () {
      A.close("password-dialog");
      A.toast("已重置 " + name(u) + " 的密码", "ok");
    }).catch(function (err) { A.formError(form, err); })
      .then(function () { $("pw-save").disabled = false; });
  }

  document.addEventListener("DOMContentLoaded", function () {
    groups = A.tokenInput({ list: "group-list", field: "groups", placeholder: "如 presales，回车添加" });
    $("uf-groups").appendChild(groups.el);
    $("user-new").addEventListener("click", function () { openEditor(null); });
    $("user-form").addEventListener("submit", save);
    $("password-form").addEventListener("submit", reset);
    $("user-q").addEventListener("input", A.debounce(render, 150));
    $("user-role").addEventListener("change", render);
    $("user-show-disabled").addEventListener("change", render);
    A.api("GET", "/api/groups").then(function (res) {
      var dl = U.clear($("group-list"));
      res.groups.forEach(function (g) { dl.appendChild(h("option", { value: g.name }, g.display_name)); });
    }).catch(function () { return null; });
    reload();
  });
})();
