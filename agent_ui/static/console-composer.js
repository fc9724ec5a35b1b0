/* scrm-hub console: the reply box. A reply is shown at once as pending ("发送中…") and sent with its own
 * client_id, which makes every retry idempotent: a lost ack or a reconnect re-sends it, and the server never
 * queues it twice. Refusals a retry cannot change put the text back in the box. Also the box itself:
 * inserting quick replies (loaded here) and suggestions, the character count and the typing signal.
 * console.js makes it (window.HubComposer). */
(function () {
  "use strict";
  var U = window.HubUtil, R = window.HubRender, $ = U.$, toast = R.toast;

  /** ctx: state (the console state S), call (a Socket.IO call with an ack), refreshLatest (re-read a session). */
  window.HubComposer = function (ctx) {
    var S = ctx.state, call = ctx.call, refreshLatest = ctx.refreshLatest;

    function send() {
      var e = S.current(), ta = $("reply");
      if (!e || e.gone || ta.disabled) return;
      var text = ta.value.trim();
      if (!text) return;
      var p = { client_id: U.uid(), session_id: e.s.id, text: text, at: U.now(), state: "sending",
        after: e.msgs.length ? e.msgs[e.msgs.length - 1].id : 0 };  // its message, if it went through, comes after
      e.pend.push(p);
      ta.value = "";
      e.draft = "";
      updateCount();
      R.renderMessages(S);
      deliver(p);
    }

    // what a reply may be, as the hub checks it (hub/outbound/queue.py check_text): 2,000 characters, and
    // at most what the channel takes in UTF-8 bytes (a Chinese character is 3)
    var MAX_CHARS = 2000, CHANNEL_BYTES = { oa: 2048, kf: 2048, wecom: 4000 };

    /** Why ``text`` is too long for session entry ``e``'s channel, in Chinese; "" when it is not. */
    function tooLong(e, text) {
      var chars = Array.from(text).length, limit = e && CHANNEL_BYTES[e.s.channel];
      if (chars > MAX_CHARS) return "内容过长：最多 " + MAX_CHARS + " 字，当前 " + chars + " 字";
      var bytes = limit ? new TextEncoder().encode(text).length : 0;
      if (limit && bytes > limit) {
        return "内容过长：" + (U.LABELS.channel[e.s.channel] || e.s.channel) + "消息最多 " + limit + " 字节（约 " +
          Math.floor(limit / 3) + " 个汉字），当前 " + bytes + " 字节";
      }
      return "";
    }

    /** Refusals that a retry cannot change: the reply was not queued, it goes back to the reply box. */
    var FINAL_REPLY_ERRORS = { forbidden: true, session_closed: true, invalid_text: true, unknown_session: true,
      invalid_session_id: true };

    /** Send (or re-send) a pending reply; the same client_id makes a retry idempotent. */
    function deliver(p) {
      p.state = "sending";
      var e = S.sessions.get(p.session_id);
      if (S.currentId === p.session_id) R.renderMessages(S, "stay");
      call("reply", { session_id: p.session_id, text: p.text, client_id: p.client_id }, 15000).then(function (ack) {
        e = S.sessions.get(p.session_id);
        if (!e) {  // the session left the list meanwhile: the reply is not shown anywhere now, say so
          if (!ack.ok) toast("发送失败：" + U.errorText(ack), "error");
          return;
        }
        var drop = function () { e.pend = e.pend.filter(function (x) { return x !== p; }); };
        // its message came (message.new): it went through, whatever became of the ack (timed out, say)
        if (!ack.ok && p.message_id && e.msgs.some(function (m) { return m.id === p.message_id; })) return;
        if (ack.ok) {
          if (!ack.message_id || e.msgs.some(function (m) { return m.id === ack.message_id; })) drop();
          else p.message_id = ack.message_id;
          // an earlier try got through, or the session is someone else's (a supervisor's reply: the
          // message.new goes to its holder only): read the message
          if (!ack.message_id || (p.message_id && e.s.agent_id !== S.me.id)) refreshLatest(e.s.id);
          // last_agent_at follows the server's times only (the reply's message, in mergeMsgs): the browser's
          // clock can be behind the server's, and then the customer looked still waiting
          if (e.s.state === "assigned") e.s.state = "active";
          R.renderList(S);
          if (S.currentId === e.s.id) { R.renderChatHead(S); R.renderProfile(S); }
        } else if (!FINAL_REPLY_ERRORS[ack.error]) {
          // timeout, offline, internal (the reply may be queued already: an update after it failed), busy...:
          // kept, and a retry sends the same client_id, so the customer never gets it twice
          p.state = "unsent";
          // the ack was lost but the reply went through (its message.new came): send it again, which the
          // same client_id makes a no-op that drops this copy (else it showed twice, once as 未发出)
          if (ack.error === "timeout" && wentThrough(e, p)) { deliver(p); return; }
          if (ack.error !== "timeout" && ack.error !== "offline") toast("发送未确认：" + U.errorText(ack) + "，可点“重试”", "warn");
        } else {
          drop();
          if (S.currentId === e.s.id && !$("reply").value) { $("reply").value = p.text; updateCount(); }
          toast("发送失败：" + ((ack.error === "invalid_text" && tooLong(e, p.text)) || U.errorText(ack)), "error");
        }
        if (S.currentId === e.s.id) R.renderMessages(S, "stay");
      });
    }

    /** My own message in the session with the pending reply's text, newer than what was there when it was sent. */
    function wentThrough(e, p) {
      return e.msgs.some(function (m) {
        return m.id > (p.after || 0) && m.direction === "out" && m.sender === "agent:" + S.me.id && m.text === p.text;
      });
    }

    function retry(clientId) {
      S.sessions.forEach(function (e) { e.pend.forEach(function (p) { if (p.client_id === clientId) deliver(p); }); });
    }

    function insertText(text) {
      var ta = $("reply");
      if (ta.disabled || !text) return;
      var start = ta.selectionStart, end = ta.selectionEnd;
      if (document.activeElement !== ta) start = end = ta.value.length;
      ta.setRangeText(text, start, end, "end");
      ta.focus();
      updateCount();
    }

    function updateCount() {
      var ta = $("reply"), n = ta.value.length;
      ta.style.height = "";                                         // grow with the text, up to max-height
      if (ta.scrollHeight > ta.clientHeight) ta.style.height = Math.min(ta.scrollHeight + 2, 200) + "px";
      // near a limit: the characters, or the channel's bytes (about 682 Chinese characters on an Official Account)
      var e = S.current(), limit = e && CHANNEL_BYTES[e.s.channel], chars = Array.from(ta.value).length;
      var bytes = limit && n * 3 > limit * 0.8 ? new TextEncoder().encode(ta.value).length : 0;
      $("char-count").textContent = limit && bytes > limit * 0.8 ? bytes + " / " + limit + " 字节"
        : chars > 1500 ? chars + " / " + MAX_CHARS : "";
    }

    var lastTyping = 0;
    function typed() {
      updateCount();
      var e = S.current();
      if (!e || e.gone || Date.now() - lastTyping < 2500 || !$("reply").value) return;
      lastTyping = Date.now();
      call("typing", { session_id: e.s.id });
    }

    function insertSuggestion(i) {
      var e = S.current(), items = e && e.s.suggestions || [];
      if (items[i]) insertText(items[i].answer || items[i].question || "");
    }

    function loadQuickReplies() {
      call("quick_replies").then(function (ack) {
        if (!ack.ok) return;
        S.quickReplies = (ack.quick_replies || []).map(function (r) {
          return typeof r === "string" ? { text: r } : { title: r.title || r.name || "", text: r.text || r.content || r.answer || "" };
        }).filter(function (r) { return r.text; });
        R.renderQuick(S);
      });
    }

    return { send: send, deliver: deliver, retry: retry, insertText: insertText, updateCount: updateCount,
      typed: typed, insertSuggestion: insertSuggestion, loadQuickReplies: loadQuickReplies };
  };
})();
