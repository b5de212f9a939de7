"""Several workers on one host: each worker's collection enters, the host's totals leave.

- ``host``: publish, sum and compact the workers' files (docs/deployment.md).
- ``families``: their metric families, OTel points <-> JSON, summed across workers.
"""
