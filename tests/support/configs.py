"""Configuration inputs that several test files start from."""

from __future__ import annotations

from typing import Any

NO_THRESHOLDS: dict[str, Any] = {
    "response_time": None,
    "error_rate": None,
    "memory_usage": None,
    "cpu_usage": None,
}
"""The four built-in threshold alerts switched off, so a test sees only its own rules."""

SCRAPED: dict[str, Any] = {
    "service_name": "svc",
    "set_global": False,
    "system_metrics": False,
    "exporters": [{"type": "prometheus", "endpoint": "/metrics"}],
}
"""A monitoring scraped on ``/metrics`` and nothing else: the HTTP metrics alone."""

FLUXSTACK_SEED: dict[str, Any] = {
    "enabled": True,
    "httpMetrics": True,
    "systemMetrics": True,
    "exporters": [{"type": "prometheus", "endpoint": "/metrics", "enabled": True}],
    "alerts": [
        {
            "metric": "http_request_duration_ms",
            "operator": ">",
            "value": 2000,
            "severity": "warning",
        }
    ],
}
"""The FluxStack plugin's README example, verbatim: accepted as-is."""
