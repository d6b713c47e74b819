// Dashboard charts, drawn with the plotly bundle the server serves from the plotly package.
// The numbers and tables are the page; plotly (4.8 MB of script to parse) loads once the
// page has, so they show at once and the charts fill in after.
"use strict";

const plotlySrc = document.currentScript && document.currentScript.dataset.plotly;

// The period and model pickers apply at once (no inline handlers: the CSP forbids them).
document.querySelectorAll("[data-submit-on-change]").forEach((select) => {
  select.addEventListener("change", () => select.form.submit());
});

function drawCharts() {
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  if (!window.Plotly || !data.over_time.length) return;
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const x = data.over_time.map((row) => row.bucket);
  const layout = (extra) => ({
    margin: { l: 44, r: 12, t: 8, b: 36 },
    height: 240,
    paper_bgcolor: "rgba(0,0,0,0)",
    plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: css.getPropertyValue("--font"), size: 12, color: color("--text-soft") },
    xaxis: { gridcolor: color("--line"), linecolor: color("--line") },
    yaxis: { gridcolor: color("--line"), zerolinecolor: color("--line"), rangemode: "tozero" },
    legend: { orientation: "h", y: -0.22 },
    showlegend: true,
    ...extra,
  });
  const config = { displayModeBar: false, responsive: true };
  Plotly.newPlot("chart-volume", [
    { x, y: data.over_time.map((r) => r.runs), type: "bar", name: "runs", marker: { color: color("--accent") } },
    { x, y: data.over_time.map((r) => r.feedback), type: "scatter", mode: "lines+markers", name: "feedback", line: { color: color("--good") } },
  ], layout({}), config);
  Plotly.newPlot("chart-quality", [
    { x, y: data.over_time.map((r) => r.positive_rate), type: "scatter", mode: "lines+markers", name: "positive rate", line: { color: color("--good") } },
    { x, y: data.over_time.map((r) => r.mean_score), type: "scatter", mode: "lines+markers", name: "mean score", line: { color: color("--accent") } },
  ], layout({ yaxis: { range: [0, 1.05], tickformat: ".0%", gridcolor: color("--line") } }), config);
  Plotly.newPlot("chart-latency", [
    { x, y: data.over_time.map((r) => r.latency_p50), type: "scatter", mode: "lines+markers", name: "p50 ms", line: { color: color("--accent") } },
    { x, y: data.over_time.map((r) => r.latency_p99), type: "scatter", mode: "lines+markers", name: "p99 ms", line: { color: color("--bad") } },
  ], layout({}), config);
  document.documentElement.dataset.charts = "drawn";
}

function loadPlotly() {
  const holder = document.getElementById("dashboard-data");
  if (!holder || !plotlySrc || !JSON.parse(holder.textContent).over_time.length) return;
  if (window.Plotly) return drawCharts();
  const script = document.createElement("script");
  script.src = plotlySrc;
  script.addEventListener("load", drawCharts);
  document.head.append(script);
}

if (document.readyState === "complete") loadPlotly();
else window.addEventListener("load", loadPlotly);
