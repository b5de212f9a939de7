"""Sinks of the metric stream, one module per kind (Prometheus, JSON, console, file, OTLP)."""
