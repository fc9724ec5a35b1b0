/* 机器人设置 page: welcome / off-hours / queue texts, handover words, business hours with holidays and
 * make-up workdays, saved in one PUT /api/settings (the server validates each key). */
(function () {
  "use strict";
  var U = window.HubUtil, A = window.Admin, h = U.h, $ = U.$;
  var DAYS = ["周一", "周二", "周三", "周四", "周五", "周六", "周日"];

  function lines(v) { return v.split("\n").map(function (s) { return s.trim(); }).filter(Boolean); }

  function periodsText(ps) { return (ps || []).map(function (p) { return p[0] + "-" + p[1]; }).join(", "); }

  function parsePeriods(text) {
    return text.split(/[,，;；]/).map(function (s) { return s.trim(); }).filter(Boolean).map(function (s) {
      var m = s.split(/\s*[-–~～至]\s*/);
      return [m[0] || s, m[1] || ""];
    });
  }

  function fill(s) {
    $("bs-welcome").value = s.welcome_text || "";
    $("bs-offhours").value = s.offhours_text || "";
    $("bs-queue").value = s.queue_text || "";
    $("bs-handover").value = (s.handover_words || []).join("\n");
    var bh = s.business_hours;
    $("bs-always").checked = !bh;
    $("bs-hours").hidden = !bh;
    bh = bh || { timezone: "Asia/Shanghai", weekly: { 0: [["09:00", "18:00"]], 1: [["09:00", "18:00"]], 2: [["09:00", "18:00"]],
      3: [["09:00", "18:00"]], 4: [["09:00", "18:00"]] }, holidays: [], workdays: [] };
    $("bs-tz").value = bh.timezone || "Asia/Shanghai";
    var week = U.clear($("bs-week"));
    DAYS.forEach(function (d, i) {
      week.appendChild(h("label", { "for": "bs-day-" + i }, d));
      week.appendChild(h("input", { type: "text", id: "bs-day-" + i, value: periodsText((bh.weekly || {})[i] || (bh.weekly || {})[String(i)]),
        placeholder: "休息" }));
    });
    $("bs-holidays").value = (bh.holidays || []).join("\n");
    $("bs-workdays").value = (bh.workdays || []).join("\n");
  }

  function collect() {
    var body = { welcome_text: $("bs-welcome").value, offhours_text: $("bs-offhours").value, queue_text: $("bs-queue").value,
      handover_words: lines($("bs-handover").value) };
    if ($("bs-always").checked) body.business_hours = null;
    else {
      var weekly = {};
      DAYS.forEach(function (_, i) { var ps = parsePeriods($("bs-day-" + i).value); if (ps.length) weekly[String(i)] = ps; });
      body.business_hours = { timezone: $("bs-tz").value.trim(), weekly: weekly, holidays: lines($("bs-holidays").value),
        workdays: lines($("bs-workdays").value) };
    }
    return body;
  }

  function load() {
    A.api("GET", "/api/settings").then(function (res) { fill(res.settings); })
      .catch(function (err) { A.toast(A.errorText(err), "error"); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    $("bs-always").addEventListener("change", function () { $("bs-hours").hidden = $("bs-always").checked; });
    $("bs-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var form = $("bs-form");
      A.clearErrors(form);
      A.submitting(form, A.api("PUT", "/api/settings", collect())).then(function (res) {
        fill(res.settings);
        A.toast(res.changed.length ? "已保存：" + res.changed.length + " 项设置已更新" : "没有改动", "ok");
      }).catch(function (err) { A.formError(form, err); });
    });
    load();
  });
})();
