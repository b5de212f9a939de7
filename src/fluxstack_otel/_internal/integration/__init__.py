"""Integration with the OpenTelemetry tooling: ``opentelemetry-instrument`` and the CLI.

- ``distro``: the distro and configurator entry points; ``fluxstack-otel run``.
- ``instrumentor``: the instrumentor entry point, for when another configurator was chosen.
- ``sdk_setup``: traces and logs from the standard variables, with the SDK configurator's helpers.
- ``autowrap``: the hooks that wrap Starlette/FastAPI and uvicorn apps.
- ``cli``: ``fluxstack-otel rules``, ``check-config``, ``run``.
"""
