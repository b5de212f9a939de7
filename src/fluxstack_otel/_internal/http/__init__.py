"""The request path: an ASGI exchange enters, one record per request leaves for the recorder.

- ``middleware``: times the exchange, counts body bytes, notes status and error; serves the
  monitoring endpoints.
- ``routes``: the route template of a request (never the raw path).
- ``recorder``: per-series accumulators, folded off the request path.
- ``projection``: the recorder's series as the six HTTP metrics, standard OTel points.
- ``tracing``: server spans and their exemplars (``tracing: true``).
"""
