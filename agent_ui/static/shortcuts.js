/* scrm-hub console: keyboard shortcuts, desktop notifications and the alert sound.
 * Alt+↓/↑ next/previous session · Enter or Ctrl+Enter send · Shift+Enter newline ·
 * Alt+1..3 insert suggestion 1..3 · "/" in an empty reply box opens quick replies · Esc closes dialogs. */
(function () {
  "use strict";
  var $ = window.HubUtil.$, Hub = window.Hub;
  var audio = null;

  function isComposing(ev) { return ev.isComposing || ev.keyCode === 229; } // Chinese IME: Enter picks a word

  /** The transfer and close dialogs are hidden when closed; the ticket dialogs are removed. */
  function anyModalOpen() {
    return Array.prototype.some.call(document.querySelectorAll(".modal-backdrop"), function (m) { return !m.hidden; });
  }

  function onKey(ev) {
    if (ev.key === "Escape") {
      if (Hub.dialogs.closeTop()) { ev.preventDefault(); return; }
    }
    var modalOpen = anyModalOpen();
    // under a dialog (transfer, close, ticket) Alt+↓ or Alt+1 would act on another session than the dialog's
    if (ev.altKey && !ev.ctrlKey && !ev.metaKey && !modalOpen) {
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        Hub.step(ev.key === "ArrowDown" ? 1 : -1);
        return;
      }
      var digit = /^Digit([1-3])$/.exec(ev.code || "");
      if (digit) {
        ev.preventDefault();
        Hub.insertSuggestion(Number(digit[1]) - 1);
        return;
      }
    }
    if (ev.target === $("reply") && !modalOpen) {
      if (ev.key === "Enter" && !isComposing(ev) && !ev.shiftKey && !ev.altKey) {
        ev.preventDefault(); // Enter and Ctrl/Cmd+Enter send; Shift+Enter is a newline
        Hub.send();
      } else if (ev.key === "/" && !ev.target.value) {
        ev.preventDefault();
        Hub.dialogs.toggleQuick(true);
      }
    }
  }

  // ---- alerts ----------------------------------------------------------------------------------
  /** Browsers only allow sound and the permission prompt after a user gesture: the first click. */
  function firstGesture() {
    document.removeEventListener("click", firstGesture, true);
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx && !audio) audio = new Ctx();
    } catch (e) { audio = null; }
    if ("Notification" in window && Notification.permission === "default") {
      try { Notification.requestPermission(); } catch (e) { /* old browsers: callback form only */ }
    }
  }

  /** A short two-tone beep (no audio file). */
  function beep(tones) {
    if (!audio) return;
    try {
      if (audio.state === "suspended") audio.resume();
      var t = audio.currentTime;
      tones.forEach(function (freq, i) {
        var osc = audio.createOscillator(), gain = audio.createGain();
        osc.type = "sine";
        osc.frequency.value = freq;
        var start = t + i * 0.14;
        gain.gain.setValueAtTime(0.0001, start);
        gain.gain.exponentialRampToValueAtTime(0.12, start + 0.015);
        gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.12);
        osc.connect(gain).connect(audio.destination);
        osc.start(start);
        osc.stop(start + 0.13);
      });
    } catch (e) { /* sound is a nicety */ }
  }

  function desktop(title, body) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (!document.hidden && document.hasFocus()) return;
    try {
      var n = new Notification(title, { body: body || "", tag: "scrm-hub", renotify: true });
      n.onclick = function () { window.focus(); n.close(); };
      setTimeout(function () { n.close(); }, 8000);
    } catch (e) { /* e.g. Android Chrome needs a service worker */ }
  }

  Hub.alertNew = function (name, text) {
    beep([880, 1320]);
    desktop("新会话：" + name, text);
  };
  Hub.alertMessage = function (name, text) {
    beep([660]);
    desktop(name + " 发来新消息", text);
  };

  document.addEventListener("keydown", onKey);
  document.addEventListener("click", firstGesture, true);
})();
