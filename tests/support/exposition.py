"""The Prometheus exposition read back with prometheus_client's parsers, as comparable samples."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_om
from prometheus_client.parser import text_string_to_metric_families as parse_text

Labels = frozenset[tuple[str, str]]
Samples = dict[tuple[str, Labels], float]


def samples(text: str, *, openmetrics: bool = False) -> Samples:
    """Every sample of an exposition: ``(sample name, labels) -> value``."""
    parse = parse_om if openmetrics else parse_text
    return {(s.name, frozenset(s.labels.items())): s.value for f in parse(text) for s in f.samples}


def series(text: str, name: str, *, openmetrics: bool = False) -> dict[Labels, float]:
    """The samples named ``name`` in an exposition: ``labels -> value``."""
    return {labels: value for (sample, labels), value in samples(text, openmetrics=openmetrics).items()
            if sample == name}  # fmt: skip
