"""Bad input from every source meets one ConfigError: fuzzed environment, mappings and secrets.

General properties rather than one test per symptom: whatever text a variable holds, and
whatever wrong shape a secret arrives in, ``resolve`` and ``configure_monitoring`` return a
configuration or raise ``ConfigError``; the error names the variable or key, and never quotes
a secret planted in the input.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluxstack_otel import ConfigError, configure_monitoring, load_config
from fluxstack_otel._internal.config.sources import ENV_VARS, resolve


@pytest.fixture(autouse=True, scope="module")
def _in_a_scratch_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Fuzzed file exporters write relative paths: into a scratch directory, not the checkout."""
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("fuzz-cwd"))
    try:
        yield
    finally:
        os.chdir(previous)


SECRET = "Sx9qTOPs3cr3tVALUE"  # planted in every secret position; must never be quoted

_LIGHT = {"system_metrics": False, "set_global": False}  # a valid config builds little

# --- junk in the environment -----------------------------------------------------------------

_NUMBERS = st.one_of(
    st.integers().map(str),
    st.integers(4000, 6000).map(lambda n: "9" * n),  # past Python's int-from-text limit
    st.integers(300, 400).map(lambda n: f"1e{n}"),
    st.sampled_from(["nan", "NaN", "inf", "-inf", "+Infinity", "1e999", "-0", "0x10", "1_000"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
_DURATIONS = st.one_of(
    st.integers(0, 10**30).map(lambda n: f"{n}s"),
    st.integers(0, 10**15).map(lambda n: f"{n}d"),
    st.sampled_from(["1e9h", "99999999999999999999ms", "5", "30s", "1h30m", "-1s", "s", "1.5.5s"]),
)
_DEEP = st.integers(1, 200_000).map(lambda n: "[" * n + "]" * n)
_DEEP_OBJECTS = st.integers(1, 50_000).map(lambda n: '{"a":' * n + "1" + "}" * n)
_HOSTS = st.one_of(
    st.sampled_from(["", " ", "no such host!", "a" * 300, "-bad-", "exa mple.com", "\x00", "::g"]),
    st.text(max_size=30),
)
_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=15,
).map(json.dumps)
_JUNK = st.one_of(_NUMBERS, _DURATIONS, _DEEP, _DEEP_OBJECTS, _HOSTS, _JSONISH, st.text())


def _assert_names(exc: ConfigError, name: str) -> None:
    """The error's path is the variable, or a key path inside its value."""
    assert exc.path == name or exc.path.startswith((f"{name}.", f"{name}[")), str(exc)
    assert str(exc).startswith(f"{exc.path}: ")


_VARIABLES = st.sampled_from(sorted({v.name for v in ENV_VARS}))


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_VARIABLES, _JUNK)
def test_junk_in_any_variable_raises_only_a_config_error_naming_it(name: str, text: str) -> None:
    """Any text in any variable resolves, or raises ConfigError whose path is that variable."""
    try:
        resolve(environ={name: text}, cwd="/nonexistent")
    except ConfigError as exc:
        _assert_names(exc, name)


# --- secrets in wrong shapes -------------------------------------------------------------------

_AUTH_SHAPES: list[object] = [
    SECRET,
    [SECRET],
    {"bearer_token": [SECRET]},
    {"bearer_token": SECRET + "\n"},
    {"bearer_token": SECRET, "bearer_token_env": "SOME_VAR"},
    {"bearer_tokn": SECRET},
    {"basic": SECRET},
    {"basic": [SECRET]},
    {"basic": {"username": f"user:{SECRET}", "password": "pw"}},
    {"basic": {"username": "u", "password": [SECRET]}},
    {"basic": {"username": "u", "password": SECRET, "passwrd": SECRET}},
    {"basic": {"username": SECRET, "password": SECRET, "password_env": "X"}},
    {"allow_networks": [SECRET]},
    {SECRET: "x"},
    {"basic": {"username": "u", SECRET: "x"}},
    {"allow_networks": SECRET},
]
_HEADER_SHAPES: list[object] = [
    SECRET,
    [SECRET],
    [["authorization", SECRET]],
    {"authorization": [SECRET]},
    {"authorization": SECRET + "\r\nX-Injected: 1"},
    {"authorization": {"value": SECRET}},
    {f"Bearer {SECRET}": "x"},
]
_URL_SHAPES: list[str] = [
    f"ftp://user:{SECRET}@collector.example/v1",
    f"http://user:{SECRET}@",
    f"user:{SECRET}@collector.example:4318",
    f"http://{SECRET}@collector.example:99999999/x",
    f"https://user:{SECRET}@hooks.example/x\n",
]


def _exporter(headers: object) -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(
        [
            {"type": "otlp", "headers": headers},
            {"type": "json", "url": "http://c/", "headers": headers},
            {"type": "otlp", "headers": headers, "timeout": "soon"},
        ]
    )


def _planted() -> st.SearchStrategy[dict[str, Any]]:
    auth = st.sampled_from(_AUTH_SHAPES).map(lambda a: {"auth": a})
    headers = st.sampled_from(_HEADER_SHAPES).flatmap(_exporter).map(lambda e: {"exporters": [e]})
    exporters_shape = st.sampled_from(_HEADER_SHAPES).map(
        lambda h: {"exporters": {"type": "otlp", "headers": h}}  # a mapping where a list goes
    )
    url = st.sampled_from(_URL_SHAPES)
    urls = st.one_of(
        url.map(lambda u: {"notifiers": [{"type": "webhook", "url": u}]}),
        url.map(lambda u: {"notifiers": [{"type": "alertmanager", "url": u, "timeout": -1}]}),
        url.map(lambda u: {"exporters": [{"type": "json", "url": u}]}),
        url.map(lambda u: {"exporters": [{"type": "json", "endpoint": u, "url": "http://c/"}]}),
        url.map(lambda u: {"exporters": [{"type": "otlp", "endpoint": u}]}),
        url.map(lambda u: {"notifiers": {"type": "webhook", "url": u}}),
        url.map(lambda u: {"exporters": [{"type": "prometheus", "endpoint": u}]}),
    )
    return st.one_of(auth, headers, exporters_shape, urls).map(lambda c: {**_LIGHT, **c})


def _assert_names_a_key(exc: ConfigError) -> None:
    assert exc.path, str(exc)
    assert str(exc).startswith(f"{exc.path}: ")


def _assert_mentions(exc: ConfigError, text: str) -> None:
    assert text in str(exc), str(exc)


def _assert_safe(exc: ConfigError) -> None:
    assert SECRET not in str(exc), str(exc)
    assert exc.path, str(exc)


@settings(
    max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(_planted())
def test_a_secret_in_a_wrong_shape_is_never_quoted(source: dict[str, Any]) -> None:
    """A mapping with a secret in a wrong shape is refused naming the key, the secret unquoted."""
    try:
        config = load_config(source)
    except ConfigError as exc:
        _assert_safe(exc)
    else:
        assert SECRET not in repr(config)


_ENV_PLANTED = st.one_of(
    st.sampled_from(_AUTH_SHAPES).map(lambda a: ("FLUXSTACK_MONITORING_AUTH", json.dumps(a))),
    st.sampled_from(_AUTH_SHAPES).map(
        lambda a: ("FLUXSTACK_MONITORING_AUTH", json.dumps(a)[:-1])  # malformed JSON
    ),
    st.sampled_from(_HEADER_SHAPES).map(
        lambda h: (
            "FLUXSTACK_MONITORING_EXPORTERS",
            json.dumps([{"type": "otlp", "headers": h}]),
        )
    ),
    st.sampled_from(_URL_SHAPES).map(
        lambda u: ("FLUXSTACK_MONITORING_NOTIFIERS", json.dumps([{"type": "webhook", "url": u}]))
    ),
    st.just(("FLUXSTACK_MONITORING_AUTH", SECRET)),
)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(_ENV_PLANTED)
def test_configure_monitoring_never_quotes_a_secret_from_the_environment(
    planted: tuple[str, str],
) -> None:
    """configure_monitoring refuses a bad secret-bearing variable naming it, never quoting it."""
    name, text = planted
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FLUXSTACK", "OTEL_"))}
    environ |= {name: text, "FLUXSTACK_MONITORING_SYSTEM_METRICS": "false"}
    environ["FLUXSTACK_MONITORING_SET_GLOBAL"] = "false"
    with mock.patch.dict(os.environ, environ, clear=True):
        try:
            monitoring = configure_monitoring()
        except ConfigError as exc:
            _assert_safe(exc)
            _assert_names(exc, name)
        else:
            assert SECRET not in repr(monitoring.config)
            monitoring.shutdown()


_CONFIGS = st.fixed_dictionaries(
    {},
    optional={
        "collect_interval": _JUNK | st.floats() | st.integers(),
        "retentionPeriod": _JUNK | st.integers(),
        "alert_evaluation_interval": st.integers(-(10**30), 10**30),
        "exporters": st.lists(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["console", "otlp", "json", "file"])},
                optional={
                    "interval": _JUNK | st.integers(),
                    "timeout": _JUNK | st.floats(),
                    "file_path": st.text(max_size=5),
                },
            ),
            max_size=2,
        ),
        "endpoint_server": st.fixed_dictionaries({"host": _HOSTS}),
        "thresholds": st.fixed_dictionaries({}, optional={"response_time": _JUNK}),
    },
).map(lambda c: {**_LIGHT, **c})


@settings(
    max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(_CONFIGS)
def test_configure_monitoring_with_junk_raises_only_config_error(source: dict[str, Any]) -> None:
    """configure_monitoring builds a pipeline or raises ConfigError naming a key, nothing else."""
    with mock.patch.dict(os.environ, {}, clear=True):
        try:
            monitoring = configure_monitoring(source)
        except ConfigError as exc:
            _assert_names_a_key(exc)
            return
    try:
        assert monitoring.config.collect_interval <= 365 * 86400
    finally:
        monitoring.shutdown()


def test_a_file_path_with_a_deep_document_is_a_config_error(tmp_path: Path) -> None:
    """A JSON file nested without end raises ConfigError naming the file, not RecursionError."""
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ConfigError, match=r"deep\.json"):
        load_config(path)


_DOCUMENTS = st.one_of(
    _JSONISH,
    _DEEP,
    st.text(max_size=60),
    st.builds(lambda c: json.dumps({"monitoring": c}), _JSONISH.map(json.loads)),
    st.sampled_from(["", "{", '{"collect_interval": 1e999}', '{"collectInterval": 5}']),
)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(_DOCUMENTS, st.sampled_from([".json", ".toml"]))
def test_a_junk_config_file_raises_only_a_config_error_naming_the_file(
    text: str, suffix: str
) -> None:
    """Whatever a .json or .toml file holds, reading it gives a config or a ConfigError."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"monitoring{suffix}"
        path.write_text(text)
        with mock.patch.dict(os.environ, {"FLUXSTACK_CONFIG": str(path)}, clear=True):
            try:
                resolve(cwd=folder)
            except ConfigError as exc:
                _assert_mentions(exc, str(path))
