/* 路由规则 page, part 2: skill groups with their agents and each agent's concurrency cap.
 * Groups: GET/POST /api/groups, PUT/DELETE /api/groups/{name} ({display_name, members: [user ids]});
 * caps: PUT /api/users/{id} {cap} (a cap is the agent's, shared by all their groups). */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var state = { groups: [], users: [], editing: null, picked: {}, caps: {} };

  function userById(id) { return state.users.filter(function (u) { return u.id === id; })[0]; }
  function name(u) { return u.display_name || u.username; }

  function load() {
    return Promise.all([A.api("GET", "/api/groups"), A.api("GET", "/api/users")]).then(function (res) {
      state.users = res[1].users;
      var names = res[0].groups;
      state.groups = names.map(function (g) {
        var members = state.users.filter(function (u) { return u.groups.indexOf(g.name) >= 0; });
        return { name: g.name, display_name: g.display_name, members: members };
      });
      render();
      var dl = $("group-list");
      if (dl) { U.clear(dl); names.forEach(function (g) { dl.appendChild(h("option", { value: g.name }, g.display_name)); }); }
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function memberChip(u) {
    return h("span.member-chip" + (u.disabled ? ".off" : ""), { title: u.username + (u.disabled ? "（已停用）" : "") },
      h("span.member-name", name(u)), h("span.member-cap", String(u.cap)));
  }

  function render() {
    var body = U.clear($("grp-rows"));
    $("grp-count").textContent = state.groups.length;
    state.groups.forEach(function (g) {
      var active = g.members.filter(function (u) { return !u.disabled; });
      var cap = active.reduce(function (n, u) { return n + (u.cap || 0); }, 0);
      body.appendChild(h("tr", { dataset: { name: g.name } },
        h("td", h("div.cell-main", g.display_name || g.name), g.display_name && g.display_name !== g.name ? h("div.cell-sub.one", g.name) : null),
        h("td", g.members.length ? h("div.members-wrap", g.members.map(memberChip)) : h("span.muted", "还没有成员")),
        h("td.num", String(active.length)),
        h("td.num", String(cap)),
        h("td.actions.nowrap", A.canWrite ? [
          h("button.btn-link", { type: "button", onclick: function () { openEditor(g); } }, "编辑"),
          h("button.btn-link.danger", { type: "button", onclick: function () { remove(g); } }, "删除")] : null)));
    });
    var empty = U.clear($("grp-empty"));
    empty.hidden = state.groups.length > 0;
    empty.appendChild(h("div.empty-title", "还没有技能组"));
  }

  // ---- editor ----------------------------------------------------------------------------------
  function renderMembers() {
    var q = $("grp-member-q").value.trim().toLowerCase();
    var box = U.clear($("grp-members"));
    var shown = state.users.filter(function (u) {
      return u.role !== "admin" || state.picked[u.id];
    }).filter(function (u) {
      return !q || (u.username + "\n" + (u.display_name || "")).toLowerCase().indexOf(q) >= 0;
    });
    shown.forEach(function (u) {
      var check = h("input", { type: "checkbox", "aria-label": "加入 " + name(u) });
      check.checked = !!state.picked[u.id];
      check.addEventListener("change", function () {
        state.picked[u.id] = check.checked;
        row.classList.toggle("on", check.checked);
        pickedCount();
      });
      var cap = h("input.cap-input", { type: "number", min: 0, max: 100, step: 1, "aria-label": name(u) + " 的接待上限",
        dataset: { field: "members." + u.id + ".cap" } });
      cap.value = String(state.caps[u.id]);
      cap.addEventListener("input", function () { state.caps[u.id] = cap.value; });
      var row = h("div.member-row" + (check.checked ? ".on" : ""), { dataset: { user: u.id } },
        h("label.member-pick", check, h("span.member-name", name(u)), name(u) !== u.username ? h("span.cell-sub", u.username) : null,
          A.roleBadge(u.role), u.disabled ? h("span.badge.b-gray", "已停用") : null),
        h("label.member-cap-field", h("span", "上限"), cap,
          h("span.field-error", { dataset: { for: "members." + u.id + ".cap" }, hidden: true })));
      box.appendChild(row);
    });
    pickedCount();
  }

  function pickedCount() {
    var n = Object.keys(state.picked).filter(function (k) { return state.picked[k]; }).length;
    $("grp-member-total").textContent = "已选 " + n + " 人";
  }

  function openEditor(g) {
    state.editing = g;
    state.picked = {};
    state.caps = {};
    state.users.forEach(function (u) { state.caps[u.id] = u.cap; });
    if (g) g.members.forEach(function (u) { state.picked[u.id] = true; });
    var form = $("grp-form");
    A.clearErrors(form);
    $("grp-title").textContent = g ? "编辑技能组：" + (g.display_name || g.name) : "新建技能组";
    $("grp-name").value = g ? g.name : "";
    $("grp-name").disabled = !!g;
    $("grp-display").value = g ? g.display_name : "";
    $("grp-member-q").value = "";
    renderMembers();
    A.open("grp-drawer", g ? $("grp-display") : $("grp-name"));
  }

  /** Caps first (each is its own user update), then the group; the first refusal is shown beside its field. */
  function save(ev) {
    ev.preventDefault();
    var form = $("grp-form"), btn = $("grp-save"), g = state.editing;
    A.clearErrors(form);
    var members = Object.keys(state.picked).filter(function (k) { return state.picked[k]; }).map(Number);
    var capChanges = state.users.filter(function (u) { return String(state.caps[u.id]).trim() !== String(u.cap); });
    for (var i = 0; i < capChanges.length; i++) {
      var raw = String(state.caps[capChanges[i].id]).trim();
      if (!/^\d+$/.test(raw)) { A.fieldError(form, "members." + capChanges[i].id + ".cap", "接待上限为 0–100 的整数"); return; }
    }
    btn.disabled = true;
    var chain = Promise.resolve();
    capChanges.forEach(function (u) {
      chain = chain.then(function () {
        return A.api("PUT", "/api/users/" + u.id, { cap: parseInt(String(state.caps[u.id]).trim(), 10) })
          .catch(function (err) { err.field = "members." + u.id + ".cap"; throw err; });
      });
    });
    var body = { display_name: $("grp-display").value.trim(), members: members };
    chain.then(function () {
      if (g) return A.api("PUT", "/api/groups/" + encodeURIComponent(g.name), body);
      body.name = $("grp-name").value.trim();
      return A.api("POST", "/api/groups", body);
    }).then(function () {
      A.close("grp-drawer");
      A.toast(g ? "技能组已保存" : "技能组已创建", "ok");
      return load();
    }).catch(function (err) {
      A.formError(form, err);
      if (capChanges.length) load();  // caps saved before the refusal are now the users' own (the form keeps its values)
    }).then(function () { btn.disabled = false; });
  }

  // "this group is in use: routing rules: A, B; channel codes: C; setting: default_group" in the operator's words
  var USES = { "routing rules": "路由规则", "channel codes": "渠道活码", "ticket types": "工单类型", "ticket rules": "工单分派规则",
    "SLA rules": "SLA 规则" };
  function usesText(msg) {
    return String(msg || "").replace(/^this group is in use: /, "").split("; ").map(function (part) {
      var i = part.indexOf(": "), kind = i < 0 ? part : part.slice(0, i), what = i < 0 ? "" : part.slice(i + 2);
      if (kind === "setting") return "未命中规则时的默认技能组（设置 " + what + "）";
      if (kind === "open sessions") return what + " 个未结束的会话（排队或接待中，请先结束或转接）";
      return (USES[kind] || kind) + "“" + what.split(", ").join("”、“") + "”";
    }).join("；");
  }

  function remove(g) {
    A.confirm({ title: "删除技能组", text: "删除“" + (g.display_name || g.name) + "”？成员会从这个组移出，客服账号本身保留。", ok: "删除" })
      .then(function (yes) {
        if (!yes) return null;
        return A.api("DELETE", "/api/groups/" + encodeURIComponent(g.name)).then(function () {
          A.toast("已删除", "ok");
          return load();
        });
      }).catch(function (err) {
        A.toast(err.code === "group_in_use" ? "这个技能组还在使用，请先修改：" + usesText(err.serverMessage)
          : A.errorText(err), "error");
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var loaded = load();  // the editor lists the users: open it once they are here
    $("grp-new").addEventListener("click", function () { loaded.then(function () { openEditor(null); }); });
    $("grp-form").addEventListener("submit", save);
    $("grp-member-q").addEventListener("input", renderMembers);
  });
  window.AdminGroups = { reload: load };
})();
