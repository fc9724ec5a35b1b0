/* scrm-hub console: a session's messages as the console holds them (pure: no DOM, no socket). */
(function () {
  "use strict";
  var PAGE = 20;  // the server's latest page (a session's bundle)

  function statusRank(status) { return status === "failed" ? 2 : status === "sent" ? 1 : 0; }

  /** Merge messages into a session entry ``e`` (kept in id order). ``latest``: ``list`` is the server's
   * latest page (oldest first). A full one whose oldest message is not shown yet does not reach what is
   * shown (the customer wrote more than a page while the console was away, a hub restart): what is
   * older goes, and 加载更早 brings it back in order (it was shown with the hole, never filled). */
  function merge(e, list, latest) {
    if (!list || !list.length) return;
    if (latest && list.length >= PAGE && !e.msgs.some(function (m) { return m.id === list[0].id; })) {
      var before = e.msgs.length;
      e.msgs = e.msgs.filter(function (m) { return m.id > list[0].id; });
      if (e.msgs.length < before) e.hasOlder = true;
    }
    var byId = new Map(e.msgs.map(function (m) { return [m.id, m]; }));
    list.forEach(function (m) {
      var had = byId.get(m.id);
      if (m.direction === "out" && /^(agent|staff):/.test(m.sender || "") && e.s.state !== "closed") {
        e.s.last_agent_at = Math.max(e.s.last_agent_at || 0, m.created_at || 0);  // an agent answered (server time)
      }
      // a history read can be older than a pushed message.status: sent/failed is not undone by its "queued"
      if (had && statusRank(had.status) > statusRank(m.status)) m = Object.assign({}, m, { status: had.status, data: had.data });
      byId.set(m.id, m);
    });
    e.msgs = Array.from(byId.values()).sort(function (a, b) { return a.id - b.id; });
    var ids = new Set(list.map(function (m) { return m.id; }));
    e.pend = e.pend.filter(function (p) { return !(p.message_id && ids.has(p.message_id)); });
  }

  /** The customer's messages since an agent (or staff in the WeCom app) last answered: this session's last_agent_at, or an agent's
   * message in the history (a returning customer's earlier session), as the server counts unread. */
  function unanswered(e) {
    var since = e.s.last_agent_at || 0;
    e.msgs.forEach(function (m) {
      if (m.direction === "out" && /^(agent|staff):/.test(m.sender || "")) since = Math.max(since, m.created_at || 0);
    });
    return e.msgs.filter(function (m) { return m.direction === "in" && m.sender === "customer" && m.created_at > since; }).length;
  }

  window.HubSessionMsgs = { merge: merge, unanswered: unanswered };
})();
