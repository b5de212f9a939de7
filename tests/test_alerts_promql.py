"""The Prometheus rules export: PromQL per aggregation, templates, YAML, promtool and the CLI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fluxstack_otel._internal.config.model import load_config
from fluxstack_otel._internal.integration.cli import main
from fluxstack_otel._internal.sinks.alerts.promql import duration, rule_expression, summary_template
from fluxstack_otel._internal.sinks.alerts.rules import Rule
from fluxstack_otel.alerts import compile_rules, rules_yaml
from servers import promtool_check_rules, promtool_path, requires_promtool
from support.configs import NO_THRESHOLDS


def one_rule(**alert: Any) -> Rule:
    base = {"operator": ">", "value": 1, "severity": "info", "window": 30}
    (rule,) = compile_rules(
        load_config({"alerts": [{**base, **alert}], "thresholds": NO_THRESHOLDS})
    )
    return rule


@pytest.mark.parametrize(
    ("alert", "expected"),
    [
        (
            {"metric": "http_requests_total", "labels": {"route": "/a"}},
            'rate(http_requests_total{route="/a"}[30s]) > 1',
        ),
        (
            {"metric": "http_requests_total", "aggregation": "value"},
            "http_requests_total > 1",
        ),
        ({"metric": "process_memory_rss_bytes"}, "process_memory_rss_bytes > 1"),
        (
            {"metric": "http_request_duration_seconds", "aggregation": "p99"},
            "histogram_quantile(0.99, rate(http_request_duration_seconds_bucket[30s])) > 1",
        ),
        (
            {"metric": "http_request_duration_ms", "value": 250},
            "(histogram_quantile(0.95, rate(http_request_duration_seconds_bucket[30s]))) * 1000"
            " > 250",
        ),
        (
            {"metric": "http_request_size_bytes", "aggregation": "mean"},
            "rate(http_request_size_bytes_sum[30s]) / rate(http_request_size_bytes_count[30s]) > 1",
        ),
        (
            {"metric": "http_response_size_bytes", "aggregation": "max_bucket", "window": 1.5},
            "histogram_quantile(1, rate(http_response_size_bytes_bucket[1500ms])) > 1",
        ),
    ],
)
def test_each_aggregation_has_its_promql(alert: dict[str, Any], expected: str) -> None:
    """Counters use rate(), histograms histogram_quantile over bucket rates, the alias * 1000."""
    assert rule_expression(one_rule(**alert)) == expected


def test_thresholds_become_one_result_per_target() -> None:
    """Built-in rules sum away the metric's own labels, keeping job and instance."""
    rules = {
        r.name: rule_expression(r)
        for r in compile_rules(load_config({"alert_evaluation_interval": 10}))
    }
    assert rules == {
        "HighResponseTime": "(histogram_quantile(0.95, sum without (method, route, status_code)"
        " (rate(http_request_duration_seconds_bucket[60s])))) * 1000 > 1000",
        "HighErrorRate": "(sum without (method, route, status_code, error_type)"
        " (rate(http_errors_total[60s])) or sum without (method, route)"
        " (rate(http_requests_total[60s])) * 0) / (sum without (method, route)"
        " (rate(http_requests_total[60s]))) > 0.05",
        "HighMemoryUsage": "(process_memory_rss_bytes) / (system_memory_total_bytes) > 0.8",
        "HighCpuUsage": "(rate(process_cpu_user_seconds_total[60s])) / (system_cpu_cores) > 0.8",
    }


def test_messages_become_go_templates() -> None:
    """{value} becomes $value (printf or humanizePercentage), labels $labels.x, constants text."""
    rule = one_rule(
        metric="http_requests_total",
        name="Busy",
        message="{name} {value:.2f} {value:.0%} {value} on {route} {labels[method]}"
        " > {threshold:g} {{literal}}",
    )
    assert summary_template(rule) == (
        'Busy {{ printf "%.2f" $value }} {{ $value | humanizePercentage }} {{ $value }}'
        ' on {{ $labels.route }} {{ $labels.method }} > 1 {{ "{" }}literal}'
    )


def test_literal_braces_cannot_open_a_go_action() -> None:
    """Literal braces are escaped, so text never reads as a Go template action."""
    rule = one_rule(metric="http_requests_total", message="a {{{{b}}}} c")
    assert summary_template(one_rule(metric="http_requests_total", message="{{{value}}}")) == (
        '{{ "{" }}{{ $value }}}'
    )
    assert summary_template(rule) == 'a {{ "{" }}{{ "{" }}b}} c'


@pytest.mark.parametrize(
    ("seconds", "text"), [(60, "60s"), (1.5, "1500ms"), (0.0001, "1ms"), (30.0, "30s")]
)
def test_durations(seconds: float, text: str) -> None:
    """Whole seconds print as seconds, anything finer as milliseconds, never as zero."""
    assert duration(seconds) == text


def tricky_config() -> dict[str, Any]:
    return {
        "service_name": 'shop: "main" # 1',
        "alert_evaluation_interval": 15,
        "alerts": [
            {
                "metric": "http_request_duration_ms",
                "operator": ">=",
                "value": 250.5,
                "severity": "critical",
                "name": "Slow: checkout # 2",
                "labels": {"route": '/a"b\\c', "method": "GET"},
                "for": 30,
                "keep_firing_for": 120,
                "message": "{route} p95 {value:.1f} ms — ünïcode\nnext line",
            },
            *[
                {
                    "metric": metric,
                    "operator": op,
                    "value": 0.5,
                    "severity": "info",
                    "aggregation": aggregation,
                }
                for metric, op, aggregation in [
                    ("http_errors_total", "!=", "rate"),
                    ("http_responses_total", "==", "value"),
                    ("http_request_size_bytes", "<", "mean"),
                    ("http_response_size_bytes", "<=", "max_bucket"),
                    ("http_request_duration_seconds", ">", "p50"),
                    ("nodejs_eventloop_lag_seconds", ">", "value"),
                ]
            ],
        ],
    }


@requires_promtool
def test_exported_rules_pass_promtool(tmp_path: Path) -> None:
    """Every aggregation, operator, threshold and awkward string passes promtool check rules."""
    path = tmp_path / "rules.yml"
    path.write_text(rules_yaml(load_config(tricky_config())))
    report = promtool_check_rules(path)
    assert "SUCCESS: 11 rules found" in report


def test_yaml_strings_are_json_quoted_scalars() -> None:
    """Names, expressions and annotations are written as JSON strings, which YAML reads back."""
    text = rules_yaml(load_config(tricky_config()))
    lines = text.splitlines()
    assert json.loads(lines[2].split("name: ", 1)[1]) == 'shop: "main" # 1'
    alert = next(line for line in lines if "alert:" in line)
    assert json.loads(alert.split("alert: ", 1)[1]) == "Slow: checkout # 2"
    expr = json.loads(next(line for line in lines if "expr:" in line).split("expr: ", 1)[1])
    assert 'route="/a\\"b\\\\c"' in expr
    assert "        for: 30s" in lines
    assert "        keep_firing_for: 120s" in lines


def test_cli_prints_the_rules(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``fluxstack-otel rules CONFIG`` prints the YAML and exits 0."""
    config = tmp_path / "monitoring.json"
    config.write_text(json.dumps(tricky_config()))
    assert main(["rules", str(config)]) == 0
    assert capsys.readouterr().out == rules_yaml(load_config(tricky_config()))


def test_cli_writes_to_a_file(tmp_path: Path) -> None:
    """``--output`` writes the rules file instead of printing it."""
    config = tmp_path / "monitoring.toml"
    config.write_text("alert_evaluation_interval = 10\n[thresholds]\ncpu_usage = false\n")
    out = tmp_path / "rules.yml"
    assert main(["rules", str(config), "-o", str(out)]) == 0
    assert "HighCpuUsage" not in out.read_text()
    assert "interval: 10s" in out.read_text()


def test_cli_reports_a_bad_config_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad configuration exits 1 with the ConfigError's path and message on stderr."""
    config = tmp_path / "monitoring.json"
    rule = {"metric": "nope", "operator": ">", "value": 1, "severity": "warning"}
    config.write_text(json.dumps({"alerts": [rule]}))
    assert main(["rules", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fluxstack-otel: configuration error: alerts[0].metric")
    assert "Traceback" not in err


def test_cli_without_a_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """Bare ``fluxstack-otel`` shows the commands and exits with the usage status."""
    assert main([]) == 2
    assert "rules" in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    """``python -m fluxstack_otel rules`` is the same command."""
    config = tmp_path / "monitoring.json"
    config.write_text("{}")
    done = subprocess.run(
        [sys.executable, "-m", "fluxstack_otel", "rules", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert '- alert: "HighCpuUsage"' in done.stdout


@pytest.mark.skipif(shutil.which("taskset") is None, reason="taskset (util-linux) not found")
def test_exported_rules_are_the_same_whatever_machine_generates_them(tmp_path: Path) -> None:
    """The rules file holds no CPU count: generated on one CPU or on all of them, it is identical."""
    config = tmp_path / "monitoring.json"
    config.write_text("{}")
    command = [sys.executable, "-m", "fluxstack_otel", "rules", str(config)]
    texts = [
        subprocess.run(prefix + command, capture_output=True, text=True, timeout=60, check=True)
        for prefix in ([], ["taskset", "-c", "0"])
    ]
    assert texts[0].stdout == texts[1].stdout
    cpu = next(line for line in texts[0].stdout.splitlines() if "process_cpu_user" in line)
    assert cpu.endswith('/ (system_cpu_cores) > 0.8"'), cpu
    assert str(os.cpu_count()) not in cpu.replace("[60s]", "").replace("0.8", "")


_UNIT_TESTS = """
rule_files: [rules.yml]
evaluation_interval: 15s
tests:
  - interval: 15s
    input_series:
      # 1.8 CPU-seconds per second on a 2-CPU host (90 %), and on a 4-CPU host (45 %).
      - series: 'process_cpu_user_seconds_total{job="app", instance="two"}'
        values: '0+27x20'
      - series: 'system_cpu_cores{job="app", instance="two"}'
        values: '2x20'
      - series: 'process_cpu_user_seconds_total{job="app", instance="four"}'
        values: '0+27x20'
      - series: 'system_cpu_cores{job="app", instance="four"}'
        values: '4x20'
      # Requests and no error series at all.
      - series: 'http_requests_total{job="app", instance="two", method="GET", route="/"}'
        values: '0+15x20'
    alert_rule_test:
      - eval_time: 4m
        alertname: HighCpuUsage
        exp_alerts:
          - exp_labels: {severity: warning, job: app, instance: two}
            exp_annotations:
              summary: "CPU usage is 90% of the available CPUs (threshold 80.0%)"
    promql_expr_test:
      - expr: '(sum without (method, route, status_code, error_type) (rate(http_errors_total[60s])) or sum without (method, route) (rate(http_requests_total[60s])) * 0) / (sum without (method, route) (rate(http_requests_total[60s])))'
        eval_time: 4m
        exp_samples:
          - labels: '{job="app", instance="two"}'
            value: 0
"""


@requires_promtool
def test_cpu_rule_divides_by_each_hosts_cpu_count_in_prometheus(tmp_path: Path) -> None:
    """Under promtool the exported HighCpuUsage fires on the 2-CPU host only (90 % vs 45 %), and
    the error ratio with no error series reads 0, not no data."""
    (tmp_path / "rules.yml").write_text(rules_yaml(load_config({"alert_evaluation_interval": 15})))
    tests = tmp_path / "tests.yml"
    tests.write_text(_UNIT_TESTS)
    done = subprocess.run(
        [str(promtool_path()), "test", "rules", str(tests)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout
