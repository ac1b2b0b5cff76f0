// Draws every panel's chart once htmx has put it on the page. The option comes from the
// server (web/console/dashboard.py: chart); a click on a point opens its drill-down list.
(function () {
  function draw(root) {
    if (!window.echarts) return;
    var zh = (document.documentElement.lang || "").toLowerCase().indexOf("zh") === 0;
    root.querySelectorAll(".chart[data-option]").forEach(function (el) {
      if (el.dataset.drawn) return;
      el.dataset.drawn = "1";
      var chart = echarts.init(el, null, { locale: zh ? "ZH" : "EN", renderer: "svg" });
      chart.setOption(JSON.parse(el.dataset.option));
      chart.on("click", function (params) {
        var drill = params.data && params.data.drill;
        if (!drill) return;
        var query = new URLSearchParams(drill).toString();
        window.location.href = el.dataset.drill + (el.dataset.drill.indexOf("?") < 0 ? "?" : "&") + query;
      });
      window.addEventListener("resize", function () { chart.resize(); });
    });
  }
  document.addEventListener("htmx:afterSettle", function (event) { draw(event.target); });
  document.addEventListener("DOMContentLoaded", function () { draw(document); });
})();
