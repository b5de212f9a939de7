"""The process around the app: system readings enter as observables, failures leave as logs.

- ``system``: psutil-backed observable instruments; ``looplag``: the asyncio lag probe.
- ``fork``: after-fork hooks; ``failures``: rate-limited, counted run-time failures.
- ``multiprocess/``: several workers on one host, summed.
"""
