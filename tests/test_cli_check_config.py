"""``fluxstack-otel check-config [FILE]``: the resolved configuration and its sources, or the error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fluxstack_otel._internal.config.model import PARAMETERS
from fluxstack_otel._internal.integration.cli import main

CONFIG = """
service_name = "shop"
collect_interval = 10

[[exporters]]
type = "otlp"
endpoint = "https://user:hunter2@collector.example:4318"
headers = { authorization = "Bearer s3cr3t" }

[[notifiers]]
type = "webhook"
url = "https://hooks.example/services/T0/B0/XXXXSECRET?token=abc"

[auth]
bearer_token = "tok-123"
basic = { username = "ops", password = "pa55" }
"""
SECRETS = ("hunter2", "s3cr3t", "XXXXSECRET", "abc", "tok-123", "pa55", "otlp-header-value")
_CONFIG_VARS = re.compile(r"^(OTEL_|FLUXSTACK_|ENABLE_MONITORING$|HTTP_METRICS$|SYSTEM_METRICS$"
                          r"|CUSTOM_METRICS$|METRICS_INTERVAL$|METRICS_RETENTION_PERIOD$"
                          r"|METRICS_EXPORT_CONSOLE$)")  # fmt: skip


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No monitoring variables from the outside, and a working directory without pyproject.toml."""
    for name in list(os.environ):
        if _CONFIG_VARS.match(name):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def rows(output: str) -> dict[str, tuple[str, str]]:
    """key -> (source, value) of the report's table."""
    out = {}
    names = {p.name for p in PARAMETERS}
    for line in output.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) == 3 and parts[0] in names:
            out[parts[0]] = (parts[1], parts[2])
    return out


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """``CONFIG`` as a TOML file."""
    path = tmp_path / "monitoring.toml"
    path.write_text(CONFIG)
    return path


def test_valid_file_prints_every_key_with_its_source(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 0; every top-level key once, with its value and default/file:PATH/env:VAR."""
    monkeypatch.setenv("METRICS_INTERVAL", "2500")
    assert main(["check-config", str(config)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    table = rows(out)
    assert set(table) == {p.name for p in PARAMETERS}
    assert table["service_name"] == (f"file:{config}", '"shop"')
    assert table["collect_interval"] == ("env:METRICS_INTERVAL", "2.5")
    assert table["retention_period"] == ("default", "300.0")
    assert f"config file: {config}" in out


def test_secrets_are_masked(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Header values, passwords, tokens, URL paths and userinfo never reach the output."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-key=otlp-header-value")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "5000")
    assert main(["check-config", str(config)]) == 0
    out = capsys.readouterr().out
    for secret in SECRETS:
        assert secret not in out
    table = rows(out)
    assert '"authorization": "***"' in table["exporters"][1]
    assert '"endpoint": "https://collector.example:4318"' in table["exporters"][1]
    assert '"url": "https://hooks.example/***"' in table["notifiers"][1]
    assert '"bearer_token": "***"' in table["auth"][1]
    assert '"password": "***"' in table["auth"][1]
    assert "  OTEL_EXPORTER_OTLP_HEADERS=***" in out
    assert "  OTEL_EXPORTER_OTLP_TIMEOUT=5000" in out


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--json prints the file, the masked configuration and the sources as one document."""
    config = tmp_path / "monitoring.json"
    config.write_text(json.dumps({"serviceName": "camel", "collectInterval": 1500}))
    assert main(["check-config", "--json", str(config)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["file"] == str(config)
    assert document["config"]["service_name"] == "camel"
    assert document["config"]["collect_interval"] == 1.5
    assert document["sources"]["collect_interval"] == f"file:{config}"
    assert document["sources"]["enabled"] == "default"


def test_without_a_file_the_environment_and_defaults_apply(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No FILE, no FLUXSTACK_CONFIG, no pyproject table: defaults and the environment."""
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "console")
    assert main(["check-config"]) == 0
    out = capsys.readouterr().out
    assert "config file: (none)" in out
    table = rows(out)
    assert table["exporters"][0] == "env:OTEL_METRICS_EXPORTER"
    assert table["enabled"] == ("default", "true")


def test_pyproject_in_the_working_directory_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """[tool.fluxstack.monitoring] in ./pyproject.toml is the config file when none is named."""
    (tmp_path / "pyproject.toml").write_text('[tool.fluxstack.monitoring]\nservice_name = "pp"\n')
    assert main(["check-config"]) == 0
    assert rows(capsys.readouterr().out)["service_name"][1] == '"pp"'


@pytest.mark.parametrize(
    ("file_text", "environ", "message"),
    [
        ("collect_interval = -1\n", {},
         "fluxstack-otel: configuration error: collect_interval: expected a finite number of"
         " seconds > 0 or a duration such as '30s' or '500ms', got -1 (in {file})\n"),
        ('service_nme = "x"\n', {},
         "fluxstack-otel: configuration error: service_nme: unknown key 'service_nme'; did you"
         " mean 'service_name'?"),
        ("", {"HTTP_METRICS": "maybe"},
         "fluxstack-otel: configuration error: HTTP_METRICS: expected true, false, 1 or 0, got"
         " 'maybe'\n"),
        ("not toml = = =\n", {}, "fluxstack-otel: configuration error: config file '{file}': not"
         " valid TOML"),
    ],
    ids=["bad value", "unknown key", "bad variable", "bad syntax"],
)  # fmt: skip
def test_invalid_configuration_exits_1_with_the_error(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    file_text: str,
    environ: dict[str, str],
    message: str,
) -> None:
    """Exit status 1, the ConfigError on stderr, nothing on stdout."""
    config = tmp_path / "monitoring.toml"
    config.write_text(file_text)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config", str(config)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(message.replace("{file}", str(config)))


def test_a_missing_file_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A FILE that does not exist is a configuration error."""
    assert main(["check-config", str(tmp_path / "nope.toml")]) == 1
    assert "cannot read it" in capsys.readouterr().err


@pytest.mark.slow
def test_the_installed_command_exits_with_the_status(tmp_path: Path) -> None:
    """``python -m fluxstack_otel check-config`` as a process: 0 when valid, 1 when not."""
    env = {k: v for k, v in os.environ.items() if not _CONFIG_VARS.match(k)}
    command = [sys.executable, "-m", "fluxstack_otel", "check-config"]
    ok = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("fluxstack-otel: the configuration is valid\n")
    bad = subprocess.run(
        command,
        env={**env, "FLUXSTACK_MONITORING_MAX_SERIES_PER_METRIC": "0"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr == (
        "fluxstack-otel: configuration error: FLUXSTACK_MONITORING_MAX_SERIES_PER_METRIC:"
        " expected an integer >= 1, got 0\n"
    )
