// fluxstack-otel dashboard: quantiles from histogram buckets, no dependencies.
// Two schemes: classic buckets (explicit bounds), interpolated as PromQL's histogram_quantile,
// and base-2 exponential buckets, read as metrics/exponential.py's quantile() reads them. The
// page uses the exponential ones where the histograms keep them (histograms: exponential).
"use strict";

(function () {
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

  // Base-2 exponential buckets {scale, zero, offset, counts} merged at the lowest scale among
  // them: bucket i at scale s is bucket floor(i / 2 ** (s - scale)) there (exponential.py's
  // downscaled). Counts are exact; a merged histogram is never capped here.
  function mergeExponential(parts) {
    if (!parts.length) return null;
    const scale = Math.min(...parts.map((p) => p.scale));
    const buckets = new Map();
    let zero = 0;
    for (const p of parts) {
      zero += p.zero;
      const factor = 2 ** (p.scale - scale);
      p.counts.forEach((n, i) => {
        if (!n) return;
        const at = Math.floor((p.offset + i) / factor);
        buckets.set(at, (buckets.get(at) || 0) + n);
      });
    }
    const at = [...buckets.keys()].sort((a, b) => a - b);
    const offset = at.length ? at[0] : 0;
    const counts = at.length ? new Array(at[at.length - 1] - offset + 1).fill(0) : [];
    for (const i of at) counts[i - offset] = buckets.get(i);
    return { scale, zero, offset, counts };
  }

  // exponential.py's quantile(): the rank's bucket (base ** i, base ** (i + 1)], interpolated
  // exponentially inside it, so a value read back is off by at most the bucket's width.
  function exponentialQuantile(q, e) {
    const count = e ? e.zero + e.counts.reduce((a, b) => a + b, 0) : 0;
    if (count <= 0) return NaN;
    const rank = q * count;
    if (rank <= e.zero) return 0;
    const base = 2 ** (2 ** -e.scale);
    let seen = e.zero;
    for (let i = 0; i < e.counts.length; i += 1) {
      const n = e.counts[i];
      if (n && seen + n >= rank) return base ** (e.offset + i) * base ** ((rank - seen) / n);
      seen += n;
    }
    return base ** (e.offset + e.counts.length);
  }

  // A quantile from exponential buckets where there are some, from the classic ones otherwise.
  function finest(q, exponential, classic) {
    return exponential ? exponentialQuantile(q, exponential) : quantile(q, classic);
  }

  window.fluxstackQuantile = { quantile, exponentialQuantile, mergeExponential, finest };
})();
