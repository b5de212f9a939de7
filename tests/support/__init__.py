"""Helpers shared by the tests: one definition of each (pipelines, clocks, parsers, ASGI drivers).

- ``support.pipeline``: a metric stream fed by a real recorder and a real SDK ``MeterProvider``.
- ``support.clocks``: settable clocks for code that takes one.
- ``support.exposition``: the Prometheus exposition parsed back into comparable samples.
- ``support.asgi``: an in-process ASGI driver for middleware tests that need no socket, and the
  smallest app that answers every request.
- ``support.metricdata``: OpenTelemetry ``MetricsData`` built by hand, for renderer tests.

The real servers (uvicorn, Prometheus, Alertmanager, receivers) stay in ``servers.py`` and
``receivers.py``.
"""
