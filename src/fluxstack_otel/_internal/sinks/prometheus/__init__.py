"""The Prometheus exporter: a collection enters, the exposition text leaves (``/metrics``, a port).

- ``exposition``: the text 0.0.4 and OpenMetrics renderer.
- ``sink``: the endpoint and the sink; ``server``: the exposition on a port of its own.
"""
