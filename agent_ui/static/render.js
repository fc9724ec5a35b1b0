/* scrm-hub console: DOM rendering (session list, chat, customer pane). Reads window.Hub.state;
 * never changes it. All user data goes in as text nodes (HubUtil.h), never as HTML. */
(function () {
  "use strict";
  var U = window.HubUtil, h = U.h, $ = U.$, L = U.LABELS;

  function customerName(entry) {
    var c = entry.customer || {}, s = entry.s || {};
    return c.name || s.peer_id || ("会话 #" + s.id);
  }

  /** The avatar's letter: the name's first character (an emoji is two UTF-16 units: slice(0, 1) cut it in half). */
  function initial(name) {
    return (Array.from(name || "")[0] || "").toUpperCase();
  }

  function channelBadge(channel) {
    if (!channel) return null;
    return h("span.badge.ch-" + channel, { title: "渠道" }, L.channel[channel] || channel);
  }

  function vipLevel(entry) {
    var c = entry.customer || {}, s = entry.s || {};
    return Math.max(Number(s.vip_level) || 0, Number(c.vip_level) || 0);
  }

  function vipBadge(level) {
    return level > 0 ? h("span.badge.vip", { title: "VIP 等级 " + level }, "VIP" + level) : null;
  }

  /** A session still shown that left the agent: closed, or taken away (requeued, transferred): not "closed". */
  function shownState(e) {
    return e.gone ? (e.s.state === "closed" ? "closed" : "removed") : e.s.state;
  }

  function stateTag(state) {
    return h("span.state.st-" + state, L.state[state] || state);
  }

  /** Seconds the customer has been waiting for an answer, or null when the agent spoke last. */
  function waitingSince(s) {
    if (!s || s.state === "closed") return null;
    var cust = s.last_customer_at || 0, agent = s.last_agent_at || 0;
    if (agent && agent >= cust) return null;  // answered last (a session handed on after its agent replied)
    if (s.state === "queued" || s.state === "assigned") return s.handover_at || cust || null;
    return cust > agent ? cust : null;
  }

  function waitText(s) {
    var since = waitingSince(s);
    if (since === null) return { text: "", level: "" };
    var sec = U.now() - since;
    return { text: "等待 " + U.duration(sec), level: sec >= 180 ? "late" : sec >= 60 ? "slow" : "ok" };
  }

  /** One-line preview of a message for the list. */
  function preview(m) {
    if (!m) return "";
    var d = m.data || {};
    switch (m.kind) {
      case "text": return m.text || d.content || "";
      case "image": return "[图片]";
      case "voice": return "[语音]" + (d.recognition ? " " + d.recognition : "");
      case "video": return "[视频]";
      case "file": return "[文件] " + (d.file_name || "");
      case "location": return "[位置] " + (d.label || "");
      case "link": return "[链接] " + (d.title || "");
      case "unknown": return "[" + otherKind(d.msg_type) + "]";
      default: return m.kind && m.kind.indexOf("event") === 0 ? eventText(m) : (m.text || "[" + m.kind + "]");
    }
  }

  var OTHER_KINDS = { miniprogram: "小程序", miniprogrampage: "小程序", business_card: "名片", channels: "视频号",
    merged_msg: "聊天记录", msgmenu: "菜单消息" };
  /** A message type the hub archives raw (unknown): its name, or the platform's type. */
  function otherKind(type) { return OTHER_KINDS[type] || "暂不支持的消息类型：" + (type || "未知"); }

  /** The conversation's newest message the console knows: of those loaded, or the one the session
   *  list came with (a session not opened since the list was loaded has none loaded). */
  function lastMessage(e) {
    var shown = e.msgs.filter(function (x) { return x.sender !== "system"; });  // not the hub's queue notices
    var m = shown[shown.length - 1], l = e.s.last_message;
    return !m ? l || null : l && l.id > m.id ? l : m;
  }

  function matches(entry, q) {
    if (!q) return true;
    var s = entry.s, last = lastMessage(entry);
    return [customerName(entry), s.peer_id, s.first_message, last && preview(last), s.group]
      .some(function (x) { return x && String(x).toLowerCase().indexOf(q) >= 0; });
  }

  /** A supervisor's list holds every open session: who holds the ones that are not theirs. */
  function holderTag(S, s, names) {
    if (!names || !s.agent_id || s.agent_id === S.me.id) return null;
    var name = names.get(s.agent_id) || "#" + s.agent_id;
    return h("span.holder", { title: "接待人：" + name }, name);
  }

  function renderList(S) {
    var list = $("session-list"), q = S.filter.trim().toLowerCase(), ids = S.order();
    var names = S.me.role === "supervisor" || S.me.role === "admin"
      ? new Map((S.agents || []).map(function (a) { return [a.id, a.name]; })) : null;
    U.clear(list);
    var shown = 0, unread = 0;
    ids.forEach(function (id) {
      var e = S.sessions.get(id);
      unread += e.unread || 0;
      if (!matches(e, q)) return;
      shown++;
      var s = e.s, last = lastMessage(e), w = waitText(s);
      var time = w.text ? h("span.wait.w-" + w.level, { dataset: { wait: s.id } }, w.text)
        : h("span.time", { dataset: { wait: s.id } }, U.clock(last ? last.created_at : s.handover_at));
      list.appendChild(h("li.session" + (id === S.currentId ? ".current" : "") + (e.gone ? ".gone" : ""), {
        role: "option", "aria-selected": id === S.currentId ? "true" : "false", tabindex: "-1",
        dataset: { id: id }, title: customerName(e)
      },
        h("div.avatar.av-" + (s.channel || "x"), { "aria-hidden": "true" }, initial(customerName(e))),
        h("div.session-body",
          h("div.row", h("span.name", customerName(e)), time),
          h("div.row", h("span.preview", (last ? preview(last) : s.first_message) || "\u00a0"),
            e.unread ? h("span.unread", { title: e.unread + " 条未读" }, e.unread > 99 ? "99+" : e.unread) : null),
          h("div.row.tags", channelBadge(s.channel), vipBadge(vipLevel(e)), stateTag(shownState(e)),
            holderTag(S, s, names),
            e.others && e.others.length ? h("span.viewing-dot", { title: e.others.join("、") + " 也在查看" }, "协同") : null))));
    });
    $("session-count").textContent = ids.length;
    $("sessions-empty").hidden = ids.length > 0;
    if (ids.length && !shown) list.appendChild(h("li.session-none", "没有匹配的会话"));
    var total = $("unread-total");
    total.hidden = !unread;
    total.textContent = unread ? unread + " 条未读" : "";
    document.title = (unread ? "(" + unread + ") " : "") + "客服工作台 · scrm-hub";
  }

  /** The 1-second tick: only the waiting timers change, the rest of the list stays put. */
  function tickWaits(S) {
    var nodes = document.querySelectorAll("[data-wait]");
    Array.prototype.forEach.call(nodes, function (node) {
      var e = S.sessions.get(Number(node.dataset.wait));
      if (!e) return;
      var w = waitText(e.s);
      if (!w.text) return;
      node.textContent = w.text;
      node.className = "wait w-" + w.level;
    });
  }

  // ---- chat ------------------------------------------------------------------------------------
  function eventText(m) {
    var d = m.data || {}, k = m.kind || "";
    if (k === "event.subscribe") return "客户关注了公众号" + (d.scene ? "（场景 " + d.scene + "）" : "");
    if (k === "event.unsubscribe") return "客户取消了关注";
    if (k === "event.scan") return "客户扫描了二维码" + (d.scene ? "（场景 " + d.scene + "）" : "");
    if (k === "event.click") return "客户点击了菜单 " + (d.key || "");
    if (k === "event.recall") return d.servicer_userid ? "接待人员 " + d.servicer_userid + " 撤回了一条消息" : "客户撤回了一条消息";
    if (k === "event.external_contact") return "联系人变更：" + (d.change_type || "");
    if (k.indexOf("event.kf.") === 0) {
      var kf = { enter_session: "客户进入了会话", msg_send_fail: "消息发送失败", servicer_status_change: "接待人员状态变更",
        session_status_change: "会话状态变更", user_recall_msg: "客户撤回了一条消息" };
      return "微信客服：" + (kf[k.slice(9)] || k.slice(9));
    }
    return "事件：" + (d.event || k.replace(/^event\./, ""));
  }

  function senderLabel(S, m) {
    var s = m.sender || "";
    if (m.direction === "in") return s === "customer" ? "客户" : s;
    if (s === "bot") return "机器人";
    if (s === "system") return "系统";
    if (s.indexOf("agent:") === 0) {
      var id = Number(s.slice(6));
      if (id === S.me.id) return "我";
      var a = S.agents.filter(function (x) { return x.id === id; })[0];
      return a ? a.name : "客服 #" + id;
    }
    if (s.indexOf("staff:") === 0) return "员工 " + s.slice(6);
    return s || "客服";
  }

  var URL_IN_TEXT = /https?:\/\/[^\s<>"'，。！？、；：（）【】《》]+/gi;
  /** A text with its http(s) links clickable (an order or product link a customer pastes): text nodes
   *  and <a> elements only, opening in a new tab without access to this page. */
  function linked(text) {
    var out = [], last = 0, m;
    URL_IN_TEXT.lastIndex = 0;
    while ((m = URL_IN_TEXT.exec(text)) !== null) {
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(h("a", { href: m[0], target: "_blank", rel: "noopener noreferrer nofollow" }, m[0]));
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }

  function body(m) {
    var d = m.data || {};
    switch (m.kind) {
      case "text": return h("div.text", linked(m.text || d.content || ""));
      case "image":
        var src = U.safeUrl(d.pic_url);
        return src ? h("a.image", { href: src, target: "_blank", rel: "noopener noreferrer", title: "查看原图" },
          h("img", { src: src, alt: "图片", loading: "lazy", referrerpolicy: "no-referrer" }))
          : h("div.placeholder", h("span.ph-icon.ph-image"), "图片（无预览）");
      case "voice":
        return h("div.placeholder", h("span.ph-icon.ph-voice"), "语音" + (d.format ? "（" + d.format + "）" : ""),
          d.recognition ? h("div.recog", "识别：" + d.recognition) : null);
      case "video": return h("div.placeholder", h("span.ph-icon.ph-video"), "视频（请在手机端查看）");
      case "file": return h("div.placeholder", h("span.ph-icon.ph-file"), d.file_name || "文件");
      case "location":
        return h("div.location", h("span.ph-icon.ph-location"),
          h("div", h("div.loc-label", d.label || "位置"),
            h("div.loc-coord", "纬度 " + (d.latitude || "-") + "，经度 " + (d.longitude || "-"))));
      case "link":
        var url = U.safeUrl(d.url);
        return h("div.link-card",
          url ? h("a.link-title", { href: url, target: "_blank", rel: "noopener noreferrer" }, d.title || url)
            : h("div.link-title", d.title || "链接"),
          d.description ? h("div.link-desc", d.description) : null,
          h("div.link-url", d.url || ""));
      default:
        return h("div.placeholder", "[" + (m.kind === "unknown" ? otherKind(d.msg_type) : m.kind) + "，请在手机端查看]",
          d.title ? h("div.recog", d.title) : null, m.text ? h("div.recog", m.text) : null);
    }
  }

  function messageNode(S, m, pending) {
    if (m.kind && m.kind.indexOf("event") === 0) {
      return h("div.event-line", { dataset: { mid: m.id } }, h("span", eventText(m) + " · " + U.clock(m.created_at)));
    }
    var shown = window.HubReveal && m.masked ? window.HubReveal.text(m.id) : null;  // revealed earlier (console-reveal.js)
    if (shown !== null && shown !== undefined) m = Object.assign({}, m, { text: shown, masked: false });
    var out = m.direction === "out", role = out ? (m.sender === "bot" ? "bot" : m.sender === "system" ? "system" : "agent") : "customer";
    var status = null;
    if (pending) {
      status = pending.state === "unsent"
        ? h("span.delivery.d-failed", "未发出 ", h("button.btn-link.retry", { type: "button", dataset: { retry: pending.client_id } }, "重试"))
        : h("span.delivery.d-queued", "发送中…");
    } else if (out && m.status) {
      var err = m.status === "failed" && m.data && m.data.error;
      var why = err ? (L.sendError[err.errcode] || err.errmsg || "") : "";
      status = h("span.delivery.d-" + m.status, { title: err ? err.errcode + " " + err.errmsg : m.status },
        (L.delivery[m.status] || m.status) + (why ? "：" + why : ""));
    }
    return h("div.msg." + (out ? "out" : "in") + ".r-" + role + (m.recalled ? ".recalled" : ""),
      { dataset: { mid: m.id || "" } },
      h("div.meta", h("span.who", senderLabel(S, m)), h("span.at", { title: U.fullTime(m.created_at) }, U.clock(m.created_at)),
        m.recalled ? h("span.tag-recalled", "已撤回") : null, status,
        m.masked && m.id && !pending ? h("button.btn-link.reveal", { type: "button", dataset: { revealMid: m.id },
          title: "显示被隐藏的手机号、证件号等（会记录到审计日志）" }, "显示") : null),
      h("div.bubble", body(m)));
  }

  function dayKey(ts) { return U.dayKey(ts); }  // the brand's day

  function renderMessages(S, keepScroll) {
    var box = $("messages"), list = $("message-list"), e = S.current();
    if (!e) return;
    var atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    var fromBottom = box.scrollHeight - box.scrollTop;
    U.clear(list);
    var lastDay = null;
    e.msgs.forEach(function (m) {
      var k = dayKey(m.created_at);
      if (k !== lastDay) { list.appendChild(h("div.day-line", h("span", U.day(m.created_at)))); lastDay = k; }
      list.appendChild(messageNode(S, m));
    });
    e.pend.forEach(function (p) {
      list.appendChild(messageNode(S, { direction: "out", kind: "text", text: p.text, sender: "agent:" + S.me.id, created_at: p.at }, p));
    });
    if (!e.msgs.length && !e.pend.length) list.appendChild(h("div.event-line", h("span", "暂无消息")));
    $("older-btn").hidden = !e.hasOlder;
    if (keepScroll === "older") box.scrollTop = box.scrollHeight - fromBottom;
    else if (keepScroll !== "stay" || atBottom) box.scrollTop = box.scrollHeight;
    newBelow(e, keepScroll === "stay" && !atBottom);
  }

  /** While the agent reads older messages, what the customer wrote since shows as "↓ N 条新消息" (the
   *  view stays where it was and nothing said that more had come). */
  var shownEntry = null;  // the session whose messages are on screen
  function newBelow(e, reading) {
    shownEntry = e;
    var newest = e.msgs.length ? e.msgs[e.msgs.length - 1].id : 0;
    if (!reading || !e.seenId) e.seenId = newest;
    var fresh = e.msgs.filter(function (m) { return m.id > e.seenId && m.direction === "in"; }).length;
    var pill = $("new-below");
    pill.hidden = !fresh;
    pill.textContent = "↓ " + fresh + " 条新消息";
  }

  function seenAll() {
    var e = shownEntry;
    if (e && e.msgs.length) e.seenId = e.msgs[e.msgs.length - 1].id;
    $("new-below").hidden = true;
  }
  $("new-below").addEventListener("click", function () { var box = $("messages"); box.scrollTop = box.scrollHeight; seenAll(); });
  $("messages").addEventListener("scroll", function () {
    var box = $("messages");
    if (box.scrollHeight - box.scrollTop - box.clientHeight < 80) seenAll();
  });

  function renderChatHead(S) {
    var e = S.current();
    $("chat-empty").hidden = !!e;
    $("chat-main").hidden = !e;
    if (!e) return;
    var s = e.s;
    $("chat-name").textContent = customerName(e);
    var badges = U.clear($("chat-badges"));
    [channelBadge(s.channel), vipBadge(vipLevel(e)), stateTag(shownState(e))].forEach(function (b) { if (b) badges.appendChild(b); });
    U.clear($("chat-sub")).appendChild(h("span",
      [s.peer_id !== customerName(e) ? s.peer_id : null, s.group ? "技能组 " + s.group : null, s.handover_at ? "转人工 " + U.clock(s.handover_at) : null,
        "会话 #" + s.id].filter(Boolean).join(" · ")));
    var live = !e.gone && s.state !== "closed";
    $("accept-btn").hidden = !(live && s.state === "assigned");
    $("transfer-btn").disabled = !live;
    $("close-btn").disabled = !live;
    $("reply").disabled = !live;
    $("send-btn").disabled = !live;
    var banner = $("chat-banner");
    banner.hidden = live && s.state !== "assigned";
    banner.className = "chat-banner" + (live ? " info" : " warn");
    banner.textContent = !live ? (e.gone || "会话已结束") + "，无法继续回复"  // a colleague's handover says who and why
      : (e.transfer ? transferText(S, e.transfer) + "。" : "新会话待接入：") + "点击“接入”开始服务（直接回复也会自动接入）";
    renderPresence(S);
    renderSuggestions(S);
  }

  function renderPresence(S) {
    var e = S.current(), box = $("chat-presence"), typing = $("typing");
    if (!e) return;
    var others = e.others || [];
    box.hidden = !others.length;
    box.textContent = others.length ? others.join("、") + " 正在查看此会话" : "";
    var t = S.typing[e.s.id];
    var on = t && t.until > Date.now();
    typing.hidden = !on;
    typing.textContent = on ? t.name + " 正在输入…" : "";
  }

  function renderSuggestions(S) {
    var e = S.current(), box = U.clear($("suggestions"));
    var items = (e && e.s.suggestions || []).slice(0, 3);
    box.hidden = !items.length;
    if (!items.length) return;
    box.appendChild(h("span.assist-label", "推荐回答"));
    items.forEach(function (it, i) {
      var score = it.score !== undefined && it.score !== null ? Math.round(Number(it.score)) + "%" : "";
      box.appendChild(h("button.chip.suggestion", {
        type: "button", dataset: { suggest: i }, title: (it.question || "") + "\n\n" + (it.answer || "") + "\n\nAlt+" + (i + 1) + " 插入"
      }, h("kbd", String(i + 1)), h("span.chip-text", it.question || it.answer || ""), score ? h("span.score", score) : null));
    });
  }

  function renderQuick(S) {
    var list = U.clear($("quick-list")), q = $("quick-filter").value.trim().toLowerCase();
    var items = S.quickReplies.filter(function (r) { return !q || r.text.toLowerCase().indexOf(q) >= 0 || (r.title || "").toLowerCase().indexOf(q) >= 0; });
    items.forEach(function (r, i) {
      list.appendChild(h("li", h("button.quick-item", { type: "button", dataset: { quick: S.quickReplies.indexOf(r) }, title: r.text },
        r.title ? h("span.quick-title", r.title) : null, h("span.quick-text", r.text))));
    });
    if (!items.length) list.appendChild(h("li.quick-none", S.quickReplies.length ? "没有匹配的快捷回复" : "暂无快捷回复"));
  }

  // ---- customer pane ---------------------------------------------------------------------------
  function section(title, content, extra) {
    return h("section.card", h("div.card-head", h("h4", title), extra || null), content);
  }

  function kv(k, v, clamp) {
    if (v === undefined || v === null || v === "") return null;
    return h("div.kv", h("span.k", k), h("span.v" + (clamp ? ".clamp" : ""), { title: clamp ? String(v) : null }, String(v)));
  }

  function orderCard(o) {
    var items = o.items || [];
    var amount = o.paid_fen !== undefined ? o.paid_fen : o.amount_fen !== undefined ? o.amount_fen : o.total_fen;
    var lg = o.logistics || {};
    var company = o.logistics_company || lg.company, tracking = o.tracking_no || lg.tracking_no, lgStatus = lg.status || lg.state;
    return h("div.order",
      h("div.order-head", h("span.order-id", { title: "订单号" }, o.order_id || o.id || ""),
        h("span.badge.plat", L.platform[o.platform] || o.platform || ""),
        h("span.order-status.os-" + (o.status || ""), L.order[o.status] || o.status || "")),
      L.refund[o.refund_status] ? h("div.refund", "售后：" + L.refund[o.refund_status]) : null,
      h("ul.order-items", items.slice(0, 4).map(function (it) {
        return h("li", h("span.item-title", it.title || it.sku_id || "商品"), h("span.item-qty", "×" + (it.quantity || 1)));
      }), items.length > 4 ? h("li.more", "另有 " + (items.length - 4) + " 件") : null),
      h("div.order-foot", h("span.amount", U.money(amount)),
        h("span.order-time", o.created_at ? U.clock(o.created_at) : "")),
      company || tracking ? h("div.logistics", h("span.ph-icon.ph-truck"),
        [company, tracking, lgStatus].filter(Boolean).join(" · ")) : null);
  }

  function tagChip(t, removable) {
    if (typeof t === "string") t = { name: t };
    var dot = h("span.tag-dot");
    if (t.color && /^#[0-9a-f]{3,8}$/i.test(t.color)) dot.style.background = t.color; // CSSOM: allowed by the CSP
    var src = { keyword: "关键词", rule: "规则", manual: "手动" }[t.source] || t.source || "";
    return h("span.chip.tag", { title: [t.group ? "分组：" + t.group : "", src ? "来源：" + src : "", t.by ? "添加人：" + t.by : ""].filter(Boolean).join("\n") },
      dot, t.name || t.label || "",
      removable ? h("button.tag-x", { type: "button", dataset: { untag: t.name }, title: "移除标签", "aria-label": "移除标签 " + t.name }, "×") : null);
  }

  function renderProfile(S) {
    var box = U.clear($("profile")), e = S.current();
    if (!e) { box.appendChild(h("div.empty-state", h("div.empty-note", "客户资料会显示在这里"))); return; }
    var c = e.customer || {}, s = e.s, level = vipLevel(e);
    box.appendChild(h("div.profile-head",
      h("div.avatar.lg.av-" + (s.channel || "x"), initial(customerName(e))),
      h("div.profile-id", h("div.profile-name", customerName(e)), h("div.badges", channelBadge(s.channel), vipBadge(level)))));
    if (c.order_count || c.paid_total_fen) {
      box.appendChild(h("div.stats",
        h("div.stat", h("div.stat-v", U.money(c.paid_total_fen || 0)), h("div.stat-k", "近一年消费")),
        h("div.stat", h("div.stat-v", String(c.order_count || 0)), h("div.stat-k", "订单数")),
        h("div.stat", h("div.stat-v", c.last_contact_at ? U.clock(c.last_contact_at) : "-"), h("div.stat-k", "最近联系"))));
    }
    var ids = (c.identities || []).map(function (i) {
      return h("div.identity", h("span.k", L.identity[i.kind] || i.kind), h("span.v.mono", { title: i.value }, i.value),
        i.account_id ? h("span.acct", i.account_id + (i.verified ? " · 已验证" : "")) : null);
    });
    box.appendChild(section("身份", ids.length ? ids : h("div.muted", "暂无")));
    var canTag = !!c.customer_id && !e.gone;
    var tags = (c.tags || []).map(function (t) { return tagChip(t, canTag); });
    box.appendChild(section("标签", [
      h("div.tag-list", tags.length ? tags : h("span.muted", "暂无标签"),
        canTag ? h("button.chip.tag-add", { type: "button", id: "tag-add", title: "给客户添加标签" }, "+ 标签") : null),
      canTag ? h("input.tag-input", { id: "tag-input", type: "text", maxlength: "20", placeholder: "输入标签，回车添加", hidden: true }) : null,
      c.customer_id ? null : h("div.hint", "客户识别后可添加标签")]));
    var orders = c.orders || [];
    box.appendChild(section("最近订单", orders.length ? orders.slice(0, 5).map(orderCard) : h("div.muted", "暂无订单"),
      orders.length ? h("span.count", orders.length) : null));
    var moved = e.transfer;  // the colleague who handed it on, and the note they wrote for you
    box.appendChild(section("本次会话", [kv("状态", L.state[shownState(e)] || s.state), kv("技能组", s.group),
      moved && moved.from_agent ? kv("转接自", senderLabel(S, { direction: "out", sender: "agent:" + moved.from_agent })) : null,
      moved ? kv("转接备注", moved.note, true) : null,
      kv("接入账号", s.account_id), kv("首条消息", s.first_message, true), kv("转人工", U.fullTime(s.handover_at)),
      kv("接入时间", U.fullTime(s.accepted_at))]));
  }

  /** A transferred session's notification: who handed it on, and their note. */
  function transferText(S, t) {
    var who = t.from_agent ? senderLabel(S, { direction: "out", sender: "agent:" + t.from_agent }) : "主管";
    return "转接自 " + who + (t.note ? "：" + t.note : "");
  }

  // ---- header bits and toasts ------------------------------------------------------------------
  function renderQueue(S) {
    var box = $("queue"), groups = Object.keys(S.queue).filter(function (g) { return (S.me.groups || []).indexOf(g) >= 0 || S.me.role !== "agent"; });
    var total = groups.reduce(function (n, g) { return n + (S.queue[g] || 0); }, 0);
    box.hidden = !groups.length;
    U.clear(box).appendChild(U.h("span.queue-label", "排队"));
    box.appendChild(U.h("span.queue-n" + (total ? ".busy" : ""), String(total)));
    box.title = groups.map(function (g) { return g + "：" + (S.queue[g] || 0) + " 人等待"; }).join("\n") || "无人排队";
  }

  function toast(msg, kind) {
    var t = U.h("div.toast" + (kind ? "." + kind : ""), { role: "status" }, msg);
    $("toasts").appendChild(t);
    setTimeout(function () { t.classList.add("out"); }, 3600);
    setTimeout(function () { t.remove(); }, 4000);
  }

  function setConn(state) {
    var c = $("conn");
    c.dataset.state = state;
    c.querySelector(".conn-label").textContent = { connected: "已连接", reconnecting: "重新连接中…", connecting: "连接中…", offline: "未连接" }[state];
  }

  window.HubRender = {
    customerName: customerName, transferText: transferText, initial: initial, renderList: renderList, tickWaits: tickWaits, renderMessages: renderMessages,
    renderChatHead: renderChatHead, renderPresence: renderPresence, renderSuggestions: renderSuggestions,
    renderQuick: renderQuick, renderProfile: renderProfile, renderQueue: renderQueue, toast: toast, setConn: setConn, preview: preview, waitingSince: waitingSince
  };
})();
