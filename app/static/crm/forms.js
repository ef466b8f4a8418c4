/* Behaviour of the generated forms and record pages that Flask-AppBuilder does not have. */
(function ($) {
  "use strict";

  // A date as people type it (2026/12/15, 2026.12.15, 2026年12月15日, 20261215, full-width digits)
  // is written 2026-12-15; anything else is left as typed for the server to name what is wrong.
  var WRITINGS = [/^(\d{4})\s*[-\/.年]\s*(\d{1,2})\s*[-\/.月]\s*(\d{1,2})\s*日?$/, /^(\d{4})(\d{2})(\d{2})$/];

  function isoDate(text) {
    var plain = text.replace(/[\uff10-\uff19]/g, function (c) { return String.fromCharCode(c.charCodeAt(0) - 0xfee0); }).trim();
    for (var i = 0; i < WRITINGS.length; i++) {
      var found = WRITINGS[i].exec(plain);
      if (!found) { continue; }
      var y = +found[1], m = +found[2], d = +found[3];
      var day = new Date(Date.UTC(y, m - 1, d));
      if (day.getUTCFullYear() !== y || day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d) { return null; }
      return found[1] + "-" + ("0" + m).slice(-2) + "-" + ("0" + d).slice(-2);
    }
    return null;
  }

  function normaliseDate(input) {
    var iso = isoDate(input.value);
    if (iso && iso !== input.value) {
      input.value = iso;
      $(input).closest(".crm-date").datepicker("update", iso);
    }
  }

  $(document).on("blur change", ".crm-date input", function () { normaliseDate(this); });
  // Flask-AppBuilder's filter panel calls a datetimepicker it never loads on the date boxes it adds;
  // ours bring their own calendar (data-provide="datepicker").
  if (!$.fn.datetimepicker) { $.fn.datetimepicker = function () { return this; }; }
  $(document).on("submit", "form", function () {
    $(this).find(".crm-date input").each(function () { normaliseDate(this); });
  });

  // Link and user selects load a page of the records the user may pick as they type (app/web/picking.py).
  // Picking a record fills the fields that copy from it (default_from) when they are empty or still
  // hold what an earlier pick filled in; a select with match: offers only records of the chosen parent.
  function field(form, key) { return $(form).find('[name="' + key + '"]'); }

  function initPick(select) {
    var $select = $(select), form = select.form;
    var zh = (document.documentElement.lang || "").indexOf("en") !== 0 && $.fn.datepicker &&
      $.fn.datepicker.defaults.language === "zh-CN";
    $select.select2({
      theme: "bootstrap", width: "100%", placeholder: "—", allowClear: $select.data("allow-clear") === true,
      language: zh ? undefined : "en",
      ajax: {
        url: $select.data("url"), dataType: "json", delay: 200,
        data: function (params) {
          var query = {q: params.term || "", page: params.page || 1};
          var match = $select.data("match");
          if (match) { query.match = field(form, match).val() || ""; }
          return query;
        },
        processResults: function (data) { return data; }
      }
    });
    $select.on("select2:select", function (event) {
      var fill = (event.params.data && event.params.data.fill) || {};
      Object.keys(fill).forEach(function (key) {
        var $target = field(form, ($select.data("prefix") || "") + key);
        if (!$target.length) { return; }
        var current = $target.val();
        if (current === "" || current === $target.attr("data-crm-filled")) {
          $target.val(fill[key]).attr("data-crm-filled", fill[key]).trigger("input").trigger("change");
        }
      });
    });
    var match = $select.data("match");
    if (match) {
      field(form, match).on("change", function () { $select.val(null).trigger("change"); });
    }
  }

  $(function () { $("select.crm-pick").each(function () { initPick(this); }); });
  window.crmInitPick = initPick;

  // Inline child rows (app/web/inline.py): add and remove rows, and work out each row's computed
  // amounts and the parent's totals as the user types; the server computes the stored values.
  function number(text) {
    if (text === undefined || text === null) { return null; }
    var plain = String(text).replace(/[,\s¥$€%]/g, "");
    return plain === "" || isNaN(+plain) ? null : +plain;
  }

  function evaluate(expr, values) {
    if (!expr) { return null; }
    if (expr.n !== undefined) { return +expr.n; }
    if (expr.f !== undefined) { return values[expr.f] === undefined ? null : values[expr.f]; }
    if (expr.neg) { var inner = evaluate(expr.neg, values); return inner === null ? null : -inner; }
    if (expr.round) {
      var x = evaluate(expr.round, values);
      return x === null ? null : Math.round(x * Math.pow(10, expr.places)) / Math.pow(10, expr.places);
    }
    var l = evaluate(expr.l, values), r = evaluate(expr.r, values);
    if (l === null || r === null) { return null; }
    if (expr.op === "+") { return l + r; }
    if (expr.op === "-") { return l - r; }
    if (expr.op === "*") { return l * r; }
    return r === 0 ? null : l / r;
  }

  function shown(value, places) {
    if (value === null) { return "—"; }
    return value.toLocaleString("en-US", {minimumFractionDigits: places, maximumFractionDigits: places});
  }

  function liveRows(grid) {
    return $(grid).find("tr.crm-inline-row").filter(function () {
      return !$(this).find(".crm-inline-remove input").prop("checked");
    });
  }

  function rowValues(row) {
    var values = {}, prefix = $(row).data("prefix");
    $(row).find("[name^='" + prefix + "']").each(function () {
      values[this.name.substring(prefix.length)] = number($(this).val());
    });
    return values;
  }

  function refresh(grid) {
    var preview = $(grid).data("preview"), rows = liveRows(grid), columns = {};
    rows.each(function () {
      var values = rowValues(this), row = this;
      preview.computed.forEach(function (c) {
        var value = evaluate(c.expr, values);
        values[c.key] = value;
        $(row).find("[data-computed='" + c.key + "']").text(shown(value, c.places));
      });
      Object.keys(values).forEach(function (k) { (columns[k] = columns[k] || []).push(values[k]); });
    });
    var parts = preview.totals.map(function (t) {
      var list = (columns[t.field] || []).filter(function (v) { return v !== null; }), value;
      if (t.function === "count") { value = rows.length; }
      else if (t.function === "sum") { value = list.reduce(function (a, b) { return a + b; }, 0); }
      else if (!list.length) { value = null; }
      else if (t.function === "min") { value = Math.min.apply(null, list); }
      else if (t.function === "max") { value = Math.max.apply(null, list); }
      else { value = list.reduce(function (a, b) { return a + b; }, 0) / list.length; }
      return '<span class="crm-inline-total" data-total="' + t.key + '">' + $("<span>").text(t.label).html() +
        " <b>" + shown(value, t.places) + "</b></span>";
    });
    $(grid).find(".crm-inline-totals").html(parts.join(" · "));
  }

  function addRow(grid) {
    var preview = $(grid).data("preview"), tbody = $(grid).find("tbody"), next = 0;
    tbody.find("tr.crm-inline-row").each(function () {
      var index = +String($(this).data("prefix")).split("-").slice(-2, -1)[0];
      if (index >= next) { next = index + 1; }
    });
    var html = $(grid).find("template.crm-inline-template").html().replace(/__row__/g, String(next));
    var row = $(html).appendTo(tbody);
    row.find("select.crm-pick").each(function () { initPick(this); });
    row.find("select.my_select2").select2({theme: "bootstrap", width: "100%", allowClear: true, placeholder: "—"});
    row.find("input, select").first().trigger("focus");
    refresh(grid);
    return row;
  }

  $(function () {
    $(".crm-inline").each(function () { refresh(this); });
  });
  $(document).on("click", ".crm-inline-add", function () { addRow($(this).closest(".crm-inline")[0]); });
  $(document).on("input change", ".crm-inline input, .crm-inline select", function () {
    var grid = $(this).closest(".crm-inline")[0];
    if ($(this).closest(".crm-inline-remove").length) {
      var row = $(this).closest("tr");
      if (!row.find("input[name$='-id']").length) { row.next(".crm-inline-errors").remove(); row.remove(); }
      else { row.toggleClass("crm-inline-removed", this.checked); }
    }
    refresh(grid);
  });

  // A record page opened at #children-… (after adding a child from that tab) shows that tab: after
  // every ready handler, since Flask-AppBuilder's ab_keep_tab.js shows the tab used last in one.
  $(function () {
    window.setTimeout(function () {
      if (!window.location.hash) { return; }
      var tab = $('a[data-toggle="tab"][href="' + window.location.hash.replace(/"/g, "") + '"]');
      if (tab.length) { tab.tab("show"); }
    }, 0);
  });
})(jQuery);
