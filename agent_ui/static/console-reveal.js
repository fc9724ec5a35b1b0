/* Reveal a masked message (phone numbers, ID numbers ... shown masked to agents and supervisors):
 * the 「显示」 button asks POST /api/reveal, which checks the right to read the conversation and writes
 * the access audit; the full text then replaces the masked one in place and stays for this page. */
(function () {
  var revealed = new Map();

  function text(mid) { return revealed.has(String(mid)) ? revealed.get(String(mid)) : null; }

  function show(btn, value) {
    var msg = btn.closest(".msg");
    var node = msg && msg.querySelector(".bubble .text");
    if (node) node.textContent = value;
    var done = document.createElement("span");
    done.className = "revealed";
    done.textContent = "已显示";
    btn.replaceWith(done);
  }

  function reveal(btn) {
    var mid = btn.dataset.revealMid;
    btn.disabled = true;
    fetch("/api/reveal", { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ message_id: Number(mid) }) })
      .then(function (r) { return r.json().catch(function () { return {}; }).then(function (j) { return { ok: r.ok, body: j }; }); })
      .then(function (res) {
        if (!res.ok) {
          btn.disabled = false;
          var msg = res.body.error === "forbidden" ? "没有权限查看" : (res.body.message || "显示失败");
          if (window.HubRender) window.HubRender.toast(msg, "error");
          return;
        }
        revealed.set(String(mid), res.body.value);
        show(btn, res.body.value);
      })
      .catch(function () { btn.disabled = false; if (window.HubRender) window.HubRender.toast("网络错误，请重试", "error"); });
  }

  document.addEventListener("click", function (ev) {
    var btn = ev.target.closest && ev.target.closest("button[data-reveal-mid]");
    if (btn) { ev.preventDefault(); reveal(btn); }
  });

  window.HubReveal = { text: text };
})();
