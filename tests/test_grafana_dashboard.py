"""examples/grafana-dashboard.json: importable, complete, and every query runs on real scraped data."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from fluxstack_otel import configure_monitoring
from fluxstack_otel._internal.config.model import MonitoringConfig
from fluxstack_otel._internal.metrics.catalog import BUILTIN_METRICS, Kind
from fluxstack_otel._internal.sinks.alerts.promql import rule_expression
from fluxstack_otel._internal.sinks.alerts.rules import compile_rules
from servers import PrometheusServer, requires_prometheus, serve_asgi

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "examples" / "grafana-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _load() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return document


def _panels(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in document["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _targets(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(p["title"], t) for p in _panels(document) for t in p.get("targets", [])]


def _demo_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo_app", ROOT / "examples" / "demo_app.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("demo_app", module)
    spec.loader.exec_module(module)
    return module


def test_datasource_is_a_variable_used_by_every_panel() -> None:
    """A ``datasource`` variable of Prometheus type; every panel and query goes through it."""
    document = _load()
    variables = {v["name"]: v for v in document["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DATASOURCE
    for panel in _panels(document):
        if panel["type"] != "row":
            assert panel["datasource"] == DATASOURCE, panel["title"]
            assert panel["targets"], panel["title"]
    for title, target in _targets(document):
        assert target["datasource"] == DATASOURCE, title
    ids = [p["id"] for p in _panels(document)]
    assert len(ids) == len(set(ids))
    assert document["uid"] == "fluxstack-otel"
    assert document["id"] is None  # importable anywhere


def test_every_builtin_metric_has_a_panel() -> None:
    """Each of the twelve catalogue metrics is read by at least one query."""
    exprs = " ".join(t["expr"] for _, t in _targets(_load()))
    for spec in BUILTIN_METRICS:
        name = f"{spec.name}_bucket" if spec.kind is Kind.HISTOGRAM else spec.name
        assert re.search(rf"\b{name}\b", exprs), spec.name


SELECTOR = 'job=~"$job", instance=~"$instance"'
# Every built-in series name a query may read, longest first so _bucket wins over the bare name.
_SERIES = sorted(
    {
        f"{spec.name}{suffix}"
        for spec in BUILTIN_METRICS
        for suffix in ("", "_bucket", "_sum", "_count")
    },
    key=len,
    reverse=True,
)
_SELECTED = re.compile(r"\b(" + "|".join(_SERIES) + r")\b(\{[^}]*\})?")


def test_every_query_honours_job_and_instance() -> None:
    """Each series every panel reads is selected by the $job and $instance variables."""
    for title, target in _targets(_load()):
        selections = _SELECTED.findall(target["expr"])
        assert selections, (title, target["expr"])
        for name, matcher in selections:
            assert matcher.startswith("{" + SELECTOR), (title, name, target["expr"])


def test_alert_panels_are_the_exported_rules() -> None:
    """Each built-in threshold rule has a panel whose query, without the $job/$instance
    selection, plus the threshold is the exported PromQL (the rules hold no CPU count)."""
    by_legend = {t["legendFormat"]: (title, t) for title, t in _targets(_load())}
    rules = compile_rules(MonitoringConfig())
    assert [rule.name for rule in rules] == [
        "HighResponseTime", "HighErrorRate", "HighMemoryUsage", "HighCpuUsage"
    ]  # fmt: skip
    for rule in rules:
        title, target = by_legend[rule.name]
        panel = next(p for p in _panels(_load()) if p["title"] == title)
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        threshold = steps[-1]["value"]
        expected = rule_expression(rule)
        query = target["expr"].replace("{" + SELECTOR + "}", "").replace(SELECTOR + ", ", "")
        assert expected.startswith(f"{query} {rule.operator} "), (expected, query)
        assert float(expected.rsplit(" ", 1)[1]) == threshold
        assert expected in panel["description"]
    cpu = rule_expression(next(r for r in rules if r.name == "HighCpuUsage"))
    assert cpu.endswith("/ (system_cpu_cores) > 0.8")


def _concrete(expr: str, job: str, instance: str) -> str:
    """The query as Grafana sends it, with the variables as a user would pick them."""
    return (
        expr.replace("$__rate_interval", "1m")
        .replace("$__interval", "15s")
        .replace("$job", job)
        .replace("$instance", instance)
        .replace("$route", ".*")  # the "All" value
    )


ERROR_PANELS = ("Error ratio", "Errors by route and type", "HighErrorRate")


@pytest.mark.slow
@requires_prometheus
@pytest.mark.parametrize("errors", [False, True], ids=["no-errors-yet", "errors-present"])
def test_every_query_returns_data_from_prometheus_scraping_the_demo(errors: bool) -> None:
    """Every panel query (and variable query) parses and returns data on the demo's metrics,
    before any error (the error panels then read 0, not "No data") and once errors are counted."""
    demo = _demo_module()
    monitoring = configure_monitoring(demo.DEMO_CONFIG)
    try:
        app = demo.build_app(monitoring, traffic=False)
        with serve_asgi(app) as base, httpx.Client(base_url=base, trust_env=False) as client:

            def exchanges() -> None:
                for path in ("/", "/items/1", "/slow"):
                    assert client.get(path).status_code == 200
                assert client.post("/echo", content=b"x" * 300).status_code == 200
                if errors:
                    assert client.get("/items/nope").status_code == 404
                    # uvicorn closes a connection whose app raised: this one gets its own.
                    assert (
                        httpx.get(f"{base}/error", trust_env=False, timeout=10).status_code == 500
                    )

            # Every kind of exchange before the first scrape, so every series exists from then on.
            exchanges()
            target = base.removeprefix("http://")
            with PrometheusServer([target], scrape_interval=0.5) as prometheus:
                # Rates need two samples in their window, and traffic between them.
                prometheus.wait_for(
                    "count_over_time(http_requests_total[1m])",
                    lambda r: bool(r) and min(float(s["value"][1]) for s in r) >= 3,
                    timeout=30,
                )
                exchanges()
                prometheus.wait_for(
                    "increase(http_requests_total[1m])",
                    lambda r: bool(r) and min(float(s["value"][1]) for s in r) > 0,
                    timeout=30,
                )
                document = _load()
                for variable in document["templating"]["list"]:
                    if variable["type"] == "query":
                        match = re.fullmatch(r"label_values\((.*), (\w+)\)", variable["definition"])
                        assert match, variable["definition"]
                        selector = _concrete(match.group(1), "app", target)
                        values = prometheus.api(
                            "label/" + match.group(2) + "/values", {"match[]": selector}
                        )
                        assert values, variable["name"]
                empty = []
                for title, query in _targets(document):
                    expr = _concrete(query["expr"], "app", target)
                    assert "$" not in expr, expr
                    result = prometheus.query(expr)
                    if not result:
                        empty.append(f"{title}: {expr}")
                    elif title in ERROR_PANELS:
                        values = [float(s["value"][1]) for s in result]
                        assert (max(values) > 0) is errors, (title, result)
                        if not errors:
                            assert values == [0.0] * len(values), (title, result)
                assert empty == []
    finally:
        monitoring.shutdown()
