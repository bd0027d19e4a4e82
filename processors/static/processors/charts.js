/* Processor register: the charts (dashboard bars, the flow view's Sankey), drawn with the vendored
   Apache ECharts from data the page carries in <script type="application/json"> (json_script).
   Every chart has a table beside it; without JavaScript (or ECharts) the table is the picture.
   CSP: no inline script, no eval; the canvas renderer writes no style attributes we would need to allow. */
(function () {
  "use strict";
  if (!window.echarts) return;

  var SENSITIVE = "#a1161b";
  var PLAIN = "#2f6db5";
  var FONT = getComputedStyle(document.documentElement).fontFamily;
  // Names come from the register: a tooltip is HTML, so every name is escaped.
  var esc = window.echarts.format.encodeHTML;

  function readData(element) {
    var source = document.getElementById(element.getAttribute("data-chart-source"));
    return source ? JSON.parse(source.textContent) : null;
  }

  function go(url) {
    if (url) window.location.assign(url);
  }

  function barChart(element, data) {
    var horizontal = element.getAttribute("data-chart") === "hbars";
    var categoryAxis = {
      type: "category",
      data: data.labels,
      inverse: horizontal,
      axisLabel: { fontFamily: FONT, width: horizontal ? 120 : 80, overflow: "truncate", interval: 0, rotate: horizontal ? 0 : 30 },
      triggerEvent: true
    };
    var valueAxis = { type: "value", minInterval: 1, axisLabel: { fontFamily: FONT } };
    return {
      textStyle: { fontFamily: FONT },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true },
      legend: { top: 0, textStyle: { fontFamily: FONT } },
      grid: { left: 8, right: 16, top: 32, bottom: 8, containLabel: true },
      xAxis: horizontal ? valueAxis : categoryAxis,
      yAxis: horizontal ? categoryAxis : valueAxis,
      series: data.series.map(function (series) {
        return {
          name: series.name,
          type: "bar",
          stack: "operations",
          data: series.values,
          cursor: "pointer",
          itemStyle: { color: series.kind === "sensitive" ? SENSITIVE : PLAIN },
          emphasis: { focus: "series" }
        };
      })
    };
  }

  function sankeyChart(element, data) {
    var narrow = element.clientWidth < 600;
    var names = {};
    data.nodes.forEach(function (node) { names[node.id] = node; });
    return {
      textStyle: { fontFamily: FONT },
      tooltip: {
        trigger: "item",
        confine: true,
        formatter: function (params) {
          if (params.dataType === "edge") {
            var link = params.data;
            return esc(names[link.source].label) + " → " + esc(names[link.target].label) + "<br>" +
              link.operations + " " + esc(data.words.operations) +
              (link.sensitive ? "<br>" + link.sensitive + " " + esc(data.words.sensitive) : "");
          }
          return esc(params.data.stage_label) + ": " + esc(params.data.label);
        }
      },
      series: [{
        type: "sankey",
        left: 8, right: narrow ? 84 : 150, top: 8, bottom: 8,
        nodeGap: 8,
        nodeWidth: 14,
        draggable: false,
        layoutIterations: 32,
        emphasis: { focus: "adjacency" },
        label: {
          fontFamily: FONT,
          width: narrow ? 78 : 140,
          fontSize: narrow ? 10 : 12,
          overflow: "truncate",
          formatter: function (params) { return params.data.label; }
        },
        data: data.nodes.map(function (node) {
          return {
            name: node.id, label: node.label, url: node.url, stage_label: node.stage_label,
            itemStyle: { color: node.stage === "country" ? "#5c3f00" : PLAIN },
            cursor: "pointer"
          };
        }),
        links: data.links.map(function (link) {
          var share = link.operations ? link.sensitive / link.operations : 0;
          return {
            source: link.source, target: link.target, value: link.operations,
            operations: link.operations, sensitive: link.sensitive,
            lineStyle: { color: share > 0 ? SENSITIVE : "#93bdea", opacity: share > 0 ? 0.25 + 0.5 * share : 0.45 }
          };
        })
      }]
    };
  }

  document.querySelectorAll("[data-chart]").forEach(function (element) {
    var data = readData(element);
    if (!data) return;
    var kind = element.getAttribute("data-chart");
    // Horizontal bars get the height their labels need; the flow grows with its largest level.
    if (kind === "hbars") element.style.height = Math.max(140, 26 * data.labels.length + 56) + "px";
    if (kind === "sankey") {
      var perStage = {};
      data.nodes.forEach(function (node) { perStage[node.stage] = (perStage[node.stage] || 0) + 1; });
      var tallest = Math.max.apply(null, Object.keys(perStage).map(function (stage) { return perStage[stage]; }));
      element.style.height = Math.max(360, 34 * tallest + 40) + "px";
    }
    var chart = window.echarts.init(element, null, { renderer: "canvas" });
    chart.setOption(kind === "sankey" ? sankeyChart(element, data) : barChart(element, data));
    chart.on("click", function (params) {
      if (kind === "sankey") {
        if (params.dataType === "node") go(params.data.url);
      } else if (params.componentType === "xAxis" || params.componentType === "yAxis") {
        go(data.urls[data.labels.indexOf(params.value)]);
      } else {
        go(data.urls[params.dataIndex]);
      }
    });
    element.setAttribute("data-chart-ready", "true");
    var figure = element.closest("[data-chart-figure]");
    if (figure) figure.classList.add("chart-drawn");
    window.addEventListener("resize", function () { chart.resize(); });
  });
})();
