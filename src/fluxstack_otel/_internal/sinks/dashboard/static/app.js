// fluxstack-otel dashboard: polls the JSON document (docs/json-schema.json) and shows it.
// No dependencies and no network access beyond the document: the page works offline and under a
// strict Content-Security-Policy. Rates are differences between two successive documents;
// quantiles are interpolated within histogram buckets exactly as PromQL's histogram_quantile.
"use strict";

(function () {
  const body = document.body;
  const source = body.dataset.source;
  const names = JSON.parse(body.dataset.metrics);
  const query = new URLSearchParams(window.location.search);
  const refresh = Math.max(0.2, Number(query.get("refresh")) || Number(body.dataset.refresh) || 5);

  // The page's state, readable from the browser console (and by the browser test).
  const state = { doc: null, prev: null, updates: 0, error: null };
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

  // Histogram series merged into one: {count, bounds: [...], cumulative: [...]}.
  function merged(doc, name, keep) {
    const m = metric(doc, name);
    if (!m) return null;
    let out = null;
    for (const s of m.series) {
      if (keep && !keep(s.labels)) continue;
      if (!out) {
        out = { count: 0, bounds: s.buckets.map((b) => num(b.le)), cumulative: s.buckets.map(() => 0) };
      }
      if (s.buckets.length !== out.bounds.length) continue;
      out.count += s.count;
      s.buckets.forEach((b, i) => { out.cumulative[i] += b.count; });
    }
    return out;
  }

  function minus(now, before) {
    if (!now || !before || before.bounds.length !== now.bounds.length) return null;
    return {
      count: now.count - before.count,
      bounds: now.bounds,
      cumulative: now.cumulative.map((c, i) => c - before.cumulative[i]),
    };
  }

  // PromQL histogram_quantile (promql/quantile.go) over finite buckets plus the +Inf count.
  function quantile(q, h) {
    if (!h || h.count <= 0 || h.bounds.length === 0) return NaN;
    const rank = q * h.count;
    let b = h.cumulative.findIndex((c) => c >= rank);
    if (b === -1) return h.bounds[h.bounds.length - 1];
    if (b === 0 && h.bounds[0] <= 0) return h.bounds[0];
    let start = 0;
    let inBucket = h.cumulative[b];
    let r = rank;
    if (b > 0) {
      start = h.bounds[b - 1];
      inBucket -= h.cumulative[b - 1];
      r -= h.cumulative[b - 1];
    }
    if (inBucket === 0) return NaN;
    return start + (h.bounds[b] - start) * (r / inBucket);
  }

  function seconds(doc) {
    return Date.parse(doc.timestamp) / 1000;
  }

  // --- formatting ----------------------------------------------------------------------------

  function fmtBytes(v) {
    if (v === null || !isFinite(v)) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return (i === 0 ? v.toFixed(0) : v.toFixed(1)) + " " + units[i];
  }

  function fmtDuration(v) {
    if (v === null || !isFinite(v)) return "–";
    if (v < 1) return (v * 1000).toFixed(v < 0.01 ? 2 : 1) + " ms";
    return v.toFixed(2) + " s";
  }

  function fmtRate(v) {
    return v === null || !isFinite(v) ? "–" : v.toFixed(2);
  }

  function fmtPercent(v) {
    return v === null || !isFinite(v) ? "–" : (v * 100).toFixed(1) + " %";
  }

  function fmtCount(v) {
    return v === null || !isFinite(v) ? "–" : String(Math.round(v));
  }

  // Shows ``text`` and keeps the raw number in data-value, so what is shown can be checked.
  function show(id, value, text) {
    const el = document.getElementById(id);
    el.textContent = text;
    el.dataset.value = value === null || !isFinite(value) ? "" : String(value);
  }

  // --- rendering -----------------------------------------------------------------------------

  function render(doc, prev) {
    const dt = prev ? seconds(doc) - seconds(prev) : 0;
    const rate = (now, before) => (dt > 0 && now !== null && before !== null ? Math.max(0, now - before) / dt : null);

    const requests = total(doc, names.requests);
    const errors = total(doc, names.errors);
    const prevRequests = prev ? total(prev, names.requests) : null;
    const prevErrors = prev ? total(prev, names.errors) : null;
    show("total-requests", requests, fmtCount(requests));
    show("request-rate", rate(requests, prevRequests), fmtRate(rate(requests, prevRequests)));
    show("errors-total", errors, fmtCount(errors));
    // Errors per request over the last interval; before a second document, since start.
    let share = null;
    if (prev && requests !== null && prevRequests !== null && requests > prevRequests) {
      share = Math.max(0, (errors || 0) - (prevErrors || 0)) / (requests - prevRequests);
    } else if (!prev && requests) {
      share = (errors || 0) / requests;
    } else if (prev) {
      share = 0;
    }
    show("error-rate", share, fmtPercent(share));

    const histogram = merged(doc, names.duration);
    const recent = prev ? minus(histogram, merged(prev, names.duration)) : null;
    const window = recent && recent.count > 0 ? recent : histogram;
    document.getElementById("latency-window").textContent =
      window === recent ? "last " + dt.toFixed(1) + " s" : "since start";
    for (const [id, q] of [["p50", 0.5], ["p95", 0.95], ["p99", 0.99]]) {
      const v = quantile(q, window);
      show(id, v, fmtDuration(v));
    }

    const rss = gauge(doc, names.rss, "sum");
    const memoryTotal = gauge(doc, names.memory_total);
    show("rss", rss, fmtBytes(rss));
    document.getElementById("rss-share").textContent =
      rss !== null && memoryTotal ? fmtPercent(rss / memoryTotal) + " of host memory" : "of host memory";
    const heap = gauge(doc, names.heap, "sum");
    show("heap", heap, fmtBytes(heap));
    const cpu = total(doc, names.cpu);
    const cpuRate = prev ? rate(cpu, total(prev, names.cpu)) : null;
    show("cpu", cpuRate, fmtPercent(cpuRate));
    show("cpu-seconds", cpu, cpu === null ? "–" : cpu.toFixed(2) + " s");
    const lag = gauge(doc, names.loop_lag, "max");
    show("loop-lag", lag, fmtDuration(lag));
    const load = gauge(doc, names.load);
    show("load", load, load === null ? "–" : load.toFixed(2));

    renderRoutes(doc, prev, dt);
    renderAlerts(doc);
  }

  function routesOf(doc) {
    const out = new Map();
    const m = metric(doc, names.requests);
    if (m) for (const s of m.series) out.set(s.labels[names.label_route], true);
    return [...out.keys()].sort();
  }

  function renderRoutes(doc, prev, dt) {
    const tbody = document.querySelector("#routes tbody");
    const rows = [];
    for (const route of routesOf(doc)) {
      const keep = (labels) => labels[names.label_route] === route;
      const requests = total(doc, names.requests, keep);
      const before = prev ? total(prev, names.requests, keep) : null;
      const rate = dt > 0 ? Math.max(0, requests - (before || 0)) / dt : null;
      const histogram = merged(doc, names.duration, keep);
      const recent = prev ? minus(histogram, merged(prev, names.duration, keep)) : null;
      const p95 = quantile(0.95, recent && recent.count > 0 ? recent : histogram);
      const errors = total(doc, names.errors, keep) || 0;
      const tr = document.createElement("tr");
      tr.dataset.route = route;
      for (const [cls, value, text] of [
        ["route", null, route],
        ["requests", requests, fmtCount(requests)],
        ["rate", rate, fmtRate(rate)],
        ["p95", p95, fmtDuration(p95)],
        ["errors", errors, fmtCount(errors)],
      ]) {
        const td = document.createElement(cls === "route" ? "th" : "td");
        if (cls === "route") td.scope = "row";
        td.className = cls === "route" ? cls : cls + " num";
        td.textContent = text;
        if (value !== null && isFinite(value)) td.dataset.value = String(value);
        if (cls === "errors" && errors > 0) td.classList.add("bad");
        tr.appendChild(td);
      }
      rows.push(tr);
    }
    if (rows.length === 0) {
      const tr = document.createElement("tr");
      const td = document.createElement("td");
      td.colSpan = 5;
      td.className = "none";
      td.textContent = "No requests yet.";
      tr.appendChild(td);
      rows.push(tr);
    }
    tbody.replaceChildren(...rows);
  }

  function renderAlerts(doc) {
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
  }

  function note(text) {
    const li = document.createElement("li");
    li.className = "none";
    li.textContent = text;
    return li;
  }

  // --- polling -------------------------------------------------------------------------------

  async function poll() {
    try {
      const response = await fetch(source, { cache: "no-store", credentials: "same-origin" });
      if (!response.ok) throw new Error("HTTP " + response.status + " from " + source);
      const doc = await response.json();
      state.prev = state.doc;
      state.doc = doc;
      render(doc, state.prev);
      state.updates += 1;
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

  poll();
})();
