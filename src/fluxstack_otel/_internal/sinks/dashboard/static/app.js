// fluxstack-otel dashboard: polls the JSON document and its history section, and shows them.
// No dependencies and no network access beyond the document: the page works offline and under a
// strict Content-Security-Policy. Every rate, ratio and quantile comes from the server's history
// points (each one interval's increase between two samples the server took), so a page opened
// now is right from its first paint, and what is not known yet shows "–", never 0. Quantiles are
// read from base-2 exponential buckets where the histograms keep them (histograms: exponential),
// as metrics/exponential.py's quantile(), and otherwise interpolated within the classic buckets
// exactly as PromQL's histogram_quantile.
"use strict";

(function () {
  const body = document.body;
  const source = body.dataset.source;
  const names = JSON.parse(body.dataset.metrics);
  const query = new URLSearchParams(window.location.search);
  const refresh = Math.max(0.2, Number(query.get("refresh")) || Number(body.dataset.refresh) || 5);
  const WINDOW = 60;  // seconds the cards summarise: the built-in alert rules' window
  const draw = window.fluxstackChart;
  const { quantile, mergeExponential, finest } = window.fluxstackQuantile;

  // The page's state, readable from the browser console (and by the browser test).
  const state = { doc: null, points: [], history: null, updates: 0, error: null, first: null };
  window.fluxstackDashboard = state;

  // --- reading the document ------------------------------------------------------------------

  function metric(doc, name) {
    return doc ? doc.metrics.find((m) => m.name === name) || null : null;
  }

  function num(v) {
    if (typeof v === "number") return v;
    if (v === "+Inf") return Infinity;
    if (v === "-Inf") return -Infinity;
    return NaN;
  }

  function total(doc, name, keep) {
    const m = metric(doc, name);
    if (!m) return null;
    let sum = 0;
    for (const s of m.series) if (!keep || keep(s.labels)) sum += num(s.value);
    return sum;
  }

  // A gauge's one value. Behind several workers (the multiprocess host view) memory has one
  // series per worker, which add up, and loop lag one per worker, of which the worst counts.
  function gauge(doc, name, reduce) {
    const m = metric(doc, name);
    if (!m || !m.series.length) return null;
    const values = m.series.map((s) => num(s.value));
    if (reduce === "sum") return values.reduce((a, b) => a + b, 0);
    if (reduce === "max") return Math.max(...values);
    return values[0];
  }

  // A document's histogram series merged: {count, bounds, cumulative} (for the routes table).
  function merged(doc, name, keep) {
    const m = metric(doc, name);
    if (!m) return null;
    let out = null;
    for (const s of m.series) {
      if (keep && !keep(s.labels)) continue;
      if (!out) out = { count: 0, bounds: s.buckets.map((b) => num(b.le)), cumulative: s.buckets.map(() => 0) };
      if (s.buckets.length !== out.bounds.length) continue;
      out.count += s.count;
      s.buckets.forEach((b, i) => { out.cumulative[i] += b.count; });
    }
    return out;
  }

  // The document's exponential buckets of the series ``keep`` selects, merged; null when any
  // selected series with values has none (then the classic buckets answer).
  function documentExponential(doc, name, keep) {
    const m = metric(doc, name);
    if (!m) return null;
    const parts = [];
    for (const s of m.series) {
      if ((keep && !keep(s.labels)) || s.count <= 0) continue;
      const e = s.exponential;
      if (!e) return null;
      parts.push({ scale: e.scale, zero: e.zero_count, offset: e.offset, counts: e.counts });
    }
    return mergeExponential(parts);
  }

  // --- reading the history -------------------------------------------------------------------

  // The exponential increases of several points merged, or null when a point with values has
  // none (the histogram keeps classic buckets only, or one of its series did not).
  function exponentialOf(points, key) {
    const parts = [];
    for (const p of points) {
      const h = p[key];
      if (!h || h.n <= 0) continue;
      if (!h.e) return null;
      parts.push({ scale: h.e[0], zero: h.e[1], offset: h.e[2], counts: h.e[3] });
    }
    return mergeExponential(parts);
  }

  // Histogram increases of several points added up: {count, sum, bounds, cumulative}.
  function histogramOf(points, key, bounds) {
    const out = { count: 0, sum: 0, bounds, cumulative: bounds.map(() => 0) };
    for (const p of points) {
      const h = p[key];
      if (!h || h.b.length !== bounds.length + 1) continue;
      out.count += h.n;
      out.sum += h.s;
      let running = 0;
      for (let i = 0; i < bounds.length; i += 1) { running += h.b[i]; out.cumulative[i] += running; }
    }
    return out;
  }

  function ratio(a, b) {
    return b > 0 ? a / b : null;
  }

  // The figures of one stretch of points (one point for a chart, the last minute for a card).
  function figures(points) {
    const h = state.history;
    let dt = 0, cdt = 0, req = 0, err = 0, cpu = 0, cpuKnown = true;
    for (const p of points) {
      dt += p.dt; req += p.req; err += p.err;
      // The CPU's own interval between its two readings (older points: the HTTP one).
      cdt += p.cdt === undefined ? p.dt : p.cdt;
      if (p.cpu === null) cpuKnown = false; else cpu += p.cpu;
    }
    const last = points[points.length - 1];
    const duration = histogramOf(points, "dur", h.duration_bounds);
    const size = histogramOf(points, "size", h.size_bounds);
    const durationExp = duration.count ? exponentialOf(points, "dur") : null;
    const sizeExp = size.count ? exponentialOf(points, "size") : null;
    return {
      rate: ratio(req, dt),
      errorRate: ratio(err, req),
      p50: duration.count ? finest(0.5, durationExp, duration) : null,
      p95: duration.count ? finest(0.95, durationExp, duration) : null,
      p99: duration.count ? finest(0.99, durationExp, duration) : null,
      exponential: durationExp !== null,
      mean: ratio(duration.sum, duration.count),
      sizeMean: ratio(size.sum, size.count),
      sizeP95: size.count ? finest(0.95, sizeExp, size) : null,
      cpu: cpuKnown && last.cores ? ratio(cpu, cdt) / last.cores : null,
      rss: last.rss, heap: last.heap, lag: last.lag, load: last.load, cores: last.cores,
    };
  }

  // The points of the last ``WINDOW`` seconds (at least the last one).
  function recent(points) {
    const out = [];
    let span = 0;
    for (let i = points.length - 1; i >= 0 && (out.length === 0 || span + points[i].dt <= WINDOW + 1e-6); i -= 1) {
      out.unshift(points[i]);
      span += points[i].dt;
    }
    return { points: out, span };
  }

  // --- formatting ----------------------------------------------------------------------------

  const known = (v) => v !== null && v !== undefined && isFinite(v);

  function fmtBytes(v) {
    if (!known(v)) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
  }

  function fmtDuration(v) {
    if (!known(v)) return "–";
    if (v < 1) return (v * 1000).toFixed(v < 0.01 ? 2 : 1) + " ms";
    return v.toFixed(2) + " s";
  }

  const fmtRate = (v) => (known(v) ? v.toFixed(2) : "–");
  const fmtPercent = (v) => (known(v) ? (v * 100).toFixed(1) + " %" : "–");
  const fmtCount = (v) => (known(v) ? String(Math.round(v)) : "–");
  const fmtNumber = (v) => (known(v) ? v.toFixed(2) : "–");

  // Shows ``text`` and keeps the raw number in data-value, so what is shown can be checked.
  function show(id, value, text) {
    const node = document.getElementById(id);
    node.textContent = text;
    node.dataset.value = known(value) ? String(value) : "";
  }

  // --- rendering -----------------------------------------------------------------------------

  const CHARTS = [
    { id: "requests", title: "Request rate (requests/s)", format: fmtRate, series: [["requests/s", (f) => f.rate]] },
    { id: "errors", title: "Error rate (share of requests)", format: fmtPercent, series: [["errors", (f) => f.errorRate, "bad"]] },
    { id: "latency", title: "Latency", format: fmtDuration,
      series: [["p50", (f) => f.p50], ["p95", (f) => f.p95], ["p99", (f) => f.p99], ["mean", (f) => f.mean]] },
    { id: "sizes", title: "Response size", format: fmtBytes, series: [["mean", (f) => f.sizeMean], ["p95", (f) => f.sizeP95]] },
    { id: "memory", title: "Memory", format: fmtBytes, series: [["RSS", (f) => f.rss], ["heap", (f) => f.heap]] },
    { id: "cpu", title: "CPU (share of the available CPUs)", format: fmtPercent, series: [["CPU", (f) => f.cpu]] },
    { id: "lag", title: "Event-loop lag", format: fmtDuration, series: [["lag", (f) => f.lag]] },
    { id: "load", title: "Load average (1 min) and CPUs", format: fmtNumber,
      series: [["load", (f) => f.load], ["CPUs", (f) => f.cores]] },
  ];

  function figuresOf(id) {
    let figure = document.getElementById("chart-" + id);
    if (!figure) {
      const spec = CHARTS.find((c) => c.id === id);
      figure = document.createElement("figure");
      figure.className = "chart";
      figure.id = "chart-" + id;
      const caption = document.createElement("figcaption");
      const title = document.createElement("h3");
      title.textContent = spec.title;
      const legend = document.createElement("span");
      legend.className = "legend";
      caption.append(title, legend);
      figure.appendChild(caption);
      document.getElementById("charts").appendChild(figure);
    }
    return figure;
  }

  function renderCharts(points) {
    const xs = points.map((p) => p.t);
    const from = points.length ? points[0].t - points[0].dt : undefined;
    const each = points.map((p) => figures([p]));
    for (const spec of CHARTS) {
      draw.chart(figuresOf(spec.id), {
        title: spec.title, xs, from, format: spec.format,
        series: spec.series.map(([name, pick, cls]) => ({ name, cls, values: each.map(pick) })),
      });
    }
    const span = points.length ? points[points.length - 1].t - from : 0;
    document.getElementById("history-span").textContent =
      points.length ? "last " + Math.round(span) + " s, one point every " + state.history.step + " s" : "";
  }

  function renderCards(doc, points) {
    const requests = total(doc, names.requests);
    const errors = total(doc, names.errors);
    show("total-requests", requests, fmtCount(requests));
    show("errors-total", errors, fmtCount(errors));
    const windowText = points.length ? "last " + Math.round(recent(points).span) + " s" : "– (one sample so far)";
    for (const node of document.querySelectorAll(".window")) node.textContent = windowText;
    const f = points.length ? figures(recent(points).points) : {};
    show("request-rate", f.rate, fmtRate(f.rate));
    show("error-rate", f.errorRate, fmtPercent(f.errorRate));
    for (const q of ["p50", "p95", "p99", "mean"]) show(q, f[q], fmtDuration(f[q]));
    // Which buckets the quantiles come from: exponential ones are finer (docs/dashboard.md).
    const scheme = f.p50 === null || f.p50 === undefined ? "" : f.exponential ? "exponential" : "classic";
    const buckets = document.getElementById("latency-buckets");
    buckets.dataset.scheme = scheme;
    buckets.textContent = scheme ? ", " + scheme + " buckets" : "";
    show("cpu", f.cpu, fmtPercent(f.cpu));
    const cores = gauge(doc, names.cores);
    show("cores", cores, fmtNumber(cores).replace(/\.00$/, ""));
    const rss = gauge(doc, names.rss, "sum");
    const memoryTotal = gauge(doc, names.memory_total);
    show("rss", rss, fmtBytes(rss));
    document.getElementById("rss-share").textContent =
      known(rss) && memoryTotal ? fmtPercent(rss / memoryTotal) + " of host memory" : "of host memory";
    const heap = gauge(doc, names.heap, "sum");
    show("heap", heap, fmtBytes(heap));
    const lag = gauge(doc, names.loop_lag, "max");
    show("loop-lag", lag, fmtDuration(lag));
    const load = gauge(doc, names.load);
    show("load", load, fmtNumber(load));
  }

  function routesOf(doc) {
    const out = new Set();
    const m = metric(doc, names.requests);
    if (m) for (const s of m.series) out.add(s.labels[names.label_route]);
    return [...out].sort();
  }

  function renderRoutes(doc, points) {
    const tbody = document.querySelector("#routes tbody");
    const rows = [];
    const last = recent(points);
    for (const route of routesOf(doc)) {
      const keep = (labels) => labels[names.label_route] === route;
      const requests = total(doc, names.requests, keep);
      const p95 = finest(0.95, documentExponential(doc, names.duration, keep), merged(doc, names.duration, keep));
      const errors = total(doc, names.errors, keep) || 0;
      const inWindow = last.points.reduce((n, p) => n + ((p.routes[route] || [0])[0]), 0);
      const rate = points.length ? inWindow / last.span : null;
      const tr = document.createElement("tr");
      tr.dataset.route = route;
      const name = document.createElement("th");
      name.scope = "row";
      name.className = "route";
      name.textContent = route;
      const spark = document.createElement("td");
      spark.className = "spark";
      spark.appendChild(draw.sparkline(
        points.map((p) => (p.routes[route] || [0, 0])[0] / p.dt),
        points.map((p) => (p.routes[route] || [0, 0])[1] / p.dt),
      ));
      tr.append(name, spark);
      for (const [cls, value, text] of [
        ["requests", requests, fmtCount(requests)],
        ["rate", rate, fmtRate(rate)],
        ["p95", p95, fmtDuration(p95)],
        ["errors", errors, fmtCount(errors)],
      ]) {
        const td = document.createElement("td");
        td.className = cls + " num";
        td.textContent = text;
        if (known(value)) td.dataset.value = String(value);
        if (cls === "errors" && errors > 0) td.classList.add("bad");
        tr.appendChild(td);
      }
      rows.push(tr);
    }
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 6;
      td.className = "none";
      td.textContent = "No requests yet.";
      tr.appendChild(td);
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
  }

  function renderAlerts(doc, points) {
    const list = document.getElementById("alerts");
    const items = [];
    if (!Array.isArray(doc.alerts)) {
      items.push(note("No alert section in the document."));
    } else if (doc.alerts.length === 0) {
      items.push(note("No active alerts."));
    } else {
      const order = { critical: 0, error: 1, warning: 2, info: 3 };
      const alerts = [...doc.alerts].sort((a, b) => (order[a.severity] ?? 9) - (order[b.severity] ?? 9));
      for (const alert of alerts) {
        const li = document.createElement("li");
        li.className = "alert " + String(alert.severity);
        li.dataset.name = String(alert.name);
        const badge = document.createElement("span");
        badge.className = "severity";
        badge.textContent = String(alert.severity);
        const name = document.createElement("strong");
        name.textContent = String(alert.name);
        const stateText = document.createElement("span");
        stateText.className = "state";
        stateText.textContent = String(alert.state);
        const message = document.createElement("span");
        message.className = "message";
        message.textContent = String(alert.message || "");
        li.append(badge, " ", name, " ", stateText, " ", message);
        items.push(li);
      }
    }
    list.replaceChildren(...items);
    // Alert states over the history: pending and firing bands, a tick where one resolved.
    const seen = [];
    for (const p of points) for (const [name] of p.alerts) if (!seen.includes(name)) seen.push(name);
    const rows = seen.sort().map((name) => {
      let wasFiring = false;
      const states = points.map((p) => {
        const hit = p.alerts.find((a) => a[0] === name);
        const now = hit ? hit[1] : null;
        const out = now || (wasFiring ? "resolved" : null);
        wasFiring = now === "firing";
        return out;
      });
      return { name, states };
    });
    draw.bands(document.getElementById("chart-alerts"), {
      xs: points.map((p) => p.t), starts: points.map((p) => p.t - p.dt), rows,
    });
  }

  function note(text) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = text;
    return li;
  }

  function render() {
    const doc = state.doc;
    const points = state.points;
    renderCards(doc, points);
    renderCharts(points);
    renderRoutes(doc, points);
    renderAlerts(doc, points);
  }

  // --- polling -------------------------------------------------------------------------------

  function merge(history) {
    state.history = history;
    const last = state.points.length ? state.points[state.points.length - 1].t : -Infinity;
    const routeNames = history.routes || [];
    for (const p of history.points) {
      if (p.t <= last) continue;
      // [index, requests, errors] into the section's route names -> {route: [requests, errors]}
      p.routes = Object.fromEntries(p.routes.map(([i, req, err]) => [routeNames[i], [req, err]]));
      state.points.push(p);
    }
    if (state.points.length > history.capacity) state.points.splice(0, state.points.length - history.capacity);
  }

  async function poll() {
    try {
      const last = state.points.length ? state.points[state.points.length - 1].t : null;
      const url = last === null ? source : source + "?since=" + encodeURIComponent(String(last));
      const response = await fetch(url, { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status + " from " + source);
      const doc = await response.json();
      const history = doc.history || { step: refresh, capacity: 0, routes: [], duration_bounds: [], size_bounds: [], points: [] };
      merge(history);
      state.doc = doc;
      render();
      state.updates += 1;
      if (state.first === null) {
        state.first = {
          points: state.points.length,
          requests: state.points.reduce((n, p) => n + p.req, 0),
          drawn: Object.fromEntries([...document.querySelectorAll("figure.chart")].map((f) => [f.id, Number(f.dataset.points || 0)])),
        };
      }
      state.error = null;
      body.dataset.updates = String(state.updates);
      document.getElementById("status").textContent = "live";
      document.getElementById("status").className = "ok";
      document.getElementById("updated").textContent = "updated " + new Date(doc.timestamp).toLocaleTimeString();
    } catch (err) {
      state.error = String(err && err.message ? err.message : err);
      document.getElementById("status").textContent = "cannot read the data: " + state.error;
      document.getElementById("status").className = "bad";
    } finally {
      window.setTimeout(poll, refresh * 1000);
    }
  }

  let resizing = null;
  window.addEventListener("resize", () => {
    window.clearTimeout(resizing);
    resizing = window.setTimeout(() => { if (state.doc) render(); }, 150);
  });

  poll();
})();
