/* 知识库 page, part 1: FAQ list (search, category filter), the editor drawer, delete, import.
 * Part 2 (admin-faq-tools.js): the match tester, unanswered questions, brand dictionary. */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var state = { faqs: [], editing: null, categories: [] };
  var similar = null;

  var FIELD_LABELS = { question: "标准问题", answer: "答案", similar: "相似问法", category: "分类", enabled: "状态" };
  var IMPORT_MESSAGES = { question: "标准问题为空或超过 500 字", answer: "答案为空或超过 4000 字",
    similar: "相似问法格式不正确", category: "分类超过 64 个字", enabled: "enabled 只能是 true 或 false" };

  // ---- list ------------------------------------------------------------------------------------
  function query() {
    var params = new URLSearchParams();
    var q = $("faq-q").value.trim(), cat = $("faq-cat").value;
    if (q) params.set("q", q);
    if (cat) params.set("category", cat);
    var s = params.toString();
    return "/api/faq" + (s ? "?" + s : "");
  }

  function reload() {
    var filtered = $("faq-q").value.trim() || $("faq-cat").value;
    var jobs = [A.api("GET", query())];
    if (filtered) jobs.push(A.api("GET", "/api/faq"));
    return Promise.all(jobs).then(function (res) {
      state.faqs = res[0].faqs;
      categoriesFrom((res[1] || res[0]).faqs);
      render(!!filtered);
      document.dispatchEvent(new CustomEvent("faq:changed"));
    }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  function categoriesFrom(all) {
    var seen = {};
    state.questions = {};
    all.forEach(function (f) {
      [f.question].concat(f.similar || []).forEach(function (q) { state.questions[q.trim()] = state.questions[q.trim()] || f; });
    });
    all.forEach(function (f) { if (f.category) seen[f.category] = (seen[f.category] || 0) + 1; });
    state.categories = Object.keys(seen).sort();
    var pairs = [["", "全部分类"]].concat(state.categories.map(function (c) { return [c, c + "（" + seen[c] + "）"]; }));
    A.options($("faq-cat"), pairs);
    var dl = U.clear($("cat-list"));
    state.categories.forEach(function (c) { dl.appendChild(h("option", { value: c })); });
    $("faq-total").textContent = "共 " + all.length + " 条";
  }

  function render(filtered) {
    var body = U.clear($("faq-rows"));
    state.faqs.forEach(function (f) { body.appendChild(row(f)); });
    var empty = $("faq-empty");
    empty.hidden = state.faqs.length > 0;
    U.clear(empty).appendChild(filtered
      ? h("div", h("div.empty-title", "没有符合条件的 FAQ"), h("div.empty-note", "换个关键词或分类试试"))
      : h("div", h("div.empty-title", "知识库还是空的"),
        h("div.empty-note", A.canWrite ? "点右上角“新建 FAQ”，或导入 CSV / JSON 文件" : "管理员添加后会显示在这里")));
    if (filtered) $("faq-total").textContent = "筛选出 " + state.faqs.length + " 条";
  }

  function row(f) {
    var sim = f.similar || [];
    var tr = h("tr", { className: f.enabled ? "" : "off", dataset: { id: f.id } },
      h("td",
        h("div.cell-main", f.question),
        h("div.cell-sub.one", f.answer),
        sim.length ? h("div.cell-meta", { title: sim.join("\n") },
          h("span.badge.b-gray", "相似问法 " + sim.length), h("span.muted.cell-sub.one", sim.slice(0, 3).join(" · "))) : null),
      h("td.nowrap", f.category ? h("span.badge.b-blue", f.category) : h("span.muted", "—")),
      h("td.nowrap", A.canWrite ? A.toggle(f.enabled, function (on, input) { setEnabled(f, on, input); }, "启用")
        : h("span.badge." + (f.enabled ? "b-green" : "b-gray"), f.enabled ? "启用" : "停用")),
      h("td.num", String(f.hits || 0)),
      h("td.nowrap.muted", { title: U.fullTime(f.updated_at) }, U.clock(f.updated_at)),
      h("td.actions", A.canWrite ? [
        h("button.btn-link", { type: "button", onclick: function () { openEditor(f); } }, "编辑"),
        h("button.btn-link.danger", { type: "button", onclick: function () { remove(f); } }, "删除")] : null));
    return tr;
  }

  function setEnabled(f, on, input) {
    A.api("PUT", "/api/faq/" + f.id, { enabled: on }).then(function (saved) {
      f.enabled = saved.enabled;
      input.closest("tr").classList.toggle("off", !saved.enabled);
      A.toast(saved.enabled ? "已启用" : "已停用，机器人不会再用它回答", "ok");
    }).catch(function (err) { input.checked = !on; A.toast(A.errorText(err), "error"); });
  }

  function remove(f) {
    A.confirm({ title: "删除 FAQ", text: "确定删除“" + f.question + "”吗？删除后机器人不再用它回答，且无法恢复。", ok: "删除" })
      .then(function (yes) {
        if (!yes) return;
        return A.api("DELETE", "/api/faq/" + f.id).then(function () { A.toast("已删除", "ok"); return reload(); });
      }).catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  // ---- editor drawer ---------------------------------------------------------------------------
  /** openEditor(faq) edits; openEditor(null, {question}) creates, pre-filled. */
  function openEditor(f, prefill) {
    var form = $("faq-form");
    A.clearErrors(form);
    state.editing = f || null;
    var v = f || Object.assign({ question: "", similar: [], answer: "", category: "", enabled: true }, prefill || {});
    $("faq-title").textContent = f ? "编辑 FAQ" : "新建 FAQ";
    $("faq-question").value = v.question;
    similar.set(v.similar || []);
    $("faq-answer").value = v.answer;
    $("faq-category").value = v.category || "";
    $("faq-enabled").checked = v.enabled !== false;
    $("faq-meta").textContent = f ? "#" + f.id + " · 命中 " + (f.hits || 0) + " 次 · 更新于 " + U.clock(f.updated_at) : "";
    A.open("faq-drawer", prefill && prefill.question ? $("faq-answer") : null);
  }

  function save(ev) {
    ev.preventDefault();
    var form = $("faq-form"), btn = $("faq-save");
    A.clearErrors(form);
    var body = { question: $("faq-question").value, similar: similar.get(), answer: $("faq-answer").value,
      category: $("faq-category").value.trim(), enabled: $("faq-enabled").checked };
    var f = state.editing;
    btn.disabled = true;
    A.api(f ? "PUT" : "POST", f ? "/api/faq/" + f.id : "/api/faq", body).then(function (saved) {
      A.close("faq-drawer");
      A.toast(f ? "已保存" : "已创建：" + saved.question, "ok");
      return reload();
    }).catch(function (err) { A.formError(form, err); })
      .then(function () { btn.disabled = false; });
  }

  // ---- import ----------------------------------------------------------------------------------
  function rejectText(r) {
    var m = r.message || "";
    if (/^more values than columns/.test(m)) return "这一行的列数多于表头";
    if (/^missing column/.test(m)) return "缺少必需的列：" + m.replace(/^missing column\(s\):\s*/, "");
    if (/^not JSON/.test(m)) return "不是有效的 JSON：" + m.replace(/^not JSON:\s*/, "");
    if (/^expected a list/.test(m)) return "JSON 应为 FAQ 对象的数组";
    return (r.field && IMPORT_MESSAGES[r.field]) || m;
  }

  /** What the rejected line holds: the CSV line itself, or the JSON item's question. */
  function rawLine(text, fmt, line) {
    if (fmt === "json") {
      try { var item = JSON.parse(text)[line - 1]; return item && typeof item.question === "string" ? item.question : ""; }
      catch (e) { return ""; }
    }
    return (text.replace(/^\ufeff/, "").split(/\r?\n/)[line - 1] || "").trim();
  }

  /** A file's text as the hub reads it (knowledge/io.py decode): UTF-8, else GB18030 (Excel/WPS on a Chinese
   * Windows save CSV in GBK); only shown here, beside the lines the import rejected. */
  function fileText(buf) {
    try { return new TextDecoder("utf-8", { fatal: true }).decode(buf); } catch (e) { /* not UTF-8 */ }
    try { return new TextDecoder("gb18030").decode(buf); } catch (e) { return ""; }
  }

  function importFile(file) {
    var fmt = /\.json$/i.test(file.name) || file.type === "application/json" ? "json" : "csv";
    var btn = $("import-btn");
    btn.disabled = true;
    btn.textContent = "导入中…";
    var content = "";
    file.arrayBuffer().then(function (buf) {  // the bytes as they are: the hub tells UTF-8 from GBK
      content = fileText(buf);
      return A.api("POST", "/api/faq/import?format=" + fmt, buf,
        { raw: true, contentType: fmt === "json" ? "application/json" : "text/csv" });
    }).then(function (res) {
      $("import-file-name").textContent = "文件：" + file.name + "（" + fmt.toUpperCase() + "）";
      $("import-ok").textContent = res.imported;
      $("import-updated").textContent = res.updated || 0;
      $("import-bad").textContent = res.rejected.length;
      var tbody = U.clear($("import-rejected").querySelector("tbody"));
      res.rejected.forEach(function (r) {
        var raw = rawLine(content, fmt, r.line);
        tbody.appendChild(h("tr", h("td.num", String(r.line)), h("td.raw", { title: raw }, raw || "—"),
          h("td.nowrap", r.field ? (FIELD_LABELS[r.field] || r.field) : "—"),
          h("td", { title: r.message || "" }, rejectText(r))));
      });
      $("import-rejected-wrap").hidden = !res.rejected.length;
      A.open("import-dialog");
      return reload();
    }).catch(function (err) { A.toast("导入失败：" + A.errorText(err), "error"); })
      .then(function () { btn.disabled = false; btn.textContent = "导入…"; $("import-file").value = ""; });
  }

  // ---- wiring ----------------------------------------------------------------------------------
  document.addEventListener("DOMContentLoaded", function () {
    similar = A.listEditor($("faq-similar"), { placeholder: "例如：什么时候发货", addLabel: "添加相似问法" });
    $("faq-form").addEventListener("submit", save);
    $("faq-new").addEventListener("click", function () { openEditor(null); });
    $("faq-q").addEventListener("input", A.debounce(reload, 250));
    $("faq-cat").addEventListener("change", reload);
    $("import-btn").addEventListener("click", function () { $("import-file").click(); });
    $("import-file").addEventListener("change", function () {
      var file = this.files && this.files[0];
      if (file) importFile(file);
    });
    reload();
  });

  window.AdminFaq = { openEditor: openEditor, reload: reload,
    existing: function (question) { return (state.questions || {})[String(question).trim()] || null; } };
})();
