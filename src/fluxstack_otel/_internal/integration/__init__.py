"""Integration with the OpenTelemetry tooling: ``opentelemetry-instrument`` and the CLI.

- ``distro``: the distro and configurator entry points; ``fluxstack-otel run``.
- ``autowrap``: the hooks that wrap Starlette/FastAPI and uvicorn apps.
- ``cli``: ``fluxstack-otel rules``, ``check-config``, ``run``.
"""
