"""Configuration sources and precedence: argument > environment > config file > default.

Table-driven: every case passes its environment as a mapping (``resolve(environ=...)``) and its
working directory, so nothing here reads or changes the process environment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from fluxstack_otel import ConfigError, MonitoringConfig, configure_monitoring
from fluxstack_otel._internal.config.model import (
    PARAMETERS,
    ConsoleExporterConfig,
    OtlpExporterConfig,
    PrometheusExporterConfig,
    Thresholds,
)
from fluxstack_otel._internal.config.sources import ENV_PREFIX, ENV_VARS, Resolution, resolve

TOML = """
service_name = "from-file"
collect_interval = 7
excluded_paths = ["/file"]
"""
PYPROJECT = """
[project]
name = "shop"

[tool.fluxstack.monitoring]
service_name = "from-pyproject"
retention_period = 60
"""
CAMEL_JSON = json.dumps({"serviceName": "camel", "collectInterval": 2500})


def run(
    tmp_path: Path,
    environ: Mapping[str, str] = {},
    explicit: Any = None,
    files: Mapping[str, str] = {},
) -> Resolution:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return resolve(explicit, environ=environ, cwd=tmp_path)


def named(table: list[Any]) -> list[Any]:
    """A table's rows as pytest params, each row's first field its id."""
    return [pytest.param(*row[1:], id=row[0]) for row in table]


# (case, files, environment, explicit argument, {key: (value, source)})
PRECEDENCE: list[tuple[str, dict[str, str], dict[str, str], Any, dict[str, tuple[Any, str]]]] = [
    ("defaults", {}, {}, None, {
        "service_name": ("fluxstack-app", "default"),
        "collect_interval": (5.0, "default"),
    }),
    ("file beats default", {"m.toml": TOML}, {"FLUXSTACK_CONFIG": "m.toml"}, None, {
        "service_name": ("from-file", "file:{tmp}/m.toml"),
        "collect_interval": (7.0, "file:{tmp}/m.toml"),
        "retention_period": (300.0, "default"),
    }),
    ("environment beats file", {"m.toml": TOML},
     {"FLUXSTACK_CONFIG": "m.toml", "FLUXSTACK_MONITORING_COLLECT_INTERVAL": "3"}, None, {
        "service_name": ("from-file", "file:{tmp}/m.toml"),
        "collect_interval": (3.0, "env:FLUXSTACK_MONITORING_COLLECT_INTERVAL"),
    }),
    ("argument beats environment, per key", {},
     {"OTEL_SERVICE_NAME": "env", "METRICS_INTERVAL": "1500"}, {"service_name": "arg"}, {
        "service_name": ("arg", "argument"),
        "collect_interval": (1.5, "env:METRICS_INTERVAL"),
    }),
    ("camelCase argument in milliseconds", {}, {"FLUXSTACK_MONITORING_RETENTION_PERIOD": "9"},
     {"collectInterval": 250, "httpMetrics": False}, {
        "collect_interval": (0.25, "argument"),
        "http_metrics": (False, "argument"),
        "retention_period": (9.0, "env:FLUXSTACK_MONITORING_RETENTION_PERIOD"),
    }),
    ("argument file path", {"arg.json": CAMEL_JSON}, {"OTEL_SERVICE_NAME": "env"}, "ARG", {
        "service_name": ("camel", "argument"),
        "collect_interval": (2.5, "argument"),
    }),
    ("pyproject.toml is found in the working directory", {"pyproject.toml": PYPROJECT}, {}, None, {
        "service_name": ("from-pyproject", "file:{tmp}/pyproject.toml"),
        "retention_period": (60.0, "file:{tmp}/pyproject.toml"),
    }),
    ("FLUXSTACK_CONFIG wins over pyproject.toml",
     {"pyproject.toml": PYPROJECT, "m.toml": TOML}, {"FLUXSTACK_CONFIG": "m.toml"}, None, {
        "service_name": ("from-file", "file:{tmp}/m.toml"),
        "retention_period": (300.0, "default"),
    }),
    ("a pyproject.toml without the table is not a config file",
     {"pyproject.toml": "[project]\nname = 'x'\n"}, {}, None, {
        "service_name": ("fluxstack-app", "default"),
    }),
    ("FLUXSTACK_MONITORING_* beats the FluxStack variable beats OTEL_*", {},
     {"FLUXSTACK_MONITORING_COLLECT_INTERVAL": "1", "METRICS_INTERVAL": "2000",
      "OTEL_METRIC_EXPORT_INTERVAL": "3000"}, None, {
        "collect_interval": (1.0, "env:FLUXSTACK_MONITORING_COLLECT_INTERVAL"),
    }),
    ("METRICS_INTERVAL beats OTEL_METRIC_EXPORT_INTERVAL", {},
     {"METRICS_INTERVAL": "2000", "OTEL_METRIC_EXPORT_INTERVAL": "3000"}, None, {
        "collect_interval": (2.0, "env:METRICS_INTERVAL"),
    }),
    ("OTEL_METRIC_EXPORT_INTERVAL alone, in milliseconds", {},
     {"OTEL_METRIC_EXPORT_INTERVAL": "60000"}, None, {
        "collect_interval": (60.0, "env:OTEL_METRIC_EXPORT_INTERVAL"),
    }),
    ("METRICS_RETENTION_PERIOD in milliseconds", {}, {"METRICS_RETENTION_PERIOD": "120000"}, None, {
        "retention_period": (120.0, "env:METRICS_RETENTION_PERIOD"),
    }),
    ("FluxStack switches", {},
     {"ENABLE_MONITORING": "true", "HTTP_METRICS": "0", "SYSTEM_METRICS": "FALSE",
      "CUSTOM_METRICS": "1"}, None, {
        "enabled": (True, "env:ENABLE_MONITORING"),
        "http_metrics": (False, "env:HTTP_METRICS"),
        "system_metrics": (False, "env:SYSTEM_METRICS"),
        "custom_metrics": (True, "env:CUSTOM_METRICS"),
    }),
    ("OTEL_SDK_DISABLED=true disables", {}, {"OTEL_SDK_DISABLED": "true"}, None, {
        "enabled": (False, "env:OTEL_SDK_DISABLED"),
    }),
    ("OTEL_SDK_DISABLED=false leaves enabled to the file", {"m.toml": "enabled = false\n"},
     {"FLUXSTACK_CONFIG": "m.toml", "OTEL_SDK_DISABLED": "false"}, None, {
        "enabled": (False, "file:{tmp}/m.toml"),
    }),
    ("ENABLE_MONITORING beats OTEL_SDK_DISABLED", {},
     {"ENABLE_MONITORING": "1", "OTEL_SDK_DISABLED": "true"}, None, {
        "enabled": (True, "env:ENABLE_MONITORING"),
    }),
    ("OTEL_SERVICE_NAME beats OTEL_RESOURCE_ATTRIBUTES", {},
     {"OTEL_SERVICE_NAME": "a", "OTEL_RESOURCE_ATTRIBUTES": "service.name=b"}, None, {
        "service_name": ("a", "env:OTEL_SERVICE_NAME"),
    }),
    ("service.name from OTEL_RESOURCE_ATTRIBUTES, percent-decoded", {},
     {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod, service.name=my%20shop"}, None, {
        "service_name": ("my shop", "env:OTEL_RESOURCE_ATTRIBUTES"),
    }),
    ("OTEL_RESOURCE_ATTRIBUTES without service.name sets nothing", {},
     {"OTEL_RESOURCE_ATTRIBUTES": "team=core"}, None, {
        "service_name": ("fluxstack-app", "default"),
    }),
    ("an empty variable is unset", {}, {"OTEL_SERVICE_NAME": "", "METRICS_INTERVAL": ""}, None, {
        "service_name": ("fluxstack-app", "default"),
        "collect_interval": (5.0, "default"),
    }),
    ("lists: comma-separated or JSON", {},
     {"FLUXSTACK_MONITORING_EXCLUDED_PATHS": "/health, /ready*,",
      "FLUXSTACK_MONITORING_DURATION_BUCKETS": "[0.1, 1]",
      "FLUXSTACK_MONITORING_SIZE_BUCKETS": "100,1000"}, None, {
        "excluded_paths": (("/health", "/ready*"), "env:FLUXSTACK_MONITORING_EXCLUDED_PATHS"),
        "duration_buckets": ((0.1, 1.0), "env:FLUXSTACK_MONITORING_DURATION_BUCKETS"),
        "size_buckets": ((100.0, 1000.0), "env:FLUXSTACK_MONITORING_SIZE_BUCKETS"),
    }),
    ("integers", {}, {"FLUXSTACK_MONITORING_MAX_SERIES_PER_METRIC": " 50 "}, None, {
        "max_series_per_metric": (50, "env:FLUXSTACK_MONITORING_MAX_SERIES_PER_METRIC"),
    }),
    ("nested keys as JSON", {},
     {"FLUXSTACK_MONITORING_THRESHOLDS": '{"error_rate": 0.1}'}, None, {
        "thresholds": (Thresholds(error_rate=0.1), "env:FLUXSTACK_MONITORING_THRESHOLDS"),
    }),
]  # fmt: skip


@pytest.mark.parametrize(("files", "environ", "explicit", "expected"), named(PRECEDENCE))
def test_precedence(
    tmp_path: Path,
    files: dict[str, str],
    environ: dict[str, str],
    explicit: Any,
    expected: dict[str, tuple[Any, str]],
) -> None:
    """Each key comes from the highest source that sets it, and says which one."""
    if explicit == "ARG":
        explicit = str(tmp_path / "arg.json")
    result = run(tmp_path, environ, explicit, files)
    for key, (value, source) in expected.items():
        assert getattr(result.config, key) == value, key
        assert result.sources[key] == source.format(tmp=tmp_path), key


# (case, environment, explicit argument, expected exporters, expected source)
EXPORTERS: list[tuple[str, dict[str, str], Any, tuple[Any, ...], str]] = [
    ("OTEL_METRICS_EXPORTER maps each name", {"OTEL_METRICS_EXPORTER": "otlp, Prometheus,console"},
     None, (OtlpExporterConfig(), PrometheusExporterConfig(),
            ConsoleExporterConfig(stream="stdout", format="json")),
     "env:OTEL_METRICS_EXPORTER"),
    ("none means no exporter", {"OTEL_METRICS_EXPORTER": "none"}, None, (),
     "env:OTEL_METRICS_EXPORTER"),
    ("a repeated name counts once", {"OTEL_METRICS_EXPORTER": "otlp,otlp"}, None,
     (OtlpExporterConfig(),), "env:OTEL_METRICS_EXPORTER"),
    ("FLUXSTACK_MONITORING_EXPORTERS beats OTEL_METRICS_EXPORTER",
     {"FLUXSTACK_MONITORING_EXPORTERS": '[{"type": "console", "format": "json"}]',
      "OTEL_METRICS_EXPORTER": "otlp"}, None,
     (ConsoleExporterConfig(format="json"),), "env:FLUXSTACK_MONITORING_EXPORTERS"),
    ("the Prometheus port moves the default exporter to a server of its own",
     {"OTEL_EXPORTER_PROMETHEUS_PORT": "9300"}, None,
     (PrometheusExporterConfig(port=9300),), "default + env:OTEL_EXPORTER_PROMETHEUS_PORT"),
    ("a host alone takes OpenTelemetry's default port",
     {"OTEL_EXPORTER_PROMETHEUS_HOST": "0.0.0.0"}, None,
     (PrometheusExporterConfig(host="0.0.0.0", port=9464),),
     "default + env:OTEL_EXPORTER_PROMETHEUS_HOST"),
    ("host and port apply to the exporter OTEL_METRICS_EXPORTER chose",
     {"OTEL_METRICS_EXPORTER": "otlp,prometheus", "OTEL_EXPORTER_PROMETHEUS_HOST": "::",
      "OTEL_EXPORTER_PROMETHEUS_PORT": "0"}, None,
     (OtlpExporterConfig(), PrometheusExporterConfig(host="::", port=0)),
     "env:OTEL_METRICS_EXPORTER + env:OTEL_EXPORTER_PROMETHEUS_HOST"
     " + env:OTEL_EXPORTER_PROMETHEUS_PORT"),
    ("without a Prometheus exporter the port has nothing to move",
     {"OTEL_METRICS_EXPORTER": "otlp", "OTEL_EXPORTER_PROMETHEUS_PORT": "9300"}, None,
     (OtlpExporterConfig(),), "env:OTEL_METRICS_EXPORTER"),
    ("METRICS_EXPORT_CONSOLE adds a console exporter", {"METRICS_EXPORT_CONSOLE": "true"}, None,
     (PrometheusExporterConfig(), ConsoleExporterConfig()), "default + env:METRICS_EXPORT_CONSOLE"),
    ("METRICS_EXPORT_CONSOLE keeps one console exporter",
     {"METRICS_EXPORT_CONSOLE": "1", "OTEL_METRICS_EXPORTER": "console"}, None,
     (ConsoleExporterConfig(stream="stdout", format="json"),),
     "env:OTEL_METRICS_EXPORTER + env:METRICS_EXPORT_CONSOLE"),
    ("METRICS_EXPORT_CONSOLE=false changes nothing", {"METRICS_EXPORT_CONSOLE": "false"}, None,
     (PrometheusExporterConfig(),), "default"),
    ("the argument's exporters are not adjusted",
     {"OTEL_EXPORTER_PROMETHEUS_PORT": "9300", "METRICS_EXPORT_CONSOLE": "true",
      "OTEL_METRICS_EXPORTER": "otlp"}, {"exporters": [{"type": "prometheus"}]},
     (PrometheusExporterConfig(),), "argument"),
]  # fmt: skip


@pytest.mark.parametrize(("environ", "explicit", "exporters", "source"), named(EXPORTERS))
def test_exporter_variables(
    tmp_path: Path, environ: dict[str, str], explicit: Any, exporters: tuple[Any, ...], source: str
) -> None:
    """The standard exporter variables build or adjust the exporters list."""
    result = run(tmp_path, environ, explicit)
    assert result.config.exporters == exporters
    assert result.sources["exporters"] == source


# (variable, value, the ConfigError message)
ERRORS: list[tuple[str, str, str]] = [
    ("FLUXSTACK_MONITORING_COLLECT_INTERVAL", "fast",
     "FLUXSTACK_MONITORING_COLLECT_INTERVAL: expected a finite number of seconds > 0 or a duration such as '30s' or '500ms', got 'fast'"),
    ("FLUXSTACK_MONITORING_COLLECT_INTERVAL", "-1",
     "FLUXSTACK_MONITORING_COLLECT_INTERVAL: expected a finite number of seconds > 0 or a duration such as '30s' or '500ms', got -1"),
    ("FLUXSTACK_MONITORING_COLLECT_INTERVAL", "nan",
     "FLUXSTACK_MONITORING_COLLECT_INTERVAL: expected a finite number of seconds > 0 or a duration such as '30s' or '500ms', got nan"),
    ("METRICS_INTERVAL", "0",
     "METRICS_INTERVAL: expected a finite number of milliseconds > 0 or a duration such as '30s' or '500ms', got 0"),
    ("ENABLE_MONITORING", "yes", "ENABLE_MONITORING: expected true, false, 1 or 0, got 'yes'"),
    ("OTEL_SDK_DISABLED", "on", "OTEL_SDK_DISABLED: expected true, false, 1 or 0, got 'on'"),
    ("FLUXSTACK_MONITORING_MAX_SERIES_PER_METRIC", "2.5",
     "FLUXSTACK_MONITORING_MAX_SERIES_PER_METRIC: expected an integer >= 1, got 2.5"),
    ("FLUXSTACK_MONITORING_EXCLUDED_PATHS", "health",
     "FLUXSTACK_MONITORING_EXCLUDED_PATHS[0]: expected a path starting with '/' ('*' only at its"
     " end, '{...}' for a route template) or 're:' and a regular expression, got 'health'"),
    ("FLUXSTACK_MONITORING_DURATION_BUCKETS", "1,0.5",
     "FLUXSTACK_MONITORING_DURATION_BUCKETS[1]: expected a finite number > 1 (buckets strictly"
     " increase), got 0.5"),
    ("FLUXSTACK_MONITORING_THRESHOLDS", "{error_rate: 1}",
     "FLUXSTACK_MONITORING_THRESHOLDS: expected JSON, not valid JSON (Expecting property name"),
    ("FLUXSTACK_MONITORING_EXPORTERS", '[{"type": "otlpp"}]',
     "FLUXSTACK_MONITORING_EXPORTERS[0].type: expected one of 'prometheus', 'console', 'json',"
     " 'file', 'otlp', 'otel', got 'otlpp'; did you mean 'otlp'?"),
    ("FLUXSTACK_MONITORING_EXPORTERS", '[{"type": "file", "filePath": "x"}]',
     "FLUXSTACK_MONITORING_EXPORTERS[0].filePath: unknown key 'filePath'; did you mean"),
    ("OTEL_METRICS_EXPORTER", "otlp,zipkin",
     "OTEL_METRICS_EXPORTER: unknown exporter 'zipkin'; allowed: otlp, prometheus, console, none"),
    ("OTEL_METRICS_EXPORTER", "none,otlp",
     "OTEL_METRICS_EXPORTER: 'none' cannot be combined with others, got 'none,otlp'"),
    ("OTEL_EXPORTER_PROMETHEUS_PORT", "70000",
     "OTEL_EXPORTER_PROMETHEUS_PORT: expected an integer from 0 to 65535, got 70000"),
    ("METRICS_EXPORT_CONSOLE", "sometimes",
     "METRICS_EXPORT_CONSOLE: expected true, false, 1 or 0, got 'sometimes'"),
    ("FLUXSTACK_MONITORING_COLLECT_INTERVALL", "5",
     "FLUXSTACK_MONITORING_COLLECT_INTERVALL: unknown variable; did you mean"
     " 'FLUXSTACK_MONITORING_COLLECT_INTERVAL'?"),
    ("FLUXSTACK_MONITORING_PROFILE", "5",
     "FLUXSTACK_MONITORING_PROFILE: unknown variable; docs/configuration.md lists"),
    ("FLUXSTACK_CONFIG", "missing.toml", "config file '{tmp}/missing.toml': cannot read it"),
    ("FLUXSTACK_CONFIG", "settings.yaml", "config file '{tmp}/settings.yaml': expected a .toml or"),
]  # fmt: skip


@pytest.mark.parametrize(("variable", "value", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_a_bad_variable_is_an_error_naming_it(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    """A bad value raises ConfigError naming the variable, the value and what is allowed."""
    with pytest.raises(ConfigError) as caught:
        run(tmp_path, {variable: value})
    assert str(caught.value).startswith(message.replace("{tmp}", str(tmp_path)))


def test_malformed_json_in_a_variable_is_not_echoed(tmp_path: Path) -> None:
    """A JSON-valued variable may hold secrets: its error gives the fault's position, not the text."""
    with pytest.raises(ConfigError) as caught:
        run(tmp_path, {"FLUXSTACK_MONITORING_AUTH": '{"bearer_token": "s3cret-value",}'})
    assert "s3cret" not in str(caught.value)
    assert "FLUXSTACK_MONITORING_AUTH" in str(caught.value)


def test_a_shadowed_variable_is_still_checked(tmp_path: Path) -> None:
    """Every variable that is set is validated, even when a stronger one sets its key."""
    environ = {"FLUXSTACK_MONITORING_ENABLED": "true", "ENABLE_MONITORING": "maybe"}
    with pytest.raises(ConfigError, match=r"^ENABLE_MONITORING: expected"):
        run(tmp_path, environ)


def test_a_bad_file_value_names_the_file(tmp_path: Path) -> None:
    """Errors from the config file keep the file's name in the message."""
    with pytest.raises(ConfigError, match=r"collect_interval: .* \(in .*m\.toml\)"):
        run(tmp_path, {"FLUXSTACK_CONFIG": "m.toml"}, files={"m.toml": "collect_interval = 0\n"})


def test_a_prometheus_port_clash_names_the_variable(tmp_path: Path) -> None:
    """Moving the first Prometheus exporter onto another's address is refused."""
    file = '[[exporters]]\ntype = "prometheus"\n[[exporters]]\ntype = "prometheus"\nport = 9300\n'
    with pytest.raises(ConfigError, match=r"^OTEL_EXPORTER_PROMETHEUS_PORT: moves exporters"):
        run(
            tmp_path,
            {"FLUXSTACK_CONFIG": "m.toml", "OTEL_EXPORTER_PROMETHEUS_PORT": "9300"},
            files={"m.toml": file},
        )


def test_a_monitoring_config_argument_is_complete(tmp_path: Path) -> None:
    """With a MonitoringConfig nothing else is read: every key comes from the argument."""
    config = MonitoringConfig(service_name="code")
    result = run(tmp_path, {"OTEL_SERVICE_NAME": "env", "ENABLE_MONITORING": "banana"}, config)
    assert result.config is config
    assert set(result.sources.values()) == {"argument"}


def test_every_parameter_has_its_own_variable() -> None:
    """Each top-level key is settable as FLUXSTACK_MONITORING_<KEY>, listed first for the key."""
    first: dict[str, str] = {}
    for var in ENV_VARS:
        first.setdefault(var.key, var.name)
    assert first == {p.name: f"{ENV_PREFIX}{p.name.upper()}" for p in PARAMETERS}
    assert all(p.env_var == first[p.name] for p in PARAMETERS)


@pytest.mark.parametrize("param", [p for p in PARAMETERS if isinstance(p.default, bool | int | float | str)], ids=lambda p: p.name)  # fmt: skip
def test_scalar_defaults_read_back_from_the_environment(tmp_path: Path, param: Any) -> None:
    """A scalar key's default, written as text to its variable, resolves to the default."""
    text = json.dumps(param.default) if isinstance(param.default, bool) else str(param.default)
    result = run(tmp_path, {param.env_var: text})
    assert getattr(result.config, param.name) == param.default
    assert result.sources[param.name] == f"env:{param.env_var}"


def test_configure_monitoring_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """configure_monitoring() resolves through the same sources (here: the real environment)."""
    monkeypatch.setenv("FLUXSTACK_MONITORING_SERVICE_NAME", "from-env")
    monkeypatch.setenv("SYSTEM_METRICS", "false")
    monitoring = configure_monitoring({"set_global": False, "exporters": []})
    try:
        assert monitoring.config.service_name == "from-env"
        assert monitoring.config.system_metrics is False
        assert monitoring.config.exporters == ()
    finally:
        monitoring.shutdown()


# (variable, text, key, seconds): every duration variable takes a unit string or its own unit.
ENV_DURATIONS: list[tuple[str, str, str, float]] = [
    ("FLUXSTACK_MONITORING_COLLECT_INTERVAL", "30", "collect_interval", 30.0),
    ("FLUXSTACK_MONITORING_COLLECT_INTERVAL", "500ms", "collect_interval", 0.5),
    ("FLUXSTACK_MONITORING_RETENTION_PERIOD", " 2h ", "retention_period", 7200.0),
    ("FLUXSTACK_MONITORING_ALERT_EVALUATION_INTERVAL", "1m", "alert_evaluation_interval", 60.0),
    ("METRICS_INTERVAL", "2500", "collect_interval", 2.5),
    ("METRICS_INTERVAL", "5s", "collect_interval", 5.0),
    ("METRICS_RETENTION_PERIOD", "1h30m", "retention_period", 5400.0),
    ("OTEL_METRIC_EXPORT_INTERVAL", "60000", "collect_interval", 60.0),
    ("OTEL_METRIC_EXPORT_INTERVAL", "1m", "collect_interval", 60.0),
]


@pytest.mark.parametrize(("variable", "text", "key", "seconds"), ENV_DURATIONS)
def test_duration_variables_take_unit_strings_or_their_unit(
    tmp_path: Path, variable: str, text: str, key: str, seconds: float
) -> None:
    """A duration variable reads a bare number in its unit, or any unit string."""
    result = run(tmp_path, {variable: text})
    assert getattr(result.config, key) == seconds
    assert result.sources[key] == f"env:{variable}"


# (variable, text, fragments): implausible bare numbers are refused with the fix.
ENV_REFUSED: list[tuple[str, str, tuple[str, ...]]] = [
    ("METRICS_INTERVAL", "5", ("implausibly short", "'5s'")),
    ("OTEL_METRIC_EXPORT_INTERVAL", "0.5", ("implausibly short",)),
    ("FLUXSTACK_MONITORING_RETENTION_PERIOD", "300000", ("more than a day", "'300000ms'")),
    ("FLUXSTACK_MONITORING_COLLECT_INTERVAL", "400d", ("at most 365 days",)),
    ("FLUXSTACK_MONITORING_COLLECT_INTERVAL", "9" * 5000, ("expected a finite number",)),
    ("OTEL_EXPORTER_PROMETHEUS_HOST", "no such host!", ("an IP address or a host name",)),
    ("FLUXSTACK_MONITORING_EXPORTERS", "[" * 100_000 + "]" * 100_000, ("nested too deeply",)),
]


@pytest.mark.parametrize(
    ("variable", "text", "fragments"), ENV_REFUSED, ids=[e[0] for e in ENV_REFUSED]
)
def test_implausible_or_junk_variables_are_refused_naming_them(
    tmp_path: Path, variable: str, text: str, fragments: tuple[str, ...]
) -> None:
    """A junk or implausible value raises ConfigError naming the variable and the fix."""
    with pytest.raises(ConfigError) as caught:
        run(tmp_path, {variable: text})
    assert caught.value.path == variable
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_a_wrapped_config_argument_sets_its_keys(tmp_path: Path) -> None:
    """A FluxStack-wrapped argument or file counts its keys as set by that source."""
    wrapped = {"plugins": {"config": {"monitoring": {"serviceName": "wrapped"}}}}
    result = run(tmp_path, {"OTEL_SERVICE_NAME": "env"}, wrapped)
    assert (result.config.service_name, result.sources["service_name"]) == ("wrapped", "argument")
    files = {"f.json": json.dumps({"monitoring": {"collectInterval": 2500}})}
    result = run(tmp_path, {"FLUXSTACK_CONFIG": "f.json"}, files=files)
    assert result.config.collect_interval == 2.5
    assert result.sources["collect_interval"] == f"file:{tmp_path}/f.json"
