// Leaderboard charts: scores with their intervals, and the win-rate heatmap.
// The tables are the page; plotly loads once the page has, and the charts fill in after.
// The data is the page's JSON twin, embedded.
"use strict";

const plotlySrc = document.currentScript && document.currentScript.dataset.plotly;

function drawCharts() {
  const data = JSON.parse(document.getElementById("leaderboard-data").textContent);
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const font = { family: css.getPropertyValue("--font"), size: 12, color: color("--text-soft") };
  const config = { displayModeBar: false, responsive: true };
  const battles = (extra) => {
    const url = new URL(data.links.battles, window.location.href);
    for (const [key, value] of Object.entries(extra)) url.searchParams.set(key, value);
    return url.pathname + url.search;
  };

  // Best model on top: plotly draws the first category at the bottom.
  const rows = [...data.models].reverse();
  const names = rows.map((r) => r.model);
  const height = Math.max(220, 60 + 30 * rows.length);
  Plotly.newPlot("chart-scores", [
    {
      type: "scatter", mode: "markers", name: "score", y: names, x: rows.map((r) => r.score),
      error_x: {
        type: "data", symmetric: false, color: color("--accent"), thickness: 2, width: 4,
        array: rows.map((r) => r.upper - r.score), arrayminus: rows.map((r) => r.score - r.lower),
      },
      marker: { color: color("--accent"), size: 9 },
      hovertemplate: "%{y}: %{x:.1f}<extra>score</extra>",
    },
    {
      type: "scatter", mode: "markers", name: "Elo", y: names, x: rows.map((r) => r.elo),
      marker: { color: color("--text-faint"), symbol: "diamond-open", size: 8 },
      hovertemplate: "%{y}: %{x:.1f}<extra>Elo</extra>",
    },
  ], {
    margin: { l: 10, r: 12, t: 8, b: 36 }, height,
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font,
    xaxis: { gridcolor: color("--line"), zerolinecolor: color("--line") },
    yaxis: { automargin: true, gridcolor: color("--line") },
    legend: { orientation: "h", y: -0.15 }, showlegend: true,
  }, config);

  const m = data.matrix;
  const text = m.win_rate.map((row, i) => row.map((rate, j) =>
    m.battles[i][j] ? `${(rate * 100).toFixed(1)}% of ${m.battles[i][j]}` : ""));
  Plotly.newPlot("chart-winrate", [{
    type: "heatmap", x: m.models, y: m.models, z: m.win_rate, text, zmin: 0, zmax: 1,
    colorscale: [[0, color("--bad")], [0.5, color("--bg-sunk")], [1, color("--good")]],
    hovertemplate: "%{y} vs %{x}: %{text}<extra></extra>", xgap: 2, ygap: 2,
    colorbar: { tickformat: ".0%", thickness: 10, outlinewidth: 0 },
  }], {
    margin: { l: 10, r: 10, t: 8, b: 10 }, height: Math.max(260, 80 + 34 * m.models.length),
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", font,
    xaxis: { side: "top", automargin: true, showgrid: false, zeroline: false },
    yaxis: { autorange: "reversed", automargin: true, showgrid: false, zeroline: false },
  }, config);

  // Every number leads to the battles behind it: a point to the model's, a cell to the pair's.
  document.getElementById("chart-scores").on("plotly_click", (event) => {
    window.location.href = battles({ model: event.points[0].y });
  });
  document.getElementById("chart-winrate").on("plotly_click", (event) => {
    const point = event.points[0];
    if (point.y !== point.x) window.location.href = battles({ model: point.y, opponent: point.x });
  });
  document.documentElement.dataset.charts = "drawn";
}

function loadPlotly() {
  const holder = document.getElementById("leaderboard-data");
  if (!holder || !plotlySrc || !JSON.parse(holder.textContent).models.length) return;
  if (window.Plotly) return drawCharts();
  const script = document.createElement("script");
  script.src = plotlySrc;
  script.addEventListener("load", drawCharts);
  document.head.append(script);
}

if (document.readyState === "complete") loadPlotly();
else window.addEventListener("load", loadPlotly);
