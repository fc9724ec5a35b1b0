/* Login page: POST /api/login as JSON, show errors inline, then go to the console. */
(function () {
  "use strict";
  var form = document.getElementById("login-form");
  var err = document.getElementById("login-error");
  var btn = document.getElementById("login-submit");
  var MESSAGES = {
    bad_credentials: "账号或密码错误",
    too_many_attempts: "尝试次数过多，请稍后再试",
    missing_credentials: "请输入账号和密码"
  };

  function show(msg) {
    err.textContent = msg;
    err.hidden = !msg;
  }

  function target() {
    var next = form.dataset.next || "/console";
    // a local path only: a browser drops tabs and newlines, so "/\t/evil.example" would be another site
    return /^\/(?![\/\\])[^\x00-\x20\x7f\\]*$/.test(next) ? next : "/console";
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var username = form.username.value.trim(), password = form.password.value;
    if (!username || !password) {
      show(MESSAGES.missing_credentials);
      (username ? form.password : form.username).focus();
      return;
    }
    show("");
    btn.disabled = true;
    btn.textContent = "登录中…";
    fetch("/api/login", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: JSON.stringify({ username: username, password: password })
    }).then(function (resp) {
      return resp.json().catch(function () { return {}; }).then(function (body) {
        if (resp.ok) { window.location.assign(target()); return true; }
        show(MESSAGES[body.error] || body.message || ("登录失败（" + resp.status + "）"));
        form.password.select();
      });
    }).catch(function () {
      show("无法连接服务器，请检查网络后重试");
    }).then(function (done) {
      if (done) return;
      btn.disabled = false;
      btn.textContent = "登录";
    });
  });
})();
