/* Chinese texts for the Select2 dropdowns and the date picker that Flask-AppBuilder ships in English.
   Loaded after both libraries and before ab.js builds the widgets (on document ready). */
(function ($) {
  if ($.fn.datepicker) {
    $.fn.datepicker.dates["zh-CN"] = {
      days: ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
      daysShort: ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
      daysMin: ["日", "一", "二", "三", "四", "五", "六"],
      months: ["一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月", "十一月", "十二月"],
      monthsShort: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"],
      today: "今天", clear: "清除", titleFormat: "yyyy年mm月", weekStart: 1, format: "yyyy-mm-dd"
    };
    $.fn.datepicker.defaults.language = "zh-CN";
    $.fn.datepicker.defaults.todayHighlight = true;
  }
  if ($.fn.select2 && $.fn.select2.defaults) {
    $.fn.select2.defaults.set("language", {
      errorLoading: function () { return "无法载入结果"; },
      inputTooLong: function (args) { return "请删除" + (args.input.length - args.maximum) + "个字符"; },
      inputTooShort: function (args) { return "请再输入至少" + (args.minimum - args.input.length) + "个字符"; },
      loadingMore: function () { return "载入更多结果…"; },
      maximumSelected: function (args) { return "最多只能选择" + args.maximum + "个项目"; },
      noResults: function () { return "未找到结果"; },
      searching: function () { return "搜索中…"; },
      removeAllItems: function () { return "删除所有项目"; },
      removeItem: function () { return "删除项目"; }
    });
  }
})(jQuery);
