"""The implementation, one folder per stage of the data flow (docs/architecture.md has the map).

- ``http``: ASGI request -> middleware -> HTTP recorder (the hot path).
- ``metrics``: the catalogue, naming, the metric stream every sink reads, custom metrics.
- ``sinks``: what reads the stream: Prometheus, JSON, console, file, OTLP, alerts, dashboard.
- ``config``: where a configuration comes from and the validated model it becomes.
- ``runtime``: process-level parts: system metrics, loop lag, fork, failures, multiprocess.
- ``integration``: the OpenTelemetry distro and configurator, auto-wrapping, the CLI.
- ``transport``: HTTP posts and atomic file writes, shared by sinks and runtime.

``monitoring`` is the composition root and the public handle. Nothing here is public API: the
package's ``__init__`` and its public modules re-export what is.
"""
