/* 渠道活码 page: create / edit channel codes (the hub creates them on the platform), show the QR code with
 * PNG / SVG downloads (a WeCom code: WeCom's own image, PNG only), the 30-day totals (scans, adds,
 * conversions: customers who paid for an order after their first contact, and the conversion rate =
 * conversions / adds) and the per-day figures as an inline SVG bar chart. */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var SVG = "http://www.w3.org/2000/svg";
  var state = { codes: [], editing: null, showing: null };

  function split(v) { return v.split(/[,，\s]+/).map(function (s) { return s.trim(); }).filter(Boolean); }

  function parseSchedule(text) {
    var rows = text.split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
    if (!rows.length) return null;
    return rows.map(function (line) {
      var p = line.split(/\s+/), days = [], d = (p[0] || "").split("-");
      if (d.length === 2) for (var i = +d[0]; i <= +d[1]; i++) days.push(i - 1);
      else (p[0] || "").split(",").forEach(function (x) { if (x) days.push(+x - 1); });
      var t = (p[1] || "").split("-");
      return { weekdays: days, start: t[0] || "", end: t[1] || "", users: split(p[2] || "") };
    });
  }

  function scheduleText(s) {
    return (s || []).map(function (w) {
      var d = w.weekdays.map(function (x) { return x + 1; });
      return d.join(",") + " " + w.start + "-" + w.end + " " + (w.users || []).join(",");
    }).join("\n");
  }

  function load() {
    return A.api("GET", "/api/channels").then(function (res) { state.codes = res.channels; render(); })
      .catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function render() {
    var body = U.clear($("ch-rows"));
    $("ch-empty").hidden = state.codes.length > 0;
    state.codes.forEach(function (c) {
      body.appendChild(h("tr", { dataset: { id: String(c.id) } },
        h("td", h("strong", c.name)), h("td", A.accountName(c.account_id)),
        h("td", (c.tags || []).map(function (t) { return h("span.pill", t); })),
        h("td", c.route_group || (c.staff || []).join(", ") || "—"),
        h("td", c.enabled ? h("span.pill.ok", "启用") : h("span.pill.lo", "停用")),
        h("td.actions", h("button.btn.btn-sm.ch-show", { type: "button", onclick: function () { show(c); } }, "二维码与数据"), " ",
          h("button.btn.btn-sm", { type: "button", onclick: function () { edit(c); } }, "编辑"))));
    });
  }

  function show(c) {
    $("ch-detail").hidden = false;
    $("ch-detail-title").textContent = c.name;
    var base = "/api/channels/" + c.id;
    $("ch-qr").src = base + "/qr.png?scale=8&t=" + Date.now();
    $("ch-png").href = base + "/qr.png"; $("ch-svg").href = base + "/qr.svg";
    // WeCom gives its code as an image (qr_url is where it is): the PNG is that image, there is no SVG
    var wecom = c.platform === "wecom";
    $("ch-svg").hidden = wecom;
    $("ch-qr-label").textContent = wecom ? "企业微信二维码图片：" : "二维码内容：";
    $("ch-qr-url").textContent = c.qr_url || c.link_url || "";
    state.showing = c.id;
    U.clear($("ch-summary"));
    A.api("GET", base + "/stats?days=30").then(function (res) {
      if (state.showing !== c.id) return;  // another code was opened meanwhile
      var days = Array.isArray(res) ? res : [];
      summary(days); chart(days);
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
    $("ch-detail").scrollIntoView({ behavior: "smooth" });
  }

  /** The period's totals; the conversion rate is conversions / adds ("—" with no adds). */
  function summary(days) {
    function total(key) { return days.reduce(function (n, d) { return n + (+d[key] || 0); }, 0); }
    var adds = total("adds"), conversions = total("conversions");
    var rate = adds ? Math.round(conversions * 1000 / adds) / 10 + "%" : "—";
    var box = U.clear($("ch-summary"));
    [["scans", "扫码", total("scans")], ["adds", "新增客户", adds], ["conversions", "成交客户", conversions],
      ["rate", "转化率（成交 ÷ 新增）", rate]].forEach(function (s) {
      box.appendChild(h("div.stat-card", { dataset: { k: s[0] } }, h("div.stat-n", String(s[2])), h("div.stat-l", s[1])));
    });
  }

  function el(name, attrs, text) {
    var e = document.createElementNS(SVG, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, String(attrs[k])); });
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function chart(days) {
    var W = 900, H = 200, pad = 24, n = Math.max(days.length, 1);
    var max = Math.max(1, Math.max.apply(null, days.map(function (d) { return Math.max(d.scans || 0, d.adds || 0); })));
    var svg = el("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": "每日扫码与新增客户" });
    var bw = (W - pad * 2) / n;
    days.forEach(function (d, i) {
      var x = pad + i * bw, hs = (H - pad * 2) * (d.scans || 0) / max, ha = (H - pad * 2) * (d.adds || 0) / max;
      var a = el("rect", { x: x + 1, y: H - pad - hs, width: bw / 2 - 1, height: hs, "class": "bar-a" });
      a.appendChild(el("title", {}, d.day + " 扫码 " + (d.scans || 0)));
      var b = el("rect", { x: x + bw / 2, y: H - pad - ha, width: bw / 2 - 1, height: ha, "class": "bar-b" });
      b.appendChild(el("title", {}, d.day + " 新增 " + (d.adds || 0) + "，咨询 " + (d.conversations || 0) +
        "，成交 " + (d.conversions || 0)));
      svg.appendChild(a); svg.appendChild(b);
      if (i % 5 === 0) svg.appendChild(el("text", { x: x, y: H - 6 }, String(d.day).slice(5)));
    });
    svg.appendChild(el("text", { x: 2, y: pad - 6 }, String(max)));
    svg.appendChild(el("line", { x1: pad, x2: W - pad, y1: H - pad, y2: H - pad, stroke: "#d1d5db" }));
    U.clear($("ch-chart")).appendChild(svg);
  }

  function edit(c) {
    var form = $("ch-form");
    A.clearErrors(form);
    state.editing = c || null;
    $("ch-title").textContent = c ? "编辑活码 · " + c.name : "新建活码";
    A.options($("cf-account"), (A.boot.accounts || []).map(function (a) { return [a.id, a.name + "（" + (A.boot.platforms[a.platform] || a.platform) + "）"]; }), c ? c.account_id : undefined);
    $("cf-account").disabled = !!c;
    $("cf-name").value = c ? c.name : "";
    $("cf-tags").value = c ? (c.tags || []).join(", ") : "";
    $("cf-welcome").value = c ? c.welcome_text || "" : "";
    $("cf-group").value = c ? c.route_group || "" : "";
    $("cf-staff").value = c ? (c.staff || []).join(", ") : "";
    $("cf-schedule").value = c ? scheduleText(c.schedule) : "";
    A.open("ch-dialog", $("cf-name"));
  }

  function save(ev) {
    ev.preventDefault();
    var form = $("ch-form");
    A.clearErrors(form);
    var account = (A.boot.accounts || []).filter(function (a) { return a.id === $("cf-account").value; })[0] || {};
    var body = { name: $("cf-name").value, tags: split($("cf-tags").value), welcome_text: $("cf-welcome").value,
      route_group: $("cf-group").value.trim() || null };
    if ((state.editing ? state.editing.platform : account.platform) === "wecom") {
      body.staff = split($("cf-staff").value);
      body.schedule = parseSchedule($("cf-schedule").value);
    }
    var req = A.submitting(form, state.editing ? A.api("PUT", "/api/channels/" + state.editing.id, body)
      : A.api("POST", "/api/channels", Object.assign(body, { account_id: account.id, platform: account.platform })));
    var before = state.editing;
    req.then(function (code) {
      A.close("ch-dialog");
      // a one-person WeCom code given more staff moves to a new multi-person contact way: a new QR code
      var moved = before && before.config_id && code.config_id !== before.config_id;
      A.toast(moved ? "已保存：已换成多人活码，请重新下载二维码，旧二维码已失效" : "已保存", "ok");
      load().then(function () { show(code); });
    }).catch(function (err) { A.formError(form, err); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("ch-new").addEventListener("click", function () { edit(null); });
    $("ch-form").addEventListener("submit", save);
    A.api("GET", "/api/groups").then(function (res) {
      var dl = U.clear($("ch-groups"));
      res.groups.forEach(function (g) { dl.appendChild(h("option", { value: g.name }, g.display_name)); });
    }).catch(function () { /* the field still takes any name */ });
    load();
  });
})();
