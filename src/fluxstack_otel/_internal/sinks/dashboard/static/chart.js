// fluxstack-otel dashboard: time-series charts as plain SVG, no dependencies.
// A chart is drawn whole from its data on every update (a few hundred points: cheaper than
// bookkeeping). Styling is in style.css (classes s0..s3, band-*), never inline, so the page's
// Content-Security-Policy needs no 'unsafe-inline'. Hovering a chart moves a cursor to the
// nearest point and writes its time and values into the chart's legend.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const HEIGHT = 150;
  const PAD = { left: 56, right: 10, top: 8, bottom: 20 };

  function el(name, attrs, parent) {
    const node = document.createElementNS(SVG, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    if (parent) parent.appendChild(node);
    return node;
  }

  function clock(t) {
    return new Date(t * 1000).toLocaleTimeString([], { hour12: false });
  }

  // A y range starting at 0 (or below, for negative data) with some headroom, never empty.
  function yRange(series, fixedMax) {
    let max = fixedMax || 0;
    let min = 0;
    for (const s of series) for (const v of s.values) {
      if (v === null || !isFinite(v)) continue;
      if (v > max) max = v;
      if (v < min) min = v;
    }
    if (max === min) max = min + 1;
    return { min, max: max * 1.08 };
  }

  // The path of one series: a move at the start of each run of known values, so an unknown
  // value is a gap in the line, never a fall to zero.
  function pathOf(xs, values, x, y) {
    let d = "";
    let open = false;
    let points = 0;
    for (let i = 0; i < xs.length; i += 1) {
      const v = values[i];
      if (v === null || !isFinite(v)) { open = false; continue; }
      d += (open ? "L" : "M") + x(xs[i]).toFixed(1) + " " + y(v).toFixed(1);
      open = true;
      points += 1;
    }
    return { d, points };
  }

  // chart(figure, {xs, series: [{name, values, cls}], format, yMax}): draw into ``figure``
  // (which holds a .legend); returns the number of points drawn.
  function chart(figure, spec) {
    const width = Math.max(200, Math.floor(figure.clientWidth || 400));
    let svg = figure.querySelector("svg");
    if (svg) svg.remove();
    svg = el("svg", { viewBox: `0 0 ${width} ${HEIGHT}`, width, height: HEIGHT, role: "img" });
    svg.setAttribute("aria-label", spec.title || "");
    figure.appendChild(svg);
    const legend = figure.querySelector(".legend");
    const xs = spec.xs;
    if (xs.length === 0) {
      el("text", { x: width / 2, y: HEIGHT / 2, "text-anchor": "middle", class: "empty" }, svg)
        .textContent = "– (no history yet: two samples are needed)";
      if (legend) legend.textContent = "";
      figure.dataset.points = "0";
      return 0;
    }
    const t0 = spec.from !== undefined ? Math.min(spec.from, xs[0]) : xs[0];
    const t1 = xs[xs.length - 1] > t0 ? xs[xs.length - 1] : t0 + 1;
    const range = yRange(spec.series, spec.yMax);
    const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (width - PAD.left - PAD.right);
    const y = (v) => HEIGHT - PAD.bottom - ((v - range.min) / (range.max - range.min)) * (HEIGHT - PAD.top - PAD.bottom);
    // Grid and axes: three horizontal lines with their values, start and end times.
    for (const f of [0, 0.5, 1]) {
      const v = range.min + f * (range.max - range.min) / 1.08;
      el("line", { x1: PAD.left, x2: width - PAD.right, y1: y(v), y2: y(v), class: "grid" }, svg);
      el("text", { x: PAD.left - 4, y: y(v) + 4, "text-anchor": "end", class: "axis" }, svg)
        .textContent = spec.format(v);
    }
    el("text", { x: PAD.left, y: HEIGHT - 4, class: "axis" }, svg).textContent = clock(t0);
    el("text", { x: width - PAD.right, y: HEIGHT - 4, "text-anchor": "end", class: "axis" }, svg)
      .textContent = clock(t1);
    let drawn = 0;
    spec.series.forEach((s, i) => {
      const { d, points } = pathOf(xs, s.values, x, y);
      drawn += points;
      if (d) el("path", { d, class: "line " + (s.cls || "s" + i), "data-series": s.name }, svg);
      if (points === 1) {  // one value: a dot, since a line needs two
        const at = s.values.findIndex((v) => v !== null && isFinite(v));
        el("circle", { cx: x(xs[at]), cy: y(s.values[at]), r: 2.5, class: "dot " + (s.cls || "s" + i) }, svg);
      }
    });
    figure.dataset.points = String(drawn);
    // Hover: the nearest point's time and values in the legend; leaving shows the latest.
    const cursor = el("line", { y1: PAD.top, y2: HEIGHT - PAD.bottom, class: "cursor hidden" }, svg);
    const show = (i, hovering) => {
      if (!legend) return;
      legend.replaceChildren();
      const time = document.createElement("span");
      time.className = "time";
      time.textContent = (hovering ? "" : "latest ") + clock(xs[i]);
      legend.appendChild(time);
      spec.series.forEach((s, k) => {
        const item = document.createElement("span");
        item.className = "item " + (s.cls || "s" + k);
        const v = s.values[i];
        item.textContent = s.name + " " + (v === null || !isFinite(v) ? "–" : spec.format(v));
        legend.appendChild(item);
      });
      figure.dataset.hover = hovering ? String(i) : "";
    };
    const overlay = el("rect", { x: PAD.left, y: 0, width: width - PAD.left - PAD.right, height: HEIGHT, class: "overlay" }, svg);
    overlay.addEventListener("mousemove", (event) => {
      const box = svg.getBoundingClientRect();
      const px = ((event.clientX - box.left) / box.width) * width;
      let best = 0;
      for (let i = 1; i < xs.length; i += 1) if (Math.abs(x(xs[i]) - px) < Math.abs(x(xs[best]) - px)) best = i;
      cursor.setAttribute("x1", x(xs[best]).toFixed(1));
      cursor.setAttribute("x2", x(xs[best]).toFixed(1));
      cursor.classList.remove("hidden");
      show(best, true);
    });
    overlay.addEventListener("mouseleave", () => {
      cursor.classList.add("hidden");
      show(xs.length - 1, false);
    });
    show(xs.length - 1, false);
    return drawn;
  }

  // bands(figure, {xs, starts, rows: [{name, states: [null|"pending"|"firing"|"resolved"]}]}):
  // one row per alert, a band per interval in which it was pending or firing, a tick where
  // it resolved.
  function bands(figure, spec) {
    const width = Math.max(200, Math.floor(figure.clientWidth || 400));
    const rowHeight = 18;
    const height = Math.max(1, spec.rows.length) * rowHeight + PAD.bottom;
    let svg = figure.querySelector("svg");
    if (svg) svg.remove();
    svg = el("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img" });
    svg.setAttribute("aria-label", "alert states over time");
    figure.appendChild(svg);
    const xs = spec.xs;
    let drawn = 0;
    if (xs.length === 0 || spec.rows.length === 0) {
      el("text", { x: width / 2, y: 14, "text-anchor": "middle", class: "empty" }, svg).textContent =
        xs.length === 0 ? "– (no history yet)" : "No alert was pending or firing in this history.";
      figure.dataset.points = "0";
      return 0;
    }
    const t0 = Math.min(spec.starts[0], xs[0]);
    const t1 = xs[xs.length - 1];
    const x = (t) => 150 + ((t - t0) / Math.max(1e-9, t1 - t0)) * (width - 150 - PAD.right);
    spec.rows.forEach((row, r) => {
      const top = r * rowHeight + 2;
      el("text", { x: 4, y: top + 12, class: "axis" }, svg).textContent = row.name;
      row.states.forEach((state, i) => {
        if (!state) return;
        drawn += 1;
        if (state === "resolved") {
          el("rect", { x: x(spec.starts[i]) - 1, y: top, width: 3, height: rowHeight - 4, class: "band-resolved" }, svg)
            .appendChild(el("title", {})).textContent = row.name + " resolved by " + clock(xs[i]);
          return;
        }
        const left = x(spec.starts[i]);
        el("rect", { x: left, y: top, width: Math.max(1, x(xs[i]) - left), height: rowHeight - 4, class: "band-" + state }, svg)
          .appendChild(el("title", {})).textContent = row.name + " " + state + " at " + clock(xs[i]);
      });
    });
    el("text", { x: 150, y: height - 4, class: "axis" }, svg).textContent = clock(t0);
    el("text", { x: width - PAD.right, y: height - 4, "text-anchor": "end", class: "axis" }, svg).textContent = clock(t1);
    figure.dataset.points = String(drawn);
    return drawn;
  }

  // A sparkline: one small path (and a second for errors), no axes.
  function sparkline(values, errors) {
    const w = 140;
    const h = 26;
    const svg = el("svg", { viewBox: `0 0 ${w} ${h}`, width: w, height: h, class: "spark", role: "img" });
    const max = Math.max(1e-9, ...values.filter((v) => v !== null && isFinite(v)));
    const x = (i) => (values.length < 2 ? w / 2 : (i / (values.length - 1)) * (w - 2) + 1);
    const y = (v) => h - 2 - (v / max) * (h - 4);
    const xs = values.map((_, i) => i);
    const a = pathOf(xs, values, x, y);
    if (a.d) el("path", { d: a.d, class: "line s0" }, svg);
    const b = pathOf(xs, errors, x, y);
    if (b.d && errors.some((v) => v > 0)) el("path", { d: b.d, class: "line bad" }, svg);
    svg.dataset.points = String(a.points);
    return svg;
  }

  window.fluxstackChart = { chart, bands, sparkline };
})();
