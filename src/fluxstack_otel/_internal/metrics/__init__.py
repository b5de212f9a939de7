"""Metric data: recorder series and SDK instruments enter, one named collection leaves per tick.

- ``catalog``: the built-in metrics; the one place a built-in name is spelled.
- ``naming``: the naming profiles, applied on the way out, and Prometheus names.
- ``stream``: the merged collection every sink reads, and per-sink deltas.
- ``assemble``: ``MetricsData`` put together from a resource and scopes, once.
- ``quantile``: quantiles from histogram buckets.
- ``custom``: the custom-metric helpers of ``Monitoring``.
- ``global_provider``: the process-wide MeterProvider (``set_global``).
- ``exemplars``: ``OTEL_METRICS_EXEMPLAR_FILTER``, for the SDK and the HTTP exemplars.
"""
