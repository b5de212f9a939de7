"""The configuration model and its parser: defaults, FluxStack compatibility, files and errors."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fluxstack_otel._internal.config.alerts import AGGREGATIONS
from fluxstack_otel._internal.config.checks import CHECK, key_of
from fluxstack_otel._internal.config.model import (
    PARAMETERS,
    AlertmanagerNotifierConfig,
    AlertRule,
    AuthConfig,
    BasicAuthConfig,
    ConsoleExporterConfig,
    DashboardConfig,
    EndpointServerConfig,
    FileExporterConfig,
    JsonExporterConfig,
    MonitoringConfig,
    MultiprocessConfig,
    OtlpExporterConfig,
    PrometheusExporterConfig,
    Thresholds,
    WebhookNotifierConfig,
    load_config,
)
from fluxstack_otel._internal.metrics import catalog as cat
from fluxstack_otel.errors import ConfigError
from support.configs import FLUXSTACK_SEED

# The FluxStack plugin's defaultConfig, verbatim.
FLUXSTACK_DEFAULT: dict[str, Any] = {
    "enabled": True,
    "httpMetrics": True,
    "systemMetrics": True,
    "customMetrics": True,
    "collectInterval": 5000,
    "retentionPeriod": 300000,
    "exporters": [
        {"type": "console", "interval": 30000, "enabled": False},
        {"type": "prometheus", "endpoint": "/metrics", "enabled": True, "format": "text"},
    ],
    "thresholds": {"responseTime": 1000, "errorRate": 0.05, "memoryUsage": 0.8, "cpuUsage": 0.8},
    "alerts": [],
}

CONFIG_CLASSES = (
    MonitoringConfig,
    Thresholds,
    AlertRule,
    PrometheusExporterConfig,
    ConsoleExporterConfig,
    JsonExporterConfig,
    FileExporterConfig,
    OtlpExporterConfig,
)


def alert(**extra: Any) -> dict[str, Any]:
    return {
        "metric": "http_requests_total",
        "operator": ">",
        "value": 1,
        "severity": "info",
        **extra,
    }


# --- defaults and accepted forms ------------------------------------------------------------


def test_defaults_come_from_none_and_empty_mapping() -> None:
    """None and {} both give the defaults: one Prometheus exporter at /metrics, seconds."""
    for source in (None, {}):
        config = load_config(source)
        assert config == MonitoringConfig()
    config = MonitoringConfig()
    assert config.exporters == (PrometheusExporterConfig(),)
    assert config.exporters[0].endpoint == "/metrics"
    assert (config.collect_interval, config.retention_period) == (5.0, 300.0)
    assert config.alert_evaluation_interval == 30.0
    assert config.duration_buckets == cat.DEFAULT_DURATION_BUCKETS
    assert config.size_buckets == cat.DEFAULT_SIZE_BUCKETS
    assert config.thresholds == Thresholds(response_time=1.0, error_rate=0.05)


def test_a_monitoring_config_is_returned_as_is() -> None:
    """A ready MonitoringConfig is not copied or re-validated."""
    config = MonitoringConfig(service_name="shop")
    assert load_config(config) is config


def test_configs_are_frozen_and_hashable() -> None:
    """Every parsed config is immutable and hashable, headers and labels included."""
    source = {
        "exporters": [{"type": "otlp", "headers": {"authorization": "x"}}],
        "alerts": [alert(labels={"method": "GET"})],
    }
    config = load_config(source)
    assert hash(config) == hash(load_config(source))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.enabled = False  # type: ignore[misc]


def test_snake_case_mapping_is_read_in_seconds() -> None:
    """snake_case keys keep their values as seconds, lists become tuples."""
    config = load_config(
        {
            "service_name": "shop",
            "collect_interval": 2.5,
            "retention_period": 60,
            "excluded_paths": ["/health", "/static/*"],
            "duration_buckets": [0.1, 1, 10],
            "alert_evaluation_interval": 10,
            "exporters": [{"type": "console", "interval": 15}],
        }
    )
    assert config.collect_interval == 2.5
    assert config.retention_period == 60.0
    assert config.excluded_paths == ("/health", "/static/*")
    assert config.duration_buckets == (0.1, 1.0, 10.0)
    assert config.alert_evaluation_interval == 10.0
    assert config.exporters == (ConsoleExporterConfig(interval=15.0),)


def test_every_exporter_type_parses_with_its_options() -> None:
    """Each exporter type reads its own keys into its own class."""
    config = load_config(
        {
            "exporters": [
                {"type": "prometheus", "endpoint": "/m", "host": "0.0.0.0", "port": 9464},
                {"type": "console", "format": "json", "stream": "stdout"},
                {"type": "json", "endpoint": "/metrics.json", "timeout": 2},
                {"type": "file", "file_path": "out.json", "format": "json", "history": True},
                {
                    "type": "otlp",
                    "endpoint": "collector:4317",
                    "protocol": "grpc",
                    "compression": "gzip",
                    "temporality": "delta",
                },
            ]
        }
    )
    prom, console, js, file, otlp = config.exporters
    assert prom == PrometheusExporterConfig(endpoint="/m", host="0.0.0.0", port=9464)
    assert console == ConsoleExporterConfig(format="json", stream="stdout")
    assert js == JsonExporterConfig(endpoint="/metrics.json", timeout=2.0)
    assert file == FileExporterConfig(file_path="out.json", format="json", history=True)
    assert otlp == OtlpExporterConfig(
        endpoint="collector:4317", protocol="grpc", compression="gzip", temporality="delta"
    )
    assert [e.type for e in config.exporters] == ["prometheus", "console", "json", "file", "otlp"]


def test_disabled_exporters_are_validated_and_kept() -> None:
    """An entry with enabled false stays in the tuple, and a bad value in it is still an error."""
    config = load_config({"exporters": [{"type": "file", "file_path": "m.prom", "enabled": False}]})
    assert config.exporters == (FileExporterConfig(file_path="m.prom", enabled=False),)
    with pytest.raises(ConfigError, match=r"exporters\[0\]\.format"):
        load_config(
            {"exporters": [{"type": "file", "file_path": "m", "enabled": False, "format": 1}]}
        )


def test_prometheus_address_clash_only_among_enabled_fixed_ports() -> None:
    """Disabled entries and port 0 (a free port each) never clash with another entry."""
    config = load_config(
        {
            "exporters": [
                {"type": "prometheus"},
                {"type": "prometheus", "enabled": False},
                {"type": "prometheus", "port": 0},
                {"type": "prometheus", "port": 0},
            ]
        }
    )
    assert len(config.exporters) == 4


# --- FluxStack compatibility ----------------------------------------------------------------


def test_fluxstack_seed_object_configures_in_seconds() -> None:
    """The FluxStack README object configures as-is, and its ms alert keeps ms with a scale."""
    config = load_config(FLUXSTACK_SEED)
    assert config.collect_interval == 5.0
    assert config.exporters == (PrometheusExporterConfig(endpoint="/metrics", enabled=True),)
    (rule,) = config.alerts
    assert rule.metric == cat.HTTP_REQUEST_DURATION.name
    assert rule.value == 2000
    assert rule.scale == 1000
    assert rule.aggregation == "p95"
    assert (rule.operator, rule.severity) == (">", "warning")


def test_fluxstack_default_config_parses() -> None:
    """FluxStack's defaultConfig parses: ms become s, format text is Prometheus text."""
    config = load_config(FLUXSTACK_DEFAULT)
    assert (config.collect_interval, config.retention_period) == (5.0, 300.0)
    console, prom = config.exporters
    assert console == ConsoleExporterConfig(interval=30.0, enabled=False)
    assert prom == PrometheusExporterConfig()
    assert config.thresholds == Thresholds(
        response_time=1.0, error_rate=0.05, memory_usage=0.8, cpu_usage=0.8
    )
    assert config.alerts == ()


def _duration_keys() -> Iterator[str]:
    """Every (class, key) whose check reads 1000 as 1.0 in camelCase style: the ms keys."""
    for cls in CONFIG_CLASSES:
        for f in dataclasses.fields(cls):
            if CHECK in f.metadata:
                try:
                    converted = f.metadata[CHECK](1000, "x", True)
                except ConfigError:
                    continue
                if converted == 1.0:
                    yield f"{cls.__name__}.{key_of(f.name, camel=True)}"


# Every millisecond key in FluxStack style: (config, read back, class.key it covers).
MS_CASES: list[tuple[dict[str, Any], Callable[[MonitoringConfig], Any], str]] = [
    ({"collectInterval": 2500}, lambda c: c.collect_interval, "MonitoringConfig.collectInterval"),
    ({"retentionPeriod": 2500}, lambda c: c.retention_period, "MonitoringConfig.retentionPeriod"),
    (
        {"alertEvaluationInterval": 2500},
        lambda c: c.alert_evaluation_interval,
        "MonitoringConfig.alertEvaluationInterval",
    ),
    (
        {"thresholds": {"responseTime": 2500}},
        lambda c: c.thresholds.response_time,
        "Thresholds.responseTime",
    ),
    *[
        (
            {"httpMetrics": True, "exporters": [{"type": t, "interval": 2500, **more}]},
            lambda c: c.exporters[0].interval,
            f"{cls}.interval",
        )
        for t, cls, more in [
            ("prometheus", "PrometheusExporterConfig", {}),
            ("console", "ConsoleExporterConfig", {}),
            ("json", "JsonExporterConfig", {"filePath": "m.json"}),
            ("file", "FileExporterConfig", {"filePath": "m.prom"}),
            ("otlp", "OtlpExporterConfig", {}),
        ]
    ],
    (
        {"exporters": [{"type": "json", "url": "http://c/", "timeout": 2500, "filePath": "f"}]},
        lambda c: c.exporters[0].timeout,
        "JsonExporterConfig.timeout",
    ),
    (
        {"httpMetrics": True, "exporters": [{"type": "otlp", "timeout": 2500}]},
        lambda c: c.exporters[0].timeout,
        "OtlpExporterConfig.timeout",
    ),
    *[
        (
            {"httpMetrics": True, "alerts": [alert(**{key: 2500})]},
            lambda c, attr=attr: getattr(c.alerts[0], attr),
            f"AlertRule.{key}",
        )
        for key, attr in [
            ("window", "window"),
            ("for", "for_"),
            ("keepFiringFor", "keep_firing_for"),
            ("repeatInterval", "repeat_interval"),
        ]
    ],
]


@pytest.mark.parametrize(("source", "read", "key"), MS_CASES, ids=[c[2] for c in MS_CASES])
def test_fluxstack_milliseconds_become_seconds(
    source: dict[str, Any], read: Callable[[MonitoringConfig], Any], key: str
) -> None:
    """In FluxStack style each interval and duration key is read in ms and stored in seconds."""
    assert read(load_config(source)) == 2.5


def test_ms_cases_cover_every_duration_key() -> None:
    """The ms conversion cases above cover every duration field of every config class."""
    assert {c[2] for c in MS_CASES} == set(_duration_keys())


# --- durations: unit strings, bare numbers, refused ambiguities ------------------------------

# (id, source, read back, seconds expected): every unit form, in every style and entry kind.
# fmt: off
DURATION_FORMS: list[tuple[str, dict[str, Any], Callable[[MonitoringConfig], Any], float]] = [
    ("ms", {"collect_interval": "500ms"}, lambda c: c.collect_interval, 0.5),
    ("s", {"collect_interval": "30s"}, lambda c: c.collect_interval, 30.0),
    ("m", {"collect_interval": "2m"}, lambda c: c.collect_interval, 120.0),
    ("h", {"retention_period": "1h"}, lambda c: c.retention_period, 3600.0),
    ("d", {"retention_period": "2d"}, lambda c: c.retention_period, 172800.0),
    ("combined", {"retention_period": "1h30m"}, lambda c: c.retention_period, 5400.0),
    ("decimal", {"collect_interval": "1.5s"}, lambda c: c.collect_interval, 1.5),
    ("spaces", {"collect_interval": " 30 s "}, lambda c: c.collect_interval, 30.0),
    ("camel string", {"collectInterval": "30s"}, lambda c: c.collect_interval, 30.0),
    ("camel bare ms", {"collectInterval": 30000}, lambda c: c.collect_interval, 30.0),
    ("snake bare s", {"collect_interval": 30}, lambda c: c.collect_interval, 30.0),
    ("snake a day", {"retention_period": 86400}, lambda c: c.retention_period, 86400.0),
    ("camel 10 ms", {"collectInterval": 10}, lambda c: c.collect_interval, 0.01),
    ("threshold", {"thresholds": {"responseTime": "1.5s"}}, lambda c: c.thresholds.response_time, 1.5),
    ("undetermined string", {"exporters": [{"type": "console", "interval": "30s"}]}, lambda c: c.exporters[0].interval, 30.0),
    ("undetermined zero delay", {"alerts": [alert(**{"for": 0})]}, lambda c: c.alerts[0].for_, 0.0),
    ("alert window", {"alerts": [alert(window="5m", repeat_interval="1h")]}, lambda c: c.alerts[0].window, 300.0),
    ("notifier timeout", {"notifiers": [{"type": "alertmanager", "url": "http://am:9093", "timeout": "2500ms"}]}, lambda c: c.notifiers[0].timeout, 2.5),
    ("otlp timeout camel", {"httpMetrics": True, "exporters": [{"type": "otlp", "timeout": "3s"}]}, lambda c: c.exporters[0].timeout, 3.0),
    ("a year", {"retention_period": "365d"}, lambda c: c.retention_period, 365 * 86400.0),
]

# (id, source, ConfigError.path, fragments): every refused ambiguity or junk duration.
REFUSED_DURATIONS: list[tuple[str, dict[str, Any], str, tuple[str, ...]]] = [
    ("camel sub-10 ms", {"collectInterval": 5}, "collectInterval", ("implausibly short", "write '5s' if you meant seconds", "'5ms' to keep it")),
    ("camel fraction", {"httpMetrics": True, "exporters": [{"type": "console", "interval": 0.5}]}, "exporters[0].interval", ("implausibly short",)),
    ("snake over a day", {"retention_period": 300000}, "retention_period", ("more than a day", "'300000ms' if you meant milliseconds", "'2d'")),
    ("undetermined interval", {"exporters": [{"type": "console", "interval": 30000}]}, "exporters[0].interval", ("could be seconds or milliseconds", "'30000s'", "'30000ms'", "'collectInterval'")),
    ("undetermined alert", {"alerts": [alert(window=60)]}, "alerts[0].window", ("could be seconds or milliseconds",)),
    ("undetermined timeout", {"notifiers": [{"type": "alertmanager", "url": "http://am:9093", "timeout": 2}]}, "notifiers[0].timeout", ("could be seconds or milliseconds",)),
    ("unknown unit", {"collect_interval": "30x"}, "collect_interval", ("a duration such as '30s' or '500ms'", "got '30x'")),
    ("unit alone", {"collect_interval": "s"}, "collect_interval", ("got 's'",)),
    ("number as text", {"collect_interval": "30"}, "collect_interval", ("got '30'",)),
    ("negative string", {"collect_interval": "-5s"}, "collect_interval", ("got '-5s'",)),
    ("exponent", {"collect_interval": "1e3s"}, "collect_interval", ("got '1e3s'",)),
    ("zero string", {"collect_interval": "0s"}, "collect_interval", ("> 0", "got '0s'")),
    ("over a year", {"retention_period": "400d"}, "retention_period", ("at most 365 days", "got '400d'")),
    ("huge camel", {"retentionPeriod": 10**15}, "retentionPeriod", ("at most 365 days",)),
    ("huge float", {"retention_period": "99999999999999h"}, "retention_period", ("got '99999999999999h'",)),
]
# fmt: on


@pytest.mark.parametrize(
    ("source", "read", "seconds"),
    [d[1:] for d in DURATION_FORMS],
    ids=[d[0] for d in DURATION_FORMS],
)
def test_every_duration_form_reads_as_seconds(
    source: dict[str, Any], read: Callable[[MonitoringConfig], Any], seconds: float
) -> None:
    """Unit strings read alike in every style; bare numbers in the style's unit."""
    assert read(load_config(source)) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("source", "path", "fragments"),
    [d[1:] for d in REFUSED_DURATIONS],
    ids=[d[0] for d in REFUSED_DURATIONS],
)
def test_ambiguous_or_implausible_durations_are_refused_with_the_fix(
    source: dict[str, Any], path: str, fragments: tuple[str, ...]
) -> None:
    """An implausible bare number, an unstyled one, or junk raises ConfigError with the fix."""
    with pytest.raises(ConfigError) as info:
        load_config(source)
    assert info.value.path == path
    for fragment in fragments:
        assert fragment in str(info.value)


@given(
    st.integers(0, 10**6),
    st.sampled_from(["ms", "s", "m", "h", "d"]),
    st.sampled_from([False, True]),
)
def test_unit_strings_round_trip_in_both_styles(count: int, unit: str, camel: bool) -> None:
    """Any whole count of any unit reads as count * unit seconds, or is refused when out of bounds."""
    seconds = count * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
    key = "collectInterval" if camel else "collect_interval"
    if 0 < seconds <= 365 * 86400:
        assert load_config({key: f"{count}{unit}"}).collect_interval == pytest.approx(seconds)
    else:
        with pytest.raises(ConfigError, match=key):
            load_config({key: f"{count}{unit}"})


# --- the FluxStack plugin's shapes ------------------------------------------------------------


def _shapes(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("bare", config),
        ("monitoring", {"monitoring": config}),
        ("plugins", {"plugins": {"enabled": ["monitoring"], "config": {"monitoring": config}}}),
        ("app config", {"app": {"name": "shop"}, "server": {"port": 3000}, "monitoring": config}),
    ]


@pytest.mark.parametrize(
    ("plugin", "shape"),
    [
        (name, shape)
        for name, config in (("seed", FLUXSTACK_SEED), ("default", FLUXSTACK_DEFAULT))
        for shape in ("bare", "monitoring", "plugins", "app config")
    ],
)
def test_the_plugins_documented_config_loads_in_every_shape(
    plugin: str, shape: str, tmp_path: Path
) -> None:
    """The plugin's README and default objects load as-is, bare or wrapped, mapping or file."""
    config = FLUXSTACK_SEED if plugin == "seed" else FLUXSTACK_DEFAULT
    wrapped = dict(_shapes(config))[shape]
    expected = load_config(config)
    assert load_config(wrapped) == expected
    path = tmp_path / "fluxstack.json"
    path.write_text(json.dumps(wrapped))
    assert load_config(path) == expected
    assert expected.collect_interval == 5.0


def _migration_page_configs() -> list[dict[str, Any]]:
    """The literal config objects passed to configure_monitoring in the migration page."""
    import ast
    import re

    page = Path(__file__).resolve().parent.parent / "docs" / "migrating-from-fluxstack.md"
    found = []
    for block in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.S):
        for node in ast.walk(ast.parse(block)):
            if (
                isinstance(node, ast.Call)
                and getattr(node.func, "id", "") == "configure_monitoring"
            ):
                found.append(ast.literal_eval(node.args[0]))
    return found


def test_the_migration_page_configs_load_in_every_shape() -> None:
    """The page's plugin object is the plugin's defaultConfig; it and its native twin load alike,
    bare or wrapped as FluxStack keeps them."""
    plugin, native = _migration_page_configs()
    assert plugin == FLUXSTACK_DEFAULT
    for _, shaped in _shapes(plugin):
        assert load_config(shaped) == load_config(native)


def test_a_wrapper_is_only_read_when_the_mapping_is_not_a_config() -> None:
    """A mapping with a config key is the config itself; two wrappers at once are refused."""
    with pytest.raises(ConfigError, match="unknown key 'monitoring'"):
        load_config({"enabled": True, "monitoring": {"collectInterval": 5000}})
    both = {"monitoring": {}, "plugins": {"config": {"monitoring": {}}}}
    with pytest.raises(ConfigError, match=r"both 'monitoring' and 'plugins\.config\.monitoring'"):
        load_config(both)
    with pytest.raises(ConfigError) as info:
        load_config({"monitoring": {"collectInterval": "fast"}})
    assert info.value.path == "monitoring.collectInterval"
    with pytest.raises(ConfigError, match=r"^monitoring: expected a mapping"):
        load_config({"monitoring": "on"})


def test_fluxstack_json_endpoint_url_becomes_url() -> None:
    """FluxStack POSTs to a json exporter's endpoint URL; here that is the url option."""
    config = load_config({"exporters": [{"type": "json", "endpoint": "https://c.example/m"}]})
    assert config.exporters == (JsonExporterConfig(url="https://c.example/m"),)


def test_file_format_text_means_prometheus() -> None:
    """FluxStack's file format text is Prometheus text."""
    config = load_config({"exporters": [{"type": "file", "filePath": "m", "format": "text"}]})
    assert config.exporters == (FileExporterConfig(file_path="m", format="prometheus"),)


def test_mixing_key_styles_is_an_error() -> None:
    """A camelCase key and a snake_case key in one config ask the user to pick one style."""
    with pytest.raises(ConfigError) as info:
        load_config({"collectInterval": 5000, "retention_period": 300})
    assert info.value.path == "retention_period"
    assert "'collectInterval'" in str(info.value)
    assert "use one style" in str(info.value)


def test_header_names_and_label_keys_do_not_decide_the_style() -> None:
    """Uppercase header names are data: a snake_case config with them stays in seconds."""
    config = load_config(
        {
            "collect_interval": 5,
            "exporters": [{"type": "otlp", "headers": {"Authorization": "Bearer t"}}],
        }
    )
    assert config.collect_interval == 5.0
    assert config.exporters[0].headers == (("Authorization", "Bearer t"),)  # type: ignore[union-attr]


# --- alerts ---------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", cat.BUILTIN_METRICS, ids=lambda s: s.name)
def test_alert_aggregation_defaults_per_kind(spec: cat.MetricSpec) -> None:
    """A rule without aggregation gets its metric kind's default: rate, p95 or value."""
    (rule,) = load_config({"alerts": [alert(metric=spec.name)]}).alerts
    assert rule.aggregation == AGGREGATIONS[spec.kind][0]
    assert rule.scale == 1.0


def test_alert_labels_and_options_parse() -> None:
    """Labels become sorted pairs and the snake_case options are read in seconds."""
    (rule,) = load_config(
        {
            "alerts": [
                alert(
                    metric=cat.HTTP_ERRORS.name,
                    labels={"route": "/x", "method": "GET"},
                    aggregation="value",
                    window=300,
                    keep_firing_for=60,
                    name="errors",
                    message="too many",
                    **{"for": 30},
                )
            ]
        }
    ).alerts
    assert rule.labels == (("method", "GET"), ("route", "/x"))
    assert (rule.aggregation, rule.window, rule.for_, rule.keep_firing_for) == (
        "value",
        300,
        30,
        60,
    )
    assert (rule.name, rule.message) == ("errors", "too many")


# --- thresholds -----------------------------------------------------------------------------


def test_thresholds_turn_off_with_null_or_false() -> None:
    """None (JSON null) or false (TOML has no null) turns a threshold off; 0 is a value."""
    config = load_config(
        {"thresholds": {"response_time": None, "error_rate": False, "cpu_usage": 2}}
    )
    assert config.thresholds.response_time is None
    assert config.thresholds.error_rate is None
    assert config.thresholds.cpu_usage == 2.0
    assert load_config({"thresholds": {"error_rate": 0}}).thresholds.error_rate == 0.0


# --- the bad-input table --------------------------------------------------------------------

P = "exporters[0]"
# (id, source, expected ConfigError.path, fragments the message must hold)
# fmt: off
BAD: list[tuple[str, object, str, tuple[str, ...]]] = [
    ("typo", {"colect_interval": 5}, "colect_interval", ("unknown key 'colect_interval'", "did you mean 'collect_interval'?")),
    ("camel typo", {"collectInterval": 5000, "retentionPeriode": 1}, "retentionPeriode", ("did you mean 'retentionPeriod'?", "allowed keys:", "httpMetrics")),
    ("bool as str", {"enabled": "yes"}, "enabled", ("expected true or false", "got 'yes'")),
    ("number as bool", {"http_metrics": 1}, "http_metrics", ("expected true or false", "got 1")),
    ("bool as number", {"collect_interval": True}, "collect_interval", ("a finite number of seconds > 0", "got True")),
    ("str as number", {"collect_interval": "5"}, "collect_interval", ("got '5'",)),
    ("zero interval", {"collect_interval": 0}, "collect_interval", ("> 0", "got 0")),
    ("negative ms", {"collectInterval": -5}, "collectInterval", ("milliseconds > 0", "got -5")),
    ("nan", {"retention_period": math.nan}, "retention_period", ("finite number", "got nan")),
    ("inf", {"alert_evaluation_interval": math.inf}, "alert_evaluation_interval", ("got inf",)),
    ("huge int", {"collect_interval": 10**400}, "collect_interval", ("finite number", "got 1000000")),
    ("empty name", {"service_name": ""}, "service_name", ("a non-empty string", "got ''")),
    ("str not list", {"excluded_paths": "/health"}, "excluded_paths", ("expected a list", "got '/health'")),
    ("relative path", {"excluded_paths": ["/ok", "health"]}, "excluded_paths[1]", ("starting with '/'", "got 'health'")),
    ("inner star", {"excluded_paths": ["/a*/b"]}, "excluded_paths[0]", ("'*' only at its end", "got '/a*/b'")),
    ("status low", {"error_status_threshold": 399}, "error_status_threshold", ("an integer from 400 to 600", "got 399")),
    ("status float", {"error_status_threshold": 500.0}, "error_status_threshold", ("an integer", "got 500.0")),
    ("no buckets", {"duration_buckets": []}, "duration_buckets", ("non-empty list", "got []")),
    ("flat buckets", {"duration_buckets": [0.1, 0.1]}, "duration_buckets[1]", ("> 0.1 (buckets strictly increase)", "got 0.1")),
    ("negative bucket", {"size_buckets": [-1]}, "size_buckets[0]", ("> 0", "got -1")),
    ("series zero", {"max_series_per_metric": 0}, "max_series_per_metric", ("an integer >= 1", "got 0")),
    ("exporters mapping", {"exporters": {"type": "console"}}, "exporters", ("expected a list", "got {'type': 'console'}")),
    ("exporter str", {"exporters": ["prometheus"]}, P, ("expected a mapping", "got 'prometheus'")),
    ("no type", {"exporters": [{}]}, P, ("missing required key 'type'", "'prometheus'", "'otlp'")),
    ("type typo", {"exporters": [{"type": "console"}, {"type": "promethus"}]}, "exporters[1].type", ("got 'promethus'", "did you mean 'prometheus'?")),
    ("type number", {"exporters": [{"type": 5}]}, f"{P}.type", ("one of 'prometheus', 'console', 'json', 'file', 'otlp'", "got 5")),
    ("endpoint", {"exporters": [{"type": "prometheus", "endpoint": "metrics"}]}, f"{P}.endpoint", ("a path starting with '/'", "got 'metrics'")),
    ("port range", {"exporters": [{"type": "prometheus", "port": 70000}]}, f"{P}.port", ("from 0 to 65535", "got 70000")),
    ("port str", {"exporters": [{"type": "prometheus", "port": "9464"}]}, f"{P}.port", ("an integer", "got '9464'")),
    ("host no port", {"exporters": [{"type": "prometheus", "host": "0.0.0.0"}]}, f"{P}.host", ("'0.0.0.0'", "needs a port")),
    ("prom format", {"exporters": [{"type": "prometheus", "format": "json"}]}, f"{P}.format", ("one of 'text'", "got 'json'")),
    ("prom key typo", {"exporters": [{"type": "prometheus", "endpiont": "/m"}]}, f"{P}.endpiont", ("did you mean 'endpoint'?",)),
    ("same endpoint", {"exporters": [{"type": "prometheus"}, {"type": "prometheus"}]}, "exporters[1]", ("serves '/metrics'", "as exporters[0] does already")),
    ("same port", {"exporters": [{"type": "prometheus", "port": 9464}, {"type": "prometheus", "endpoint": "/m", "host": "127.0.0.1", "port": 9464}]}, "exporters[1]", ("serves '127.0.0.1:9464'",)),
    ("console format", {"exporters": [{"type": "console", "format": "yaml"}]}, f"{P}.format", ("one of 'text', 'json'", "got 'yaml'")),
    ("console stream", {"exporters": [{"type": "console", "stream": "stderr"}]}, f"{P}.stream", ("one of 'log', 'stdout'", "got 'stderr'")),
    ("interval", {"exporters": [{"type": "console", "interval": -1}]}, f"{P}.interval", ("seconds > 0 or null", "got -1")),
    ("json nowhere", {"exporters": [{"type": "json"}]}, P, ("at least one of 'endpoint', 'url', 'file_path'",)),
    ("json nowhere camel", {"httpMetrics": True, "exporters": [{"type": "json"}]}, P, ("'filePath'",)),
    ("json url", {"exporters": [{"type": "json", "url": "ftp://x"}]}, f"{P}.url", ("http:// or https:// URL", "got 'ftp://x'")),
    ("json two urls", {"exporters": [{"type": "json", "endpoint": "http://a", "url": "http://b"}]}, f"{P}.endpoint", ("'http://a'", "keep one")),
    ("headers list", {"exporters": [{"type": "json", "url": "http://a", "headers": ["x"]}]}, f"{P}.headers", ("expected a mapping", "got a value of type list")),
    ("header value", {"exporters": [{"type": "otlp", "headers": {"api-key": 5}}]}, f"{P}.headers.api-key", ("a string without line breaks", "of type int")),
    ("header name", {"exporters": [{"type": "otlp", "headers": {"bad name": "x"}}]}, f"{P}.headers", ("HTTP header names", "not quoted")),
    ("file path missing", {"exporters": [{"type": "file"}]}, P, ("missing required key 'file_path'",)),
    ("file path camel", {"httpMetrics": True, "exporters": [{"type": "file", "filePath": 5}]}, f"{P}.filePath", ("a non-empty string", "got 5")),
    ("file format", {"exporters": [{"type": "file", "file_path": "m", "format": "xml"}]}, f"{P}.format", ("'prometheus', 'json', 'text'", "got 'xml'")),
    ("otlp protocol", {"exporters": [{"type": "otlp", "protocol": "http"}]}, f"{P}.protocol", ("'http/protobuf', 'grpc'", "got 'http'")),
    ("otlp endpoint", {"exporters": [{"type": "otlp", "endpoint": "localhost:4318"}]}, f"{P}.endpoint", ("URL with protocol 'http/protobuf'", "got 'localhost:4318'")),
    ("otlp compression", {"exporters": [{"type": "otlp", "compression": "zstd"}]}, f"{P}.compression", ("'gzip', 'none' or null", "got 'zstd'")),
    ("otlp temporality", {"exporters": [{"type": "otlp", "temporality": "deltaa"}]}, f"{P}.temporality", ("did you mean 'delta'?",)),
    ("otlp timeout", {"exporters": [{"type": "otlp", "timeout": 0}]}, f"{P}.timeout", ("seconds > 0", "got 0")),
    ("thresholds str", {"thresholds": "strict"}, "thresholds", ("expected a mapping", "got 'strict'")),
    ("error rate", {"thresholds": {"error_rate": 1.5}}, "thresholds.error_rate", (">= 0 and <= 1", "null/false (off)", "got 1.5")),
    ("memory zero", {"thresholds": {"memory_usage": 0}}, "thresholds.memory_usage", ("> 0 and <= 1", "got 0")),
    ("threshold true", {"thresholds": {"responseTime": True}}, "thresholds.responseTime", ("milliseconds > 0", "got True")),
    ("threshold typo", {"thresholds": {"responce_time": 1}}, "thresholds.responce_time", ("did you mean 'response_time'?",)),
    ("alerts mapping", {"alerts": {"metric": "x"}}, "alerts", ("expected a list",)),
    ("alert missing", {"alerts": [{"metric": "http_requests_total", "operator": ">", "value": 1}]}, "alerts[0]", ("missing required key 'severity'",)),
    ("severity", {"alerts": [alert(severity="warn")]}, "alerts[0].severity", ("'info', 'warning', 'error', 'critical'", "got 'warn'", "did you mean 'warning'?")),
    ("operator", {"alerts": [alert(operator="=>")]}, "alerts[0].operator", ("'>', '>=', '<', '<=', '==', '!='", "got '=>'")),
    ("metric", {"alerts": [alert(metric="http_request_total")]}, "alerts[0].metric", ("got 'http_request_total'", "did you mean 'http_requests_total'?")),
    ("value str", {"alerts": [alert(value="high")]}, "alerts[0].value", ("a finite number", "got 'high'")),
    ("value nan", {"alerts": [alert(value=math.nan)]}, "alerts[0].value", ("got nan",)),
    ("aggregation", {"alerts": [alert(aggregation="p95")]}, "alerts[0].aggregation", ("one of 'rate', 'value' (for a counter)", "got 'p95'")),
    ("label", {"alerts": [alert(labels={"path": "/x"})]}, "alerts[0].labels.path", ("unknown label 'path'", "'method', 'route'")),
    ("label value", {"alerts": [alert(labels={"method": 1})]}, "alerts[0].labels.method", ("a string", "got 1")),
    ("for negative", {"alerts": [alert(**{"for": -1})]}, "alerts[0].for", ("seconds >= 0", "got -1")),
    ("keepFiringFor", {"httpMetrics": True, "alerts": [alert(keepFiringFor=-1)]}, "alerts[0].keepFiringFor", ("milliseconds >= 0",)),
    ("scale internal", {"alerts": [alert(scale=2)]}, "alerts[0].scale", ("unknown key 'scale'",)),
    ("repeat zero", {"alerts": [alert(repeat_interval=0)]}, "alerts[0].repeat_interval", ("> 0", "got 0")),
    ("mixed nested", {"collect_interval": 5, "exporters": [{"type": "file", "filePath": "m"}]}, "collect_interval", ("'exporters[0].filePath'", "use one style")),
    ("int key", {1: True}, "", ("keys must be strings", "got 1")),
    ("int source", 42, "", ("a MonitoringConfig, a mapping or the path", "got 42")),
    ("list source", [("enabled", True)], "", ("got [('enabled', True)]",)),
    ("bytes path", b"monitoring.toml", "", ("got b'monitoring.toml'",)),
]
# fmt: on


@pytest.mark.parametrize(
    ("source", "path", "fragments"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_input_names_path_value_and_allowed(
    source: Any, path: str, fragments: tuple[str, ...]
) -> None:
    """Each bad value raises ConfigError with its key path, the value and what is allowed."""
    with pytest.raises(ConfigError) as info:
        load_config(source)
    assert info.value.path == path
    message = str(info.value)
    assert message.startswith(f"{path}: " if path else "")
    for fragment in fragments:
        assert fragment in message


def test_config_error_is_a_value_error() -> None:
    """Callers catching ValueError catch configuration errors too."""
    with pytest.raises(ValueError, match="enabled"):
        load_config({"enabled": "no"})


class _ExplodingMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("boom")

    def __len__(self) -> int:
        return 1


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def _deep(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


_loop: list[Any] = []
_loop.append(_loop)

HOSTILE: list[tuple[str, object]] = [
    ("exploding mapping", _ExplodingMapping()),
    ("exploding thresholds", {"thresholds": _ExplodingMapping()}),
    ("bad repr value", {"service_name": _BadRepr()}),
    ("5000-digit int", {"collect_interval": 10**5000}),
    ("deep list", {"excluded_paths": _deep(100_000)}),
    ("self-referential list", {"exporters": _loop}),
    ("object source", object()),
]


@pytest.mark.parametrize("source", [h[1] for h in HOSTILE], ids=[h[0] for h in HOSTILE])
def test_hostile_inputs_raise_only_config_error(source: Any) -> None:
    """Objects that raise, cannot be shown or nest without end still give a ConfigError."""
    with pytest.raises(ConfigError):
        load_config(source)


def test_header_secret_is_not_echoed_in_errors() -> None:
    """A bad header value is described by its type, never quoted, since it may be a secret."""
    with pytest.raises(ConfigError) as info:
        load_config({"exporters": [{"type": "otlp", "headers": {"x-key": "s3cr3t\r\nX: y"}}]})
    assert "s3cr3t" not in str(info.value)


# --- repr -----------------------------------------------------------------------------------


def test_repr_masks_header_values() -> None:
    """Exporter reprs, and the config repr around them, show header names but mask values."""
    config = load_config(
        {
            "exporters": [
                {"type": "otlp", "headers": {"authorization": "Bearer s3cr3t"}},
                {"type": "json", "url": "https://c/", "headers": {"x-api-key": "t0ken"}},
            ]
        }
    )
    otlp, js = config.exporters
    assert "headers={'authorization': '***'}" in repr(otlp)
    assert "headers={'x-api-key': '***'}" in repr(js)
    assert "s3cr3t" not in repr(config)
    assert "t0ken" not in repr(config)
    assert otlp.headers == (("authorization", "Bearer s3cr3t"),)  # type: ignore[union-attr]


# --- the parameter table --------------------------------------------------------------------


def test_parameter_table_matches_the_model() -> None:
    """PARAMETERS lists every top-level field once with its default, keys, doc and env var."""
    defaults = MonitoringConfig()
    assert [p.name for p in PARAMETERS] == [f.name for f in dataclasses.fields(MonitoringConfig)]
    for p in PARAMETERS:
        assert p.default == getattr(defaults, p.name)
        assert p.doc.endswith(".")
        assert p.env_var == f"FLUXSTACK_MONITORING_{p.name.upper()}"
    by_name = {p.name: p for p in PARAMETERS}
    assert by_name["collect_interval"].camel_name == "collectInterval"
    assert by_name["collect_interval"].unit == "s"
    assert by_name["duration_buckets"].unit is None
    assert by_name["max_series_per_metric"].type == "int"


def test_config_classes_are_frozen_keyword_only_dataclasses() -> None:
    """Every public configuration class is a frozen, keyword-only dataclass that cannot change."""
    import fluxstack_otel.config as public

    classes = [c for c in map(public.__dict__.get, public.__all__) if isinstance(c, type)]
    assert len(classes) == 18  # all but load_config and the ExporterConfig, NotifierConfig unions
    for cls in classes:
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
        assert all(f.kw_only for f in dataclasses.fields(cls))
        with pytest.raises(TypeError):
            cls(True)
    config = MonitoringConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.service_name = "other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.not_a_field = 1  # type: ignore[attr-defined]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del config.enabled  # type: ignore[misc]
    assert config.service_name == "fluxstack-app"


# --- validated on construction ---------------------------------------------------------------

# (id, a constructor call that must fail, its ConfigError.path, fragments of the message)
# fmt: off
BAD_IN_CODE: list[tuple[str, Callable[[], object], str, tuple[str, ...]]] = [
    ("naming", lambda: MonitoringConfig(naming="nope"), "naming", ("one of 'fluxstack', 'semconv'", "got 'nope'")),  # type: ignore[arg-type]
    ("negative interval", lambda: MonitoringConfig(collect_interval=-1.0), "collect_interval", ("seconds > 0", "got -1.0")),
    ("huge interval", lambda: MonitoringConfig(retention_period=1e12), "retention_period", ("at most 365 days", "got 1000000000000.0")),
    ("nan", lambda: MonitoringConfig(alert_evaluation_interval=math.nan), "alert_evaluation_interval", ("got nan",)),
    ("status", lambda: MonitoringConfig(error_status_threshold=200), "error_status_threshold", ("from 400 to 600", "got 200")),
    ("bool as int", lambda: MonitoringConfig(max_series_per_metric=True), "max_series_per_metric", ("an integer >= 1", "got True")),
    ("buckets", lambda: MonitoringConfig(duration_buckets=(1.0, 0.5)), "duration_buckets[1]", ("strictly increase", "got 0.5")),
    ("excluded", lambda: MonitoringConfig(excluded_paths=("health",)), "excluded_paths[0]", ("starting with '/'",)),
    ("section type", lambda: MonitoringConfig(thresholds="strict"), "thresholds", ("expected a mapping", "got 'strict'")),  # type: ignore[arg-type]
    ("threshold", lambda: Thresholds(error_rate=2.0), "error_rate", ("<= 1", "got 2.0")),
    ("multiprocess", lambda: MultiprocessConfig(enabled=True), "directory", ("needs a 'directory'",)),
    ("dashboard", lambda: DashboardConfig(path="dash/"), "path", ("not ending with '/'",)),
    ("networks", lambda: AuthConfig(allow_networks=("not-a-net",)), "allow_networks[0]", ("an IP network",)),
    ("username", lambda: BasicAuthConfig(username=""), "username", ("a non-empty string without ':'",)),
    ("port", lambda: EndpointServerConfig(port=70000), "port", ("from 0 to 65535", "got 70000")),
    ("exporter entry", lambda: MonitoringConfig(exporters=("prometheus",)), "exporters[0]", ("expected a mapping",)),  # type: ignore[arg-type]
    ("address clash", lambda: MonitoringConfig(exporters=(PrometheusExporterConfig(), PrometheusExporterConfig())), "exporters[1]", ("serves '/metrics'",)),
    ("prom host", lambda: PrometheusExporterConfig(host="0.0.0.0"), "host", ("needs a port",)),
    ("console interval", lambda: ConsoleExporterConfig(interval=0.0), "interval", ("seconds > 0 or null", "got 0.0")),
    ("console format", lambda: ConsoleExporterConfig(format="yaml"), "format", ("got 'yaml'",)),  # type: ignore[arg-type]
    ("json nowhere", lambda: JsonExporterConfig(), "", ("at least one of 'endpoint', 'url', 'file_path'",)),
    ("file path", lambda: FileExporterConfig(file_path=""), "file_path", ("a non-empty string",)),
    ("otlp endpoint", lambda: OtlpExporterConfig(endpoint="localhost:4318"), "endpoint", ("URL with protocol 'http/protobuf'",)),
    ("otlp header", lambda: OtlpExporterConfig(headers=(("x-key", "a\nb"),)), "headers.x-key", ("without line breaks",)),
    ("rule metric", lambda: AlertRule(metric="http_request_total", operator=">", value=1, severity="info"), "metric", ("did you mean 'http_requests_total'?",)),
    ("rule operator", lambda: AlertRule(metric="http_requests_total", operator="=>", value=1, severity="info"), "operator", ("got '=>'",)),  # type: ignore[arg-type]
    ("rule aggregation", lambda: AlertRule(metric="http_requests_total", operator=">", value=1, severity="info", aggregation="p95"), "aggregation", ("(for a counter)",)),
    ("rule label", lambda: AlertRule(metric="http_requests_total", operator=">", value=1, severity="info", labels=(("path", "/x"),)), "labels.path", ("unknown label 'path'",)),
    ("rule template", lambda: AlertRule(metric="http_requests_total", operator=">", value=1, severity="info", message="{nope}"), "message", ("unknown field {nope}",)),
    ("rule window", lambda: AlertRule(metric="http_requests_total", operator=">", value=1, severity="info", window=-5.0), "window", ("seconds > 0",)),
    ("webhook url", lambda: WebhookNotifierConfig(url="ftp://x"), "url", ("an http:// or https:// URL",)),
    ("alertmanager timeout", lambda: AlertmanagerNotifierConfig(url="http://am:9093", timeout=0.0), "timeout", ("> 0",)),
]
# fmt: on


@pytest.mark.parametrize(
    ("build", "path", "fragments"), [b[1:] for b in BAD_IN_CODE], ids=[b[0] for b in BAD_IN_CODE]
)
def test_objects_built_in_code_are_validated_by_the_same_checks(
    build: Callable[[], object], path: str, fragments: tuple[str, ...]
) -> None:
    """A config object built in code with a bad value raises ConfigError naming field and value."""
    with pytest.raises(ConfigError) as info:
        build()
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: " if path else "")
    for fragment in fragments:
        assert fragment in str(info.value)


def test_objects_built_in_code_equal_the_parsed_ones() -> None:
    """Code and mappings meet one set of checks and normal forms: the two configs are equal."""
    in_code = MonitoringConfig(
        collect_interval=2,
        exporters=(
            JsonExporterConfig(endpoint="http://collector/ingest", headers=(("x-k", "v"),)),
            FileExporterConfig(file_path="m.prom", format="text"),  # type: ignore[arg-type]
        ),
        alerts=(
            AlertRule(metric="http_request_duration_ms", operator=">", value=2000, severity="info"),
        ),
    )
    parsed = load_config(
        {
            "collect_interval": 2,
            "exporters": [
                {"type": "json", "endpoint": "http://collector/ingest", "headers": {"x-k": "v"}},
                {"type": "file", "file_path": "m.prom", "format": "text"},
            ],
            "alerts": [
                {
                    "metric": "http_request_duration_ms",
                    "operator": ">",
                    "value": 2000,
                    "severity": "info",
                }
            ],
        }
    )
    assert in_code == parsed
    assert isinstance(in_code.collect_interval, float)
    (rule,) = in_code.alerts
    assert (rule.metric, rule.scale, rule.aggregation) == (
        cat.HTTP_REQUEST_DURATION.name,
        1000.0,
        "p95",
    )
    assert in_code.exporters[0] == JsonExporterConfig(
        url="http://collector/ingest", headers=(("x-k", "v"),)
    )


def test_replace_validates_again_and_keeps_normal_forms() -> None:
    """dataclasses.replace re-runs the checks; an already-normal rule keeps its alias scale once."""
    config = MonitoringConfig()
    with pytest.raises(ConfigError, match=r"^collect_interval: .* got 0"):
        dataclasses.replace(config, collect_interval=0)
    with pytest.raises(ConfigError, match=r"^naming: "):
        dataclasses.replace(config, naming="other")  # type: ignore[arg-type]
    rule = AlertRule(metric="http_request_duration_ms", operator=">", value=1, severity="info")
    again = dataclasses.replace(rule, value=2)
    assert (again.metric, again.scale, again.value) == (cat.HTTP_REQUEST_DURATION.name, 1000.0, 2.0)
    with pytest.raises(ConfigError, match=r"^aggregation: "):
        dataclasses.replace(rule, aggregation="rate")


def test_reprs_built_in_code_mask_secrets() -> None:
    """Secrets given in code stay out of every repr, nested ones included."""
    config = MonitoringConfig(
        auth=AuthConfig(
            bearer_token="t0k3n-s3cr3t", basic=BasicAuthConfig(username="u", password="pa55-s3cr3t")
        ),
        exporters=(OtlpExporterConfig(headers=(("authorization", "Bearer h3ad3r-s3cr3t"),)),),
        notifiers=(WebhookNotifierConfig(url="https://h/x", headers=(("x-k", "w3bh00k-s3cr3t"),)),),
    )
    assert "s3cr3t" not in repr(config)
    assert "headers={'authorization': '***'}" in repr(config.exporters[0])


# --- files ----------------------------------------------------------------------------------


def test_toml_file(tmp_path: Path) -> None:
    """A TOML file at its top level is read like a mapping."""
    path = tmp_path / "monitoring.toml"
    path.write_text(
        'service_name = "shop"\ncollect_interval = 2\n\n[[exporters]]\ntype = "console"\n'
        "\n[thresholds]\nresponse_time = false\n"
    )
    config = load_config(path)
    assert (config.service_name, config.collect_interval) == ("shop", 2.0)
    assert config.exporters == (ConsoleExporterConfig(),)
    assert config.thresholds.response_time is None
    assert load_config(str(path)) == config


def test_json_file_in_fluxstack_style(tmp_path: Path) -> None:
    """A JSON file may hold FluxStack's object as-is."""
    path = tmp_path / "monitoring.json"
    path.write_text(json.dumps(FLUXSTACK_DEFAULT))
    assert load_config(path) == load_config(FLUXSTACK_DEFAULT)


def test_pyproject_table(tmp_path: Path) -> None:
    """A pyproject.toml holds the config under [tool.fluxstack.monitoring]; errors say so."""
    path = tmp_path / "pyproject.toml"
    path.write_text(
        '[project]\nname = "shop"\n\n[tool.fluxstack.monitoring]\ncollectInterval = 1500\n'
    )
    assert load_config(path).collect_interval == 1.5
    path.write_text("[tool.fluxstack.monitoring]\ncollect_interval = -1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.path == "tool.fluxstack.monitoring.collect_interval"
    assert "got -1" in str(info.value)
    assert str(path) in str(info.value)


def test_pyproject_without_the_table(tmp_path: Path) -> None:
    """A pyproject.toml without [tool.fluxstack.monitoring] is an error naming the table."""
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.ruff]\nline-length = 100\n")
    with pytest.raises(ConfigError, match=r"no \[tool\.fluxstack\.monitoring\] table"):
        load_config(path)


@pytest.mark.parametrize(
    ("name", "content", "fragments"),
    [
        ("missing.toml", None, ("missing.toml", "cannot read it", "No such file")),
        (
            "monitoring.yaml",
            "enabled: true",
            ("monitoring.yaml", "expected a .toml or .json", "'.yaml'"),
        ),
        ("bad.toml", "enabled = = true", ("bad.toml", "not valid TOML")),
        ("bad.json", '{"enabled": tru}', ("bad.json", "not valid JSON")),
        ("latin.json", b'{"service_name": "caf\xe9"}', ("latin.json", "not valid JSON")),
        ("list.json", "[1, 2]", ("list.json", "expected a mapping", "got [1, 2]")),
        ("deep.json", "[" * 100_000 + "]" * 100_000, ("deep.json", "not valid JSON")),
        ("value.json", '{"enabled": 1}', ("enabled: expected true or false, got 1", "value.json")),
    ],
)
def test_bad_files(
    tmp_path: Path, name: str, content: str | bytes | None, fragments: tuple[str, ...]
) -> None:
    """A missing, unreadable, wrongly named or malformed file is a ConfigError naming it."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    """A path naming a directory gives a ConfigError, not an OSError."""
    folder = tmp_path / "conf.json"
    folder.mkdir()
    with pytest.raises(ConfigError, match="cannot read it"):
        load_config(folder)


# --- fuzz -----------------------------------------------------------------------------------


def _all_keys() -> list[str]:
    keys = {"type", "format", "for"}
    for cls in CONFIG_CLASSES:
        for f in dataclasses.fields(cls):
            keys.update({key_of(f.name, camel=False), key_of(f.name, camel=True)})
    return sorted(keys)


_words = st.sampled_from(
    [
        *_all_keys(),
        *(e for e in ("prometheus", "console", "json", "file", "otlp", "text", "grpc")),
        *cat.METRICS_BY_NAME,
        *cat.ALERT_ALIASES,
        ">",
        "warning",
        "p95",
        "rate",
        "method",
        "/metrics",
        "http://c/",
        "authorization",
    ]
)
_keys = _words | st.text(max_size=8)
_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8) | _words
_json = st.recursive(
    _leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=5),
    max_leaves=25,
)


def _shaped(camel: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Mappings with the real keys of one style in the real places, holding random values."""

    def entry(
        cls: type, fixed: dict[str, Any] | None = None, **known: st.SearchStrategy[Any]
    ) -> st.SearchStrategy[dict[str, Any]]:
        keys = [key_of(f.name, camel) for f in dataclasses.fields(cls) if CHECK in f.metadata]
        return st.fixed_dictionaries(fixed or {}, optional=dict.fromkeys(keys, _json) | known)

    exporter = st.sampled_from(CONFIG_CLASSES[3:]).flatmap(
        lambda cls: entry(cls, {"type": st.just(cls.type)})
    )
    return entry(
        MonitoringConfig,
        exporters=st.lists(exporter, max_size=3),
        alerts=st.lists(entry(AlertRule), max_size=2),
        thresholds=entry(Thresholds),
    )


_configs = st.one_of(
    _shaped(False), _shaped(True), st.dictionaries(_keys, _json, max_size=6), _json
)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(_configs)
def test_fuzz_only_config_error_escapes(source: Any) -> None:
    """Whatever JSON-like value arrives, load_config returns a config or raises ConfigError."""
    try:
        config = load_config(source)
    except ConfigError:
        return
    assert isinstance(config, MonitoringConfig)
    hash(config)


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("0.0.0.0", True),
        ("::", True),
        ("::1", True),
        ("localhost", True),
        ("otel_collector", True),
        ("metrics.internal.", True),
        ("no such host!", False),
        ("a" * 300, False),
        ("-leading", False),
        ("a..b", False),
        ("", False),
        ("ex\u00e4mple.com", False),
    ],
)
def test_server_hosts_are_addresses_or_host_names(host: str, ok: bool) -> None:
    """A standalone server's host is an IP address or a host name; junk is refused up front."""
    source = {"endpoint_server": {"host": host, "port": 0}}
    if ok:
        assert load_config(source).endpoint_server.host == host
    else:
        with pytest.raises(ConfigError, match=r"^endpoint_server\.host: expected an IP address"):
            load_config(source)
