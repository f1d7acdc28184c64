// Equity, exposure and daily P&L of the portfolio: the minute history from /api/portfolio/history, then a live
// point from every `metrics` event (about one every 5 s), drawn with uPlot on canvas.
import uPlot from "../vendor/uplot/uPlot.esm.js";

import { number } from "./format.js";

const LIVE_POINTS = 1440; // two hours of 5-second points, the oldest dropped first
const HEIGHT = 150;
const COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 2 });

export const CHARTS = {
  equity: [
    { label: "Equity", field: "equity", stroke: "#2563eb", width: 2 },
    { label: "Peak", field: "peak_equity", stroke: "#94a3b8", width: 1, dash: [4, 4] },
  ],
  exposure: [
    { label: "Booked", field: "exposure", stroke: "#d97706", width: 2 },
    { label: "At the marks", field: "market_exposure", stroke: "#7c3aed", width: 1 },
  ],
  pnl: [{ label: "Daily P&L", field: "daily_pnl", stroke: "#059669", width: 2, fill: "rgba(5, 150, 105, 0.12)" }],
};

function options(series, width) {
  return {
    width,
    height: HEIGHT,
    legend: { show: true, live: true },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: true } },
    axes: [
      { stroke: "#64748b", grid: { stroke: "#eef2f7" }, ticks: { stroke: "#e2e8f0" } },
      {
        stroke: "#64748b",
        size: 56,
        grid: { stroke: "#eef2f7" },
        ticks: { stroke: "#e2e8f0" },
        values: (chart, splits) => splits.map((value) => COMPACT.format(value)),
      },
    ],
    series: [
      {},
      ...series.map((line) => ({
        label: line.label,
        stroke: line.stroke,
        width: line.width,
        dash: line.dash,
        fill: line.fill,
        spanGaps: true,
        value: (chart, value) => (value === null || value === undefined ? "–" : COMPACT.format(value)),
      })),
    ],
  };
}

// One chart: its history, its live tail, the uPlot drawing both.
class DeskChart {
  constructor(element, series) {
    this.element = element;
    this.series = series;
    this.history = [];
    this.live = [];
    this.plot = new uPlot(options(series, Math.max(element.clientWidth, 200)), this.data(), element);
    new ResizeObserver(() => this.resize()).observe(element);
    this.mark();
  }

  point(time, figures) {
    return [time, ...this.series.map((line) => number(figures[line.field]))];
  }

  data() {
    const last = this.history.length ? this.history[this.history.length - 1][0] : -Infinity;
    const points = [...this.history, ...this.live.filter((point) => point[0] > last)];
    return [0, ...this.series.keys()].map((_, column) => points.map((point) => point[column]));
  }

  setHistory(points) {
    this.history = points.map((point) => this.point(Date.parse(point.time) / 1000, point));
    this.redraw();
  }

  addLive(time, figures) {
    const seconds = Date.parse(time) / 1000;
    if (!Number.isFinite(seconds)) return;
    if (this.live.length && this.live[this.live.length - 1][0] >= seconds) return;
    this.live.push(this.point(seconds, figures));
    if (this.live.length > LIVE_POINTS) this.live.splice(0, this.live.length - LIVE_POINTS);
    this.redraw();
  }

  redraw() {
    this.plot.setData(this.data());
    this.mark();
  }

  // How many points are drawn, in the DOM (what an operator's tooling, and the page's tests, can read).
  mark() {
    this.element.dataset.points = String(this.plot.data[0].length);
  }

  resize() {
    const width = Math.max(this.element.clientWidth, 200);
    if (width !== this.plot.width) this.plot.setSize({ width, height: HEIGHT });
  }
}

export class DeskCharts {
  constructor(root) {
    this.charts = Object.fromEntries(
      Object.entries(CHARTS).map(([name, series]) => [name, new DeskChart(root.querySelector(`[data-chart="${name}"]`), series)]),
    );
  }

  setHistory(points) {
    for (const chart of Object.values(this.charts)) chart.setHistory(points);
  }

  addLive(time, portfolio) {
    for (const chart of Object.values(this.charts)) chart.addLive(time, portfolio);
  }
}
