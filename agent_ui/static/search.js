/* scrm-hub archive search (/supervisor/search): GET /api/search with filters, newest first, "more" pages with
 * before=; a result opens its conversation in a side panel with CSV / JSON export; keyword watches (CRUD on
 * /api/watches) and their hits, live over Socket.IO (watch.hit). The URL carries the query (?q=&account=...&conv=)
 * so a search can be shared or bookmarked. The only HTML ever inserted is a result's ``highlight`` from the API
 * (the text escaped by the server, matches in <mark>); everything else goes in as text nodes (HubUtil.h). */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$, L = U.LABELS;
  var PAGE = 30;
  var FILTERS = ["account", "channel", "agent", "customer", "tag", "since", "until", "direction"];
  var S = {
    users: new Map(), params: null, terms: [], nextBefore: null, shown: 0, token: 0,
    conv: null, watches: [], hits: [], hitIds: new Set(), hitsBefore: null
  };

  var ERRORS = {
    invalid_query: { "enter at least one character to search for, or choose a filter": "请输入要搜索的内容，或选择一个筛选条件",
      "at most 8 search terms": "最多 8 个搜索词（用空格分开）",
      "a search term has at most 64 characters": "每个搜索词最多 64 个字" },
    invalid_customer: "客户 ID 须为整数", invalid_agent: "请选择客服", invalid_channel: "请选择渠道",
    invalid_direction: "请选择方向", invalid_since: "开始日期无效", invalid_until: "结束日期须晚于开始日期",
    invalid_limit: "每页条数无效", invalid_before: "翻页位置无效",
    duplicate_word: "已经在监控这个词了", invalid_word: "请填写 1–64 个字的监控词",
    too_many_watches: "监控词已达上限（500 个）", unknown_watch: "这个监控词已被删除",
    unknown_conversation: "会话不存在", forbidden: "你的角色没有权限执行此操作"
  };
  function errorText(err) {
    var mapped = ERRORS[err.code];
    if (mapped && typeof mapped === "object") mapped = mapped[err.serverMessage];
    return mapped || A.errorText(err);
  }
  function showError(root, err) { A.fieldError(root, err.field, errorText(err)); }

  // ---- labels ------------------------------------------------------------------------------------
  function accountName(id) { return A.accountName(id); }
  function userName(id) {
    var u = S.users.get(Number(id));
    return u ? (u.display_name || u.username) : "客服 #" + id;
  }
  function senderLabel(m) {
    var s = m.sender || "";
    if (m.direction === "in") return s === "customer" ? "客户" : s || "客户";
    if (s === "bot") return "机器人";
    if (s === "system") return "系统";
    if (s.indexOf("agent:") === 0) return userName(s.slice(6));
    if (s.indexOf("staff:") === 0) return "员工 " + s.slice(6);
    return s || "客服";
  }
  function channelBadge(channel) {
    return h("span.badge.ch-" + channel, L.channel[channel] || channel || "—");
  }
  var KINDS = { image: "[图片]", voice: "[语音]", video: "[视频]", file: "[文件]", location: "[位置]", link: "[链接]" };

  /** Text with every search term wrapped in <mark> (built as nodes, never parsed as HTML). */
  function marked(text, terms) {
    text = text || "";
    var lower = text.toLowerCase(), out = [], i = 0;
    var words = (terms || []).map(function (t) { return String(t).toLowerCase(); }).filter(Boolean);
    while (i < text.length && words.length) {
      var best = -1, len = 0;
      words.forEach(function (w) {
        var at = lower.indexOf(w, i);
        if (at >= 0 && (best < 0 || at < best || (at === best && w.length > len))) { best = at; len = w.length; }
      });
      if (best < 0) break;
      if (best > i) out.push(text.slice(i, best));
      out.push(h("mark", text.slice(best, best + len)));
      i = best + len;
    }
    if (i < text.length) out.push(text.slice(i));
    return out;
  }

  // ---- URL <-> form ------------------------------------------------------------------------------
  function formParams() {
    var p = { q: $("q").value.trim() };
    FILTERS.forEach(function (k) { var v = $("f-" + k).value.trim(); if (v) p[k] = v; });
    return p;
  }
  function urlParams() {
    var sp = new URLSearchParams(window.location.search), p = {};
    ["q"].concat(FILTERS).forEach(function (k) { if (sp.get(k)) p[k] = sp.get(k); });
    return p;
  }
  function fillForm(p) {
    $("q").value = p.q || "";
    FILTERS.forEach(function (k) {
      var el = $("f-" + k), v = p[k] || "";
      if (el.tagName === "SELECT" && v && !Array.prototype.some.call(el.options, function (o) { return o.value === v; })) {
        el.appendChild(h("option", { value: v }, v));  // a bookmarked value the lists do not (yet) hold
      }
      el.value = v;
    });
  }
  function pageUrl(p, conv) {
    var sp = new URLSearchParams();
    Object.keys(p).forEach(function (k) { if (p[k]) sp.set(k, p[k]); });
    if (conv) { sp.set("conv", conv.id); if (conv.message) sp.set("msg", conv.message); }
    var qs = sp.toString();
    return window.location.pathname + (qs ? "?" + qs : "");
  }
  /** The brand's calendar days -> epoch seconds: since = that day's 00:00, until = the day after's 00:00 (inclusive). */
  function dayStart(value, plusDays) {
    var m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value || "");
    if (!m) return value;
    return String(U.zoneMidnight(Number(m[1]), Number(m[2]), Number(m[3]) + (plusDays || 0)));
  }
  function apiQuery(p, before) {
    var sp = new URLSearchParams({ q: p.q || "", limit: String(PAGE) });
    FILTERS.forEach(function (k) {
      if (!p[k]) return;
      sp.set(k, k === "since" ? dayStart(p[k], 0) : k === "until" ? dayStart(p[k], 1) : p[k]);
    });
    if (before) sp.set("before", before);
    return "/api/search?" + sp.toString();
  }

  // ---- search ------------------------------------------------------------------------------------
  function search(p, append) {
    var form = $("search-form"), token = ++S.token;
    A.clearErrors(form);
    if (!append) { S.params = p; S.nextBefore = null; S.shown = 0; }
    $("search-submit").disabled = true;
    $("more").disabled = true;
    $("results").classList.add("loading");
    return A.api("GET", apiQuery(S.params, append ? S.nextBefore : null)).then(function (page) {
      if (token !== S.token) return;
      S.terms = page.terms || [];
      if (!append) U.clear($("hits"));
      page.results.forEach(function (r) { $("hits").appendChild(hitNode(r)); });
      S.shown += page.results.length;
      S.nextBefore = page.next_before;
      renderSummary();
    }, function (err) {
      if (token !== S.token) return;
      if (!append) { U.clear($("hits")); S.shown = 0; S.nextBefore = null; renderSummary(err); }
      showError(form, err);
    }).then(function () {
      if (token !== S.token) return;
      $("search-submit").disabled = false;
      $("more").disabled = false;
      $("results").classList.remove("loading");
    });
  }

  function renderSummary(err) {
    var searched = !!(S.params && S.params.q) && !err;
    $("results-title").textContent = searched ? "“" + S.params.q + "”的搜索结果" : "搜索结果";
    $("results-note").textContent = searched
      ? (S.shown ? "已显示 " + S.shown + " 条" + (S.nextBefore ? "，还有更多" : "") + " · 从新到旧" : "") : "";
    var empty = $("results-empty");
    empty.hidden = S.shown > 0;
    empty.querySelector(".empty-title").textContent = searched ? "没有找到相关消息" : "搜索全部聊天记录";
    empty.querySelector("p").textContent = searched
      ? "换个说法、减少搜索词，或放宽筛选条件（日期、账号、客服）再试试。"
      : "中文按字匹配，不受分词影响：搜“款到”也能找到“全额退款到账”。结果从新到旧，可以按账号、渠道、客服、客户、标签、日期和方向筛选。";
    $("results-foot").hidden = S.shown === 0;
    $("more").hidden = !S.nextBefore;
    $("results-end").hidden = !!S.nextBefore;
  }

  function hitNode(r) {
    var snippet = h("div.hit-text");
    snippet.innerHTML = r.highlight;  // the API's highlight: HTML-escaped text with <mark> around matches
    var who = r.direction === "in" ? "客户" : senderLabel(r);
    var link = h("a.hit-open", { href: pageUrl(S.params, { id: r.conversation_id, message: r.message_id }),
      dataset: { conv: r.conversation_id, message: r.message_id } }, "查看会话 #" + r.conversation_id);
    return h("li.hit.hit-" + r.direction, { dataset: { message: r.message_id } },
      h("div.hit-meta",
        h("span.hit-dir", { title: r.direction === "in" ? "客户发来" : "发给客户" }, who),
        channelBadge(r.channel),
        h("span.hit-account", accountName(r.account_id)),
        r.customer_id ? h("button.btn-link.hit-customer", { type: "button", title: "只看这位客户的消息",
          dataset: { customer: r.customer_id } }, "客户 #" + r.customer_id) : h("span.muted", r.peer_id || ""),
        r.recalled ? h("span.tag-recalled", "已撤回") : null,
        r.masked ? h("span.tag-masked", { title: "手机号、证件号等已按你的角色隐藏" }, "已脱敏") : null,
        r.kind !== "text" ? h("span.muted", KINDS[r.kind] || r.kind) : null,
        h("span.spacer"),
        h("time.hit-time", { title: U.fullTime(r.created_at) }, U.fullTime(r.created_at)), link),
      snippet);
  }

  // ---- conversation panel ------------------------------------------------------------------------
  function openConversation(id, messageId, push) {
    S.conv = { id: Number(id), message: messageId ? Number(messageId) : null, msgs: [], nextBefore: null, token: {} };
    var conv = S.conv;
    if (push) window.history.pushState(null, "", pageUrl(S.params || urlParams(), conv));
    $("conv-title").textContent = "会话 #" + id;
    $("conv-meta").textContent = "";
    $("conv-note").textContent = "";
    U.clear($("conv-messages"));
    $("conv-status").textContent = "加载中…";
    $("conv-older").hidden = true;
    $("conv-older").disabled = false;
    $("export-csv").href = "/api/conversations/" + id + "/export?format=csv";
    $("export-json").href = "/api/conversations/" + id + "/export?format=json";
    A.open("conv-drawer", $("export-csv"));
    A.api("GET", "/api/conversations/" + id).then(function (c) {
      if (S.conv !== conv) return;
      $("conv-meta").textContent = [L.channel[c.channel] || c.channel, accountName(c.account_id),
        "客户 " + (c.peer_id || "—"), "开始于 " + U.fullTime(c.created_at)].join(" · ");
    }, function () { /* the messages call reports the error */ });
    loadMessages(conv, true);
  }

  /** A page of the conversation (100, newest first); on opening, pages on until the hit is loaded (at most 20 pages). */
  function loadMessages(conv, seekHit, pages) {
    pages = pages || 0;
    var url = "/api/conversations/" + conv.id + "/messages?limit=100" + (conv.nextBefore ? "&before=" + conv.nextBefore : "");
    return A.api("GET", url).then(function (page) {
      if (S.conv !== conv) return;
      conv.msgs = page.messages.slice().reverse().concat(conv.msgs);
      conv.nextBefore = page.next_before;
      var found = !conv.message || conv.msgs.some(function (m) { return m.id === conv.message; });
      if (seekHit && !found && conv.nextBefore && pages < 20) return loadMessages(conv, true, pages + 1);
      renderConversation(conv, seekHit);
    }, function (err) {
      if (S.conv !== conv) return;
      $("conv-status").textContent = errorText(err);
    });
  }

  function messageNode(m, isHit) {
    var out = m.direction === "out";
    var role = out ? (m.sender === "bot" ? "bot" : m.sender === "system" ? "system" : "agent") : "customer";
    if (m.kind && m.kind.indexOf("event") === 0) {
      return h("li.event-line", { dataset: { mid: m.id } }, h("span", "事件 · " + m.kind.replace(/^event\./, "") + " · " + U.fullTime(m.created_at)));
    }
    var text = m.kind === "text" ? m.text : (KINDS[m.kind] || "[" + m.kind + "]") + (m.text ? " " + m.text : "");
    return h("li.msg." + (out ? "out" : "in") + ".r-" + role + (m.recalled ? ".recalled" : "") + (isHit ? ".msg-hit" : ""),
      { dataset: { mid: m.id } },
      h("div.meta", h("span.who", senderLabel(m)), h("span.at", { title: U.fullTime(m.created_at) }, U.clock(m.created_at)),
        m.recalled ? h("span.tag-recalled", "已撤回") : null, isHit ? h("span.hit-flag", "搜索命中") : null),
      h("div.bubble", h("div.text", isHit ? marked(text, S.terms) : text)));
  }

  function renderConversation(conv, scrollToHit) {
    var box = $("conv-body"), fromBottom = box.scrollHeight - box.scrollTop;  // older pages keep the view still
    var list = U.clear($("conv-messages")), hitNodeEl = null, lastDay = null;
    conv.msgs.forEach(function (m) {
      var day = U.day(m.created_at);
      if (day !== lastDay) { list.appendChild(h("li.day-line", h("span", day))); lastDay = day; }
      var el = messageNode(m, m.id === conv.message);
      if (m.id === conv.message) hitNodeEl = el;
      list.appendChild(el);
    });
    $("conv-status").textContent = conv.msgs.length ? "" : "这个会话还没有消息";
    $("conv-older").hidden = !conv.nextBefore;
    $("conv-note").textContent = "已加载 " + conv.msgs.length + " 条" + (conv.nextBefore ? "（更早的消息可继续加载）" : "，全部消息");
    if (scrollToHit && hitNodeEl) hitNodeEl.scrollIntoView({ block: "center" });
    else if (scrollToHit) box.scrollTop = box.scrollHeight;
    else box.scrollTop = box.scrollHeight - fromBottom;
  }

  function closeConversation() {
    if (!S.conv) return;
    S.conv = null;
    if (new URLSearchParams(window.location.search).get("conv")) {
      window.history.pushState(null, "", pageUrl(S.params || urlParams(), null));
    }
  }

  // ---- keyword watches ---------------------------------------------------------------------------
  function loadWatches() {
    return A.api("GET", "/api/watches").then(function (body) { S.watches = body.watches; renderWatches(); },
      function (err) { A.toast(errorText(err), "error"); });
  }

  function renderWatches() {
    var list = U.clear($("watches"));
    S.watches.forEach(function (w) {
      list.appendChild(h("li.watch" + (w.enabled ? "" : ".off"), { dataset: { watch: w.id } },
        h("button.watch-word", { type: "button", title: "搜索“" + w.word + "”", dataset: { word: w.word } }, w.word),
        h("span.watch-by.muted", { title: "添加于 " + U.fullTime(w.created_at) }, w.created_by || ""),
        h("span.spacer"),
        A.toggle(w.enabled, function (on, input) { setEnabled(w, on, input); }, (w.enabled ? "停用" : "启用") + "监控 " + w.word),
        h("button.icon-btn.watch-del", { type: "button", title: "删除", "aria-label": "删除监控词 " + w.word,
          dataset: { del: w.id } }, "×")));
    });
    $("watch-count").textContent = String(S.watches.filter(function (w) { return w.enabled; }).length);
    $("watches-empty").hidden = S.watches.length > 0;
  }

  function addWatch(ev) {
    ev.preventDefault();
    var form = $("watches-panel"), input = $("watch-word");
    A.clearErrors(form);
    $("watch-add").disabled = true;
    A.api("POST", "/api/watches", { word: input.value }).then(function (w) {
      S.watches.push(w);
      renderWatches();
      input.value = "";
      A.toast("已开始监控“" + w.word + "”", "ok");
    }, function (err) { showError(form, err); }).then(function () { $("watch-add").disabled = false; input.focus(); });
  }

  function setEnabled(w, on, input) {
    A.api("PUT", "/api/watches/" + w.id, { enabled: on }).then(function (saved) {
      Object.assign(w, saved);
      renderWatches();
    }, function (err) { input.checked = !on; A.toast(errorText(err), "error"); });
  }

  function deleteWatch(id) {
    var w = S.watches.filter(function (x) { return x.id === id; })[0];
    if (!w) return;
    A.confirm({ title: "删除监控词", text: "不再提醒“" + w.word + "”。已记录的命中会保留。", ok: "删除" }).then(function (yes) {
      if (!yes) return;
      A.api("DELETE", "/api/watches/" + id).then(function () {
        S.watches = S.watches.filter(function (x) { return x.id !== id; });
        renderWatches();
      }, function (err) { A.toast(errorText(err), "error"); loadWatches(); });
    });
  }

  function loadHits(more) {
    var url = "/api/watch-hits?limit=20" + (more && S.hitsBefore ? "&before=" + S.hitsBefore : "");
    return A.api("GET", url).then(function (body) {
      if (!more) { S.hits = []; S.hitIds.clear(); }
      body.hits.forEach(function (x) { if (!S.hitIds.has(x.id)) { S.hitIds.add(x.id); S.hits.push(x); } });
      S.hitsBefore = body.next_before;
      renderHits();
    }, function (err) { A.toast(errorText(err), "error"); });
  }

  function renderHits(freshId) {
    var list = U.clear($("watch-hits"));
    S.hits.forEach(function (x) {
      list.appendChild(h("li.watch-hit" + (x.id === freshId ? ".fresh" : ""), { dataset: { hit: x.id } },
        h("div.watch-hit-head", h("span.watch-tag", x.word), h("span.muted", accountName(x.account_id)),
          h("span.spacer"), h("time.muted", { title: U.fullTime(x.at) }, U.clock(x.at))),
        h("div.watch-hit-text", marked(x.text, [x.word])),
        h("a.hit-open", { href: pageUrl(S.params || urlParams(), { id: x.conversation_id, message: x.message_id }),
          dataset: { conv: x.conversation_id, message: x.message_id } }, "查看会话 #" + x.conversation_id)));
    });
    $("watch-hit-count").textContent = String(S.hits.length) + (S.hitsBefore ? "+" : "");
    $("watch-hits-empty").hidden = S.hits.length > 0;
    $("watch-hits-foot").hidden = !S.hitsBefore;
  }

  function onWatchHit(x) {
    if (!x || S.hitIds.has(x.id)) return;
    S.hitIds.add(x.id);
    S.hits.unshift(x);
    renderHits(x.id);
    var excerpt = (x.text || "").length > 40 ? x.text.slice(0, 40) + "…" : x.text;
    A.toast("关键词“" + x.word + "”：" + excerpt, "warn");
  }

  // ---- live --------------------------------------------------------------------------------------
  function setConn(state) {
    var el = $("conn");
    el.dataset.state = state;
    el.querySelector(".conn-label").textContent = { connected: "实时提醒已连接", connecting: "连接中…", offline: "已断开，重连中…" }[state] || state;
  }

  function connect() {
    if (!window.io) { setConn("offline"); return; }
    var socket = window.io({ reconnectionDelay: 800, reconnectionDelayMax: 5000, transports: ["websocket"] });
    socket.on("connect", function () { setConn("connected"); loadHits(false); });  // hits missed while away
    socket.on("disconnect", function () { setConn("offline"); });
    socket.on("connect_error", function (err) {
      if (err && err.message === "unauthorized") window.location.assign("/login?next=" + encodeURIComponent(window.location.pathname));
      else setConn("offline");
    });
    socket.on("watch.hit", onWatchHit);
  }

  // ---- filter lists ------------------------------------------------------------------------------
  function fillLists() {
    var boot = A.boot;
    A.options($("f-account"), [["", "全部账号"]].concat((boot.accounts || []).map(function (a) {
      return [a.id, a.name + "（" + ((boot.platforms || {})[a.platform] || a.platform) + "）"];
    })));
    A.options($("f-channel"), [["", "全部渠道"]].concat(Object.keys(boot.channels || L.channel).map(function (k) {
      return [k, (boot.channels || L.channel)[k]];
    })));
    var users = A.api("GET", "/api/users").then(function (body) {
      body.users.forEach(function (u) { S.users.set(u.id, u); });
      A.options($("f-agent"), [["", "全部客服"]].concat(body.users.map(function (u) {
        return [String(u.id), (u.display_name || u.username) + (u.role !== "agent" ? "（" + ((boot.roles || {})[u.role] || u.role) + "）" : "")];
      })));
    }, function () { return null; });
    var tags = A.api("GET", "/api/tags").then(function (body) {
      var sel = $("f-tag"), keep = sel.value;
      A.options(sel, [["", "全部标签"]]);
      var groups = new Map();
      body.tags.forEach(function (t) {
        var g = t.group || "未分组";
        if (!groups.has(g)) groups.set(g, h("optgroup", { label: g }));
        groups.get(g).appendChild(h("option", { value: t.name }, t.name));
      });
      groups.forEach(function (og) { sel.appendChild(og); });
      sel.value = keep;
    }, function () { return null; });
    return Promise.all([users, tags]);
  }

  // ---- wiring ------------------------------------------------------------------------------------
  function fromUrl() {
    var p = urlParams(), sp = new URLSearchParams(window.location.search);
    fillForm(p);
    if (p.q) search(p, false);
    else { S.params = p; U.clear($("hits")); S.shown = 0; S.nextBefore = null; renderSummary(); }
    var conv = sp.get("conv");
    if (conv && /^\d+$/.test(conv)) openConversation(conv, sp.get("msg"), false);
    else if (S.conv) { S.conv = null; A.close("conv-drawer"); }
  }

  function submit(ev) {
    ev.preventDefault();
    var p = formParams(), url = pageUrl(p, null);
    if (url !== window.location.pathname + window.location.search) window.history.pushState(null, "", url);
    search(p, false);
  }

  function onClick(ev) {
    var open = ev.target.closest("a.hit-open");
    if (open && !ev.ctrlKey && !ev.metaKey && !ev.shiftKey && ev.button === 0) {
      ev.preventDefault();
      openConversation(open.dataset.conv, open.dataset.message, true);
      return;
    }
    var cust = ev.target.closest(".hit-customer");
    if (cust) { $("f-customer").value = cust.dataset.customer; $("search-form").requestSubmit(); return; }
    var word = ev.target.closest(".watch-word");
    if (word) { $("q").value = word.dataset.word; $("search-form").requestSubmit(); return; }
    var del = ev.target.closest(".watch-del");
    if (del) deleteWatch(Number(del.dataset.del));
  }

  /** Words, or a filter alone ("everything this customer said", "everything of that day"). */
  function wanted() {
    return !!$("q").value.trim() || FILTERS.some(function (k) { return !!$("f-" + k).value.trim(); });
  }

  function wire() {
    $("search-form").addEventListener("submit", submit);
    $("f-reset").addEventListener("click", function () {
      FILTERS.forEach(function (k) { $("f-" + k).value = ""; });
      A.clearErrors($("search-form"));
      if (wanted()) $("search-form").requestSubmit();
    });
    ["f-account", "f-channel", "f-agent", "f-tag", "f-direction", "f-since", "f-until"].forEach(function (id) {
      $(id).addEventListener("change", function () { if (wanted()) $("search-form").requestSubmit(); });
    });
    $("more").addEventListener("click", function () { search(S.params, true); });
    $("conv-older").addEventListener("click", function () {
      var conv = S.conv, btn = $("conv-older");
      if (!conv || conv.loading) return;  // a double click asked for the same page twice: shown twice
      conv.loading = true;
      btn.disabled = true;
      loadMessages(conv, false).then(function () {
        conv.loading = false;
        if (S.conv === conv) btn.disabled = false;
      });
    });
    $("conv-drawer").addEventListener("admin:closed", closeConversation);
    $("watch-form").addEventListener("submit", addWatch);
    $("watch-word").addEventListener("input", function () { A.clearErrors($("watches-panel")); });
    $("watch-hits-more").addEventListener("click", function () { loadHits(true); });
    document.addEventListener("click", onClick);
    window.addEventListener("popstate", fromUrl);
    fillLists();  // a bookmarked agent / tag stays selected: fillForm added it, the lists keep the current value
    fromUrl();
    loadWatches();
    connect();
  }

  window.HubSearch = { state: S, search: search, open: openConversation };
  document.addEventListener("DOMContentLoaded", wire);
})();
