/* scrm-hub console: state, the Socket.IO connection (with resume) and the agent's actions.
 * Protocol: docs/realtime.md. The reply box lives in console-composer.js, rendering in render.js,
 * dialogs/keys/alerts in dialogs.js and shortcuts.js. */
(function () {
  "use strict";
  var U = window.HubUtil, R = window.HubRender, $ = U.$, L = U.LABELS, toast = R.toast, setConn = R.setConn;
  var boot = JSON.parse(document.body.dataset.boot || "{}");

  var S = {
    me: boot.user || {}, epoch: null, lastSeq: 0, synced: false,
    ahead: new Set(), // seqs applied past a gap (lastSeq is the last one with nothing missing before it)
    gapTimer: null,
    sessions: new Map(), currentId: null, filter: "",
    quickReplies: [], agents: [], groups: [], queue: {}, typing: {},
    removedSeq: {}, // session id -> seq of the event that took it away (guards against a stale list)
    current: function () { return this.currentId === null ? null : this.sessions.get(this.currentId) || null; },
    order: function () {
      return Array.from(this.sessions.values()).sort(function (a, b) {
        var ra = a.s.state === "active" ? 1 : 0, rb = b.s.state === "active" ? 1 : 0;  // waiting (queued too) first
        return ra - rb || (a.s.handover_at || 0) - (b.s.handover_at || 0) || a.s.id - b.s.id;
      }).map(function (e) { return e.s.id; });
    }
  };

  // the reply box (console-composer.js); its functions are hoisted declarations here, so it is made first
  var composer = window.HubComposer({ state: S, call: call, refreshLatest: refreshLatest });
  var send = composer.send, deliver = composer.deliver, retry = composer.retry, insertText = composer.insertText,
    updateCount = composer.updateCount, typed = composer.typed, insertSuggestion = composer.insertSuggestion,
    loadQuickReplies = composer.loadQuickReplies;
  // ---- state helpers ---------------------------------------------------------------------------
  function entry(s) {
    var e = S.sessions.get(s.id);
    if (!e) {
      e = { s: s, customer: null, msgs: [], pend: [], unread: 0, hasOlder: false, loaded: false, others: [],
        gone: null, addedSeq: 0, draft: "" };
      S.sessions.set(s.id, e);
    } else {
      e.s = Object.assign({}, e.s, s);
    }
    return e;
  }

  var mergeMsgs = window.HubSessionMsgs.merge, unanswered = window.HubSessionMsgs.unanswered;

  function watching(id) { return S.currentId === id && !document.hidden; }

  function renderAll() {
    R.renderList(S);
    R.renderChatHead(S);
    R.renderMessages(S);
    R.renderProfile(S);
    R.renderQueue(S);
  }

  function renderCurrent(scroll) {
    R.renderChatHead(S);
    R.renderMessages(S, scroll);
    R.renderProfile(S);
  }

  function setStatusUI(status) {
    $("status").value = status;
    $("status-pick").dataset.status = status;
    S.me.status = status;
    var note = $("sessions-empty-note");
    note.textContent = status === "online" ? "状态为“在线”，新会话会自动分配给你" : "当前为“" + (L.status[status] || status) + "”，切换到“在线”才会分配新会话";
  }

  // ---- socket ----------------------------------------------------------------------------------
  var socket = window.io({
    autoConnect: false, reconnectionDelay: 800, reconnectionDelayMax: 5000,
    // WebSocket only: with several hub processes behind one address a polling session would need
    // sticky routing (docs/deploy.md)
    transports: ["websocket"],
    // on a reconnect the hub replays what we missed after last_seq (or tells us to resync)
    auth: function (cb) { cb(S.synced && S.epoch ? { epoch: S.epoch, last_seq: S.lastSeq } : {}); }
  });

  /** emit with an ack; resolves {ok:false, error:"timeout"|"offline"} instead of hanging. */
  function call(event, data, timeoutMs) {
    return new Promise(function (resolve) {
      if (!socket.connected) { resolve({ ok: false, error: "offline", message: "未连接服务器，请稍后重试" }); return; }
      socket.timeout(timeoutMs || 10000).emit(event, data || {}, function (err, ack) {
        resolve(err ? { ok: false, error: "timeout" } : ack || { ok: false, error: "internal" });
      });
    });
  }

  /** Sequenced events: drop what was already applied (a replay after a resume can overlap). An
   * event past a gap is applied, and if the missing ones have not come a moment later (another hub
   * process's event can overtake them; an emit can fail) they are asked for again ("resume"). */
  function fresh(p) {
    if (!p || typeof p.seq !== "number") return true;
    if (p.epoch && p.epoch !== S.epoch) { restartSeq(p.epoch, p.seq); return true; }
    if (p.seq <= S.lastSeq || S.ahead.has(p.seq)) return false;
    if (p.seq === S.lastSeq + 1) {
      advanceTo(p.seq);
    } else {
      S.ahead.add(p.seq);
      if (!S.gapTimer) S.gapTimer = setTimeout(fillGap, 700);
    }
    return true;
  }

  /** Everything up to ``seq`` is applied: move past it and past what was applied beyond a gap it closes. */
  function advanceTo(seq) {
    S.lastSeq = seq;
    S.ahead.forEach(function (q) { if (q <= seq) S.ahead.delete(q); });
    while (S.ahead.delete(S.lastSeq + 1)) S.lastSeq += 1;
  }

  function restartSeq(epoch, seq) {
    if (epoch !== S.epoch) {
      // a new stream (the hub restarted): seqs of the old one mean nothing against the new list
      S.removedSeq = {};
      S.sessions.forEach(function (e) { e.addedSeq = 0; });
    }
    S.epoch = epoch;
    S.lastSeq = seq || 0;
    S.ahead.clear();
  }

  function fillGap() {
    S.gapTimer = null;
    if (!S.ahead.size) return;
    call("resume", { epoch: S.epoch, last_seq: S.lastSeq }).then(function (ack) {
      if (!ack.ok) S.gapTimer = S.gapTimer || setTimeout(fillGap, 3000);  // offline: the reconnect resumes
    });
  }

  socket.on("connect", function () {
    setConn("connected");
    var first = !S.synced;
    if (first) loadSessions().then(openLinked); else refreshMe();
    if (S.currentId !== null) call("viewing", { session_id: S.currentId });
    if (!S.quickReplies.length) loadQuickReplies();
    loadAgents();
    S.sessions.forEach(function (e) { e.pend.forEach(function (p) { if (p.state === "unsent") deliver(p); }); });
  });
  socket.on("disconnect", function (reason) {
    setConn("reconnecting");
    if (reason === "io server disconnect") setTimeout(function () { socket.connect(); }, 1000);
  });
  socket.io.on("reconnect_attempt", function () { setConn("reconnecting"); });
  socket.on("connect_error", function (err) {
    setConn("reconnecting");
    if (err && err.message === "unauthorized") {
      // refused by the hub: logged out or expired -> login page; anything else -> try again
      fetch("/api/me", { credentials: "same-origin" }).then(function (r) {
        if (r.status === 401) window.location.assign("/login?next=/console");
        else setTimeout(function () { socket.connect(); }, 3000);
      }).catch(function () { setTimeout(function () { socket.connect(); }, 3000); });
    }
  });

  socket.on("resync", function (p) {
    restartSeq(p.epoch, p.seq);
    loadSessions();
  });

  socket.on("session.new", function (b) {
    if (!fresh(b) || !b.session) return;
    var e = entry(b.session);
    e.customer = b.customer || e.customer;
    e.transfer = b.transfer || null;  // handed on by a colleague: who, and their note
    e.gone = null;
    e.addedSeq = b.seq || 0;
    delete S.removedSeq[b.session.id];
    mergeMsgs(e, b.history || [], true);
    e.hasOlder = (b.history || []).length >= 20;
    e.loaded = true;
    e.unread = watching(e.s.id) ? 0 : unanswered(e);  // as the server counts (a requeued session answered last: 0)
    R.renderList(S);
    if (S.currentId === e.s.id) renderCurrent("stay");
    if (window.Hub.alertNew) window.Hub.alertNew(R.customerName(e), b.transfer ? R.transferText(S, b.transfer) : b.session.first_message || "");
  });

  socket.on("message.new", function (p) {
    if (!fresh(p) || !p.message) return;
    var e = S.sessions.get(p.session_id);
    if (!e) return;
    var m = p.message;
    // my reply's message, by the client_id it was sent with: its pending copy is done (mergeMsgs drops it)
    // now, not when the reply's ack comes (after this event, or never: timed out)
    if (p.client_id && m.sender === "agent:" + S.me.id) {
      e.pend.forEach(function (x) { if (x.client_id === p.client_id) x.message_id = m.id; });
    }
    mergeMsgs(e, [m]);
    if (m.direction === "in" && m.sender === "customer") {
      e.s.last_customer_at = m.created_at;
      if (!watching(e.s.id)) e.unread = (e.unread || 0) + 1;
      if (window.Hub.alertMessage && !watching(e.s.id)) window.Hub.alertMessage(R.customerName(e), R.preview(m));
    } else if (m.direction === "out" && /^(agent|staff):/.test(m.sender || "")) {
      e.unread = 0;  // answered (here, another tab, a supervisor, the WeCom app): nothing unread, as the server counts
      // a reply of mine marked unsent (its ack timed out) that did go through: re-send it, idempotent by
      // client_id, which drops the pending copy
      if (m.sender === "agent:" + S.me.id) e.pend.forEach(function (x) { if (x.state === "unsent" && x.text === m.text) deliver(x); });
    }
    R.renderList(S);
    if (S.currentId === e.s.id) R.renderMessages(S, "stay");
  });

  // a reply's final delivery status (sent, or failed with the platform's reason)
  socket.on("message.status", function (p) {
    if (!fresh(p)) return;
    var e = S.sessions.get(p.session_id);
    var m = e && e.msgs.find(function (x) { return x.id === p.message_id; });
    if (!m) {
      // our own reply still pending (a session someone else holds: its message.new went to them): read it
      if (e && e.pend.some(function (x) { return x.message_id === p.message_id; })) refreshLatest(e.s.id);
      else if (p.closed && window.HubAlerts) window.HubAlerts.replyFailed(p);  // its session left the list: the top bar says so
      return;  // else not loaded: the next history read carries the status
    }
    m.status = p.status;
    if (p.error) m.data = Object.assign({}, m.data, { error: p.error });
    if (S.currentId === e.s.id) R.renderMessages(S, "stay");
  });

  function goneEvent(kind) {
    return function (p) {
      if (!fresh(p)) return;
      S.removedSeq[p.session_id] = p.seq || 0;
      var e = S.sessions.get(p.session_id);
      if (!e) return;
      var why = kind === "closed" ? "会话已结束" + (p.reason && L.closeReason[p.reason] ? "（" + L.closeReason[p.reason] + "）" : "")
        : L.removed[p.reason] || "会话已移出你的列表";
      if (p.reason === "erased") e.msgs = [];  // the customer's data is gone: so are the messages shown
      if (S.currentId === p.session_id) {
        e.gone = why;
        e.s.state = kind === "closed" ? "closed" : e.s.state;
        renderCurrent("stay");
      } else {
        S.sessions.delete(p.session_id);
      }
      R.renderList(S);
      if (!e.closingByMe) toast(R.customerName(e) + "：" + why, kind === "closed" ? "" : "warn");
    };
  }
  // a supervisor's list holds every open session; the others' changes reach them only as dashboard.update
  // (at most one a second): the list is read again, at most every 5 s (it stayed as loaded until a reload)
  var relist = null;
  socket.on("dashboard.update", function () {
    if (S.me.role === "agent" || relist) return;
    relist = setTimeout(function () { relist = null; loadSessions(); }, 5000);
  });
  socket.on("session.accepted", function (p) {  // accepted in another tab of mine (or by replying there)
    var e = fresh(p) && S.sessions.get(p.session_id);
    if (!e || e.s.state !== "assigned") return;
    e.s.state = "active";
    e.s.accepted_at = p.accepted_at;
    R.renderList(S);
    if (S.currentId === e.s.id) renderCurrent("stay");
  });
  socket.on("session.removed", goneEvent("removed"));
  socket.on("session.closed", goneEvent("closed"));

  socket.on("queue.changed", function (p) {
    if (p && typeof p.group === "string") S.queue[p.group] = p.waiting || 0;
    if (p && Array.isArray(p.agents)) {
      p.agents.forEach(function (a) {
        S.agents.forEach(function (x) { if (x.id === a.id) Object.assign(x, { status: a.status, load: a.load, cap: a.cap }); });
      });
    }
    R.renderQueue(S);
  });

  socket.on("agent.status", function (p) {
    if (p.agent_id === S.me.id) setStatusUI(p.status);
    S.agents.forEach(function (x) { if (x.id === p.agent_id) x.status = p.status; });
  });

  socket.on("session.escalated", function (p) {
    toast("会话 #" + p.session_id + " 客户等待过久" + (p.agent_id ? "（客服 #" + p.agent_id + "）" : ""), "warn");
  });

  /** The side panel's customer of a session changed: ``change(customer)`` gives the new one. */
  function customerEvent(change) {
    return function (p) {
      var e = fresh(p) && S.sessions.get(p.session_id);
      if (!e) return;
      e.customer = change(Object.assign({}, e.customer || {}), p);
      if (S.currentId === p.session_id) R.renderProfile(S);
    };
  }
  socket.on("customer.tags", customerEvent(function (c, p) { c.tags = p.tags || []; return c; }));
  socket.on("customer.updated", customerEvent(function (c, p) { return p.customer || c; }));  // a merge, its undo
  socket.on("order.updated", customerEvent(function (c, p) {
    var o = p.order;
    if (!o) return c;
    var list = (c.orders || []).filter(function (x) { return !(x.platform === o.platform && x.order_id === o.order_id); });
    list.push(o);
    list.sort(function (a, b) { return (b.created_at || 0) - (a.created_at || 0); });
    c.orders = list.slice(0, 5);
    return c;
  }));

  socket.on("presence.viewing", function (p) {
    var e = S.sessions.get(p.session_id);
    if (!e) return;
    var names = [];
    (p.viewers || []).forEach(function (v) { if (v.id !== S.me.id && names.indexOf(v.name) < 0) names.push(v.name); });
    e.others = names;
    var t = S.typing[p.session_id];
    if (t && names.indexOf(t.name) < 0) delete S.typing[p.session_id]; // they left: no longer typing
    R.renderList(S);
    if (S.currentId === p.session_id) R.renderPresence(S);
  });

  socket.on("presence.typing", function (p) {
    if (!p.user || p.user.id === S.me.id) return;
    S.typing[p.session_id] = { name: p.user.name, until: Date.now() + 4000 };
    R.renderPresence(S);
    setTimeout(function () { R.renderPresence(S); }, 4100);
  });

  // ---- loading ---------------------------------------------------------------------------------
  function loadSessions() {
    return call("sessions").then(function (ack) {
      if (!ack.ok) { toast("会话列表加载失败：" + U.errorText(ack), "error"); return; }
      if (S.epoch !== ack.epoch) restartSeq(ack.epoch, ack.seq);
      else if ((ack.seq || 0) > S.lastSeq) advanceTo(ack.seq);  // the list holds everything up to ack.seq
      var keep = new Set();
      (ack.sessions || []).forEach(function (s) {
        if ((S.removedSeq[s.id] || 0) > (ack.seq || 0)) return;
        var e = entry(s);
        e.gone = null;
        e.unread = watching(s.id) ? 0 : s.unread || 0;
        keep.add(s.id);
      });
      S.sessions.forEach(function (e, id) {
        if (keep.has(id) || e.addedSeq > (ack.seq || 0)) return;
        if (id === S.currentId) e.gone = e.gone || "会话已不在你的列表中";
        else S.sessions.delete(id);
      });
      S.synced = true;
      Object.assign(S.queue, ack.queue || {});  // the queue now (queue.changed comes when it changes)
      renderAll();
      if (S.currentId !== null && !S.current().gone) fetchBundle(S.currentId);
    });
  }

  function fetchBundle(id) {
    return call("session", { session_id: id }).then(function (ack) {
      var e = S.sessions.get(id);
      if (!ack.ok || !e) return;
      e.s = Object.assign({}, e.s, ack.session);
      e.customer = ack.customer;
      e.transfer = ack.transfer || null;
      if (!e.loaded) e.hasOlder = (ack.history || []).length >= 20;
      mergeMsgs(e, ack.history, true);
      e.loaded = true;
      R.renderList(S);
      if (S.currentId === id) renderCurrent("stay");
    });
  }

  function loadOlder() {
    var e = S.current();
    if (!e || !e.msgs.length) return;
    $("older-btn").disabled = true;
    call("history", { session_id: e.s.id, before: e.msgs[0].id }).then(function (ack) {
      $("older-btn").disabled = false;
      if (!ack.ok) { toast("加载失败：" + U.errorText(ack), "error"); return; }
      mergeMsgs(e, ack.messages);
      e.hasOlder = !!ack.next_before;
      if (S.currentId === e.s.id) R.renderMessages(S, "older");
    });
  }

  /** Re-read the latest page (a retried reply that had got through: its message is there). */
  function refreshLatest(id) {
    call("history", { session_id: id }).then(function (ack) {
      var e = S.sessions.get(id);
      if (!ack.ok || !e) return;
      mergeMsgs(e, ack.messages);
      if (S.currentId === id) R.renderMessages(S, "stay");
    });
  }

  function loadAgents() {
    return call("agents").then(function (ack) {
      if (!ack.ok) return ack;
      S.agents = ack.agents || [];
      S.groups = ack.groups || [];
      if (S.me.role === "supervisor" || S.me.role === "admin") R.renderList(S);  // the holders' names
      return ack;
    });
  }

  function refreshMe() {
    fetch("/api/me", { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) { window.location.assign("/login?next=/console"); return null; }
      return r.ok ? r.json() : null;
    }).then(function (body) { if (body && body.user) setStatusUI(body.user.status); }).catch(function () {});
  }

  // ---- actions ---------------------------------------------------------------------------------
  /** /console?session=N (a link from the supervisors' dashboard): that session opens once the list is in. */
  function openLinked() {
    var id = Number(new URLSearchParams(window.location.search).get("session"));
    if (id && S.sessions.has(id)) open(id);
  }

  function open(id) {
    var e = S.sessions.get(id);
    if (!e) return;
    var prev = S.current();
    if (prev && prev !== e) {
      prev.draft = $("reply").value;
      if (prev.gone) S.sessions.delete(prev.s.id);
    }
    var switched = S.currentId !== id;
    S.currentId = id;
    e.unread = 0;
    if (switched) { $("reply").value = e.draft || ""; updateCount(); }
    renderAll();
    if (switched) { call("viewing", { session_id: id }); fetchBundle(id); }
    if (!$("reply").disabled) $("reply").focus();
  }

  function step(delta) {
    var ids = S.order();
    if (!ids.length) return;
    var i = ids.indexOf(S.currentId);
    open(ids[i < 0 ? (delta > 0 ? 0 : ids.length - 1) : (i + delta + ids.length) % ids.length]);
  }

  function accept() {
    var e = S.current();
    if (!e) return;
    $("accept-btn").disabled = true;
    call("accept", { session_id: e.s.id }).then(function (ack) {
      $("accept-btn").disabled = false;
      if (!ack.ok) { toast("接入失败：" + U.errorText(ack), "error"); return; }
      e.s.state = "active";
      e.s.accepted_at = U.now();
      R.renderList(S);
      renderCurrent("stay");
      $("reply").focus();
    });
  }

  function setStatus(status) {
    var before = S.me.status, mine = 0;
    S.sessions.forEach(function (e) { if (!e.gone && e.s.state !== "closed" && e.s.agent_id === S.me.id) mine++; });
    if (status === "offline" && mine && !window.confirm("你还有 " + mine + " 个会话，离线后会重新排队、分配给其他同事。确定离线吗？")) {
      setStatusUI(before);
      return;
    }
    setStatusUI(status);
    call("status", { status: status }).then(function (ack) {
      if (ack.ok) return;
      setStatusUI(before);
      toast("切换状态失败：" + U.errorText(ack), "error");
    });
  }

  // ---- wiring ----------------------------------------------------------------------------------
  function wire() {
    $("session-list").addEventListener("click", function (ev) {
      var li = ev.target.closest("li.session");
      if (li) open(Number(li.dataset.id));
    });
    $("session-filter").addEventListener("input", function (ev) { S.filter = ev.target.value; R.renderList(S); });
    $("older-btn").addEventListener("click", loadOlder);
    $("send-btn").addEventListener("click", send);
    $("accept-btn").addEventListener("click", accept);
    $("reply").addEventListener("input", typed);
    $("status").addEventListener("change", function (ev) { setStatus(ev.target.value); });
    $("message-list").addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-retry]");
      if (b) retry(b.dataset.retry);
    });
    $("suggestions").addEventListener("click", function (ev) {
      var b = ev.target.closest("[data-suggest]");
      if (b) insertSuggestion(Number(b.dataset.suggest));
    });
    $("logout").addEventListener("click", function () {
      fetch("/api/logout", { method: "POST", credentials: "same-origin" }).catch(function () {}).then(function () {
        socket.disconnect();
        window.location.assign("/login");
      });
    });
    document.addEventListener("visibilitychange", function () {
      var e = S.current();
      if (!document.hidden && e && e.unread) { e.unread = 0; R.renderList(S); }
    });
    setInterval(function () { R.tickWaits(S); }, 1000);
    setStatusUI(S.me.status || "offline");
    setConn("connecting");
    socket.connect();
  }

  window.Hub = {
    state: S, socket: socket, call: call, fresh: fresh, open: open, step: step, send: send, accept: accept, toast: toast,
    insertText: insertText, insertSuggestion: insertSuggestion, loadAgents: loadAgents, renderAll: renderAll
  };
  document.addEventListener("DOMContentLoaded", wire);
})();
