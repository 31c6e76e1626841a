// Liftoff dashboard behaviour: window selector, auto-refresh of the main region, charts.
// No inline scripts: the Content-Security-Policy allows only files served by Liftoff.
(function () {
  "use strict";

  function drawCharts(root) {
    if (typeof uPlot === "undefined") return;
    root.querySelectorAll(".chart-target[data-chart]").forEach(function (el) {
      if (el.dataset.drawn) return;
      var spec = JSON.parse(el.dataset.chart);
      var palette = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed"];
      // Series listed in `spec.bounds` are an interval around the series before them: its
      // colour, dashed, without fill.
      var bounds = spec.bounds || [];
      var colour = 0;
      var series = [{}].concat(spec.series.map(function (name, i) {
        if (bounds.indexOf(i) >= 0) {
          return { label: name, stroke: palette[(colour - 1 + palette.length) % palette.length], width: 1, dash: [4, 4] };
        }
        var c = palette[colour++ % palette.length];
        return { label: name, stroke: c, width: 2, fill: c + "22" };
      }));
      var width = Math.max(280, el.clientWidth || el.parentElement.clientWidth || 600);
      var opts = { width: width, height: 220, series: series, axes: [{}, {}], legend: { show: true } };
      if (spec.markers && spec.markers.length) {
        // Vertical marks at moments (deployments): a dashed line and its label.
        opts.hooks = { draw: [function (u) {
          var ctx = u.ctx;
          ctx.save();
          ctx.strokeStyle = "#7c3aed";
          ctx.fillStyle = "#7c3aed";
          ctx.setLineDash([5, 4]);
          ctx.font = Math.round(11 * devicePixelRatio) + "px sans-serif";
          spec.markers.forEach(function (m) {
            var x = Math.round(u.valToPos(m.x, "x", true));
            if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) return;
            ctx.beginPath();
            ctx.moveTo(x, u.bbox.top);
            ctx.lineTo(x, u.bbox.top + u.bbox.height);
            ctx.stroke();
            ctx.fillText(m.label, x + 4, u.bbox.top + 12 * devicePixelRatio);
          });
          ctx.restore();
        }] };
      }
      if (spec.x_range) {
        // The window the chart is about, not just the span of its points.
        opts.scales = { x: { time: true, range: function () { return [spec.x_range[0], spec.x_range[1]]; } } };
      }
      new uPlot(opts, spec.data, el);
      el.dataset.drawn = "1";
    });
  }

  function refreshMain() {
    var box = document.getElementById("autorefresh");
    if (!box || !box.checked || document.hidden || typeof htmx === "undefined") return;
    htmx.ajax("GET", window.location.href, { target: "#main", select: "#main", swap: "outerHTML" });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.getElementById("window");
    if (select) {
      // Keep the page's other choices (e.g. the service) when the window changes.
      select.addEventListener("change", function () {
        var url = new URL(window.location.href);
        url.searchParams.set("window", select.value);
        window.location.href = url.toString();
      });
    }
    document.querySelectorAll("select[data-autosubmit]").forEach(function (s) {
      s.addEventListener("change", function () { s.form.submit(); });
    });
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (e) {
        if (!window.confirm(form.dataset.confirm)) e.preventDefault();
      });
    });
    var box = document.getElementById("autorefresh");
    if (box) {
      box.checked = localStorage.getItem("liftoff.autorefresh") !== "off";
      box.addEventListener("change", function () {
        localStorage.setItem("liftoff.autorefresh", box.checked ? "on" : "off");
      });
    }
    var main = document.getElementById("main");
    var seconds = main ? parseInt(main.dataset.refreshSeconds || "30", 10) : 0;
    if (seconds > 0) setInterval(refreshMain, seconds * 1000);
    drawCharts(document);
  });

  document.addEventListener("htmx:afterSettle", function () { drawCharts(document); });
})();
