/* 知识库 page, part 2: "试一试" (top matches, scores, would the bot answer), the questions the bot could
 * not answer (one click -> a new FAQ pre-filled with the question), and the brand dictionary. */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var TH = A.boot.faq_thresholds || { confident: 62, suggest: 35 };
  var lastWords = [];

  // ---- match tester ----------------------------------------------------------------------------
  function level(score) { return score >= TH.confident ? "hi" : score >= TH.suggest ? "mid" : ""; }

  function scoreBar(score) {
    var bar = h("div.scorebar", { title: "自动回答阈值 " + TH.confident + " · 推荐阈值 " + TH.suggest });
    var fill = h("i." + (level(score) || "lo"));
    fill.style.width = Math.max(2, Math.min(100, score)) + "%";
    var mark1 = h("b"), mark2 = h("b");
    mark1.style.left = TH.confident + "%";
    mark2.style.left = TH.suggest + "%";
    bar.appendChild(fill); bar.appendChild(mark2); bar.appendChild(mark1);
    return bar;
  }

  function verdict(kind, icon, title, note) {
    return h("div.verdict." + kind, { id: "try-verdict", dataset: { verdict: kind } }, h("span.verdict-icon", icon),
      h("div", h("div.verdict-title", title), note ? h("div.verdict-note", note) : null));
  }

  function showMatches(res) {
    var box = U.clear($("try-result"));
    var m = res.matches || [];
    if (res.confident) {
      box.appendChild(verdict("ok", "✓", "机器人会自动回答", m[0].answer));
    } else if (m.length && m[0].score >= TH.suggest) {
      box.appendChild(verdict("warn", "?", "不够确定：不会自动回答",
        "最高得分 " + m[0].score + "，低于自动回答阈值 " + TH.confident + "；候选答案会推荐给接待的客服。"));
    } else {
      box.appendChild(verdict("none", "–", "没有可用的答案", "会转给人工客服，并记入“机器人答不上来的问题”。"));
    }
    if (!m.length) return;
    var list = h("ol.match-list", { id: "try-matches" });
    m.forEach(function (x) {
      list.appendChild(h("li.match", { dataset: { id: x.id } },
        h("div.match-q", h("span.q", { title: x.question }, x.question), h("span.score-n." + (level(x.score) || "lo"), x.score.toFixed(1))),
        scoreBar(x.score),
        h("div.match-a", { title: x.answer }, x.answer)));
    });
    box.appendChild(list);
  }

  function tryMatch(ev) {
    ev.preventDefault();
    var text = $("try-text").value.trim();
    if (!text) { $("try-text").focus(); return; }
    var btn = $("try-submit");
    btn.disabled = true;
    A.api("POST", "/api/faq/match", { text: text, top: 5 }).then(showMatches)
      .catch(function (err) { A.toast(A.errorText(err), "error"); })
      .then(function () { btn.disabled = false; });
  }

  // ---- unanswered questions --------------------------------------------------------------------
  var unanswered = [];
  function loadUnanswered() {
    return A.api("GET", "/api/bots/unanswered").then(function (res) {
      unanswered = res.questions || [];
      renderUnanswered();
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function renderUnanswered() {
    var list = U.clear($("unanswered"));
    $("unanswered-count").textContent = unanswered.length;
    if (!unanswered.length) {
      list.appendChild(h("li.q-empty", "最近没有机器人答不上来的问题"));
      return;
    }
    unanswered.forEach(function (q) {
      var meta = "最近 " + U.clock(q.last_at) + (q.best_score !== null && q.best_score !== undefined
        ? " · 最高匹配 " + Number(q.best_score).toFixed(0) : " · 无匹配");
      var done = window.AdminFaq.existing(q.question);
      var side = null;
      if (done) side = h("span.badge.b-green", { title: "FAQ #" + done.id + "：" + done.question }, "已有 FAQ");
      else if (A.canWrite) side = h("button.btn.btn-sm.to-faq", { type: "button", onclick: function () {
        window.AdminFaq.openEditor(null, { question: q.question });
      } }, "转为 FAQ");
      list.appendChild(h("li.q-item", { dataset: { question: q.question } },
        h("span.q-count", { title: "被问了 " + q.count + " 次" }, String(q.count)),
        h("div.q-main", h("div.q-text", { title: q.question }, q.question), h("div.q-meta", meta)), side));
    });
  }

  // ---- brand dictionary ------------------------------------------------------------------------
  function loadWords(fresh) {
    return A.api("GET", "/api/brand-words").then(function (res) {
      var box = U.clear($("words"));
      $("words-count").textContent = res.words.length;
      if (!res.words.length) box.appendChild(h("span.muted", "还没有词"));
      res.words.forEach(function (w) {
        var chip = h("span.word" + (fresh && fresh.indexOf(w) >= 0 ? ".new" : ""), w);
        var x = h("button.word-x", { type: "button", title: "从词典删除 " + w, "aria-label": "删除 " + w }, "×");
        x.addEventListener("click", function () { removeWord(w); });
        chip.appendChild(x);
        box.appendChild(chip);
      });
      lastWords = res.words;
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function removeWord(word) {
    if (!window.confirm("从品牌词典删除「" + word + "」？")) return;
    A.api("POST", "/api/brand-words/remove", { words: [word] }).then(function () {
      A.toast("已删除「" + word + "」", "ok");
      return loadWords();
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function addWords(ev) {
    ev.preventDefault();
    var form = $("words-form"), input = $("words-input");
    A.clearErrors(form);
    var words = input.value.split(/[\s,，、]+/).map(function (s) { return s.trim(); }).filter(Boolean);
    if (!words.length) { A.fieldError(form, "words", "请输入要添加的词"); return; }
    A.api("POST", "/api/brand-words", { words: words }).then(function (res) {
      var added = res.added.filter(function (w) { return lastWords.indexOf(w) < 0; });
      input.value = "";
      A.toast(added.length ? "已添加 " + added.length + " 个词" : "这些词已在词典中", "ok");
      return loadWords(added);
    }).catch(function (err) { A.formError(form, err); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("try-form").addEventListener("submit", tryMatch);
    $("words-form").addEventListener("submit", addWords);
    document.addEventListener("faq:changed", renderUnanswered);
    loadUnanswered();
    loadWords();
  });
})();
