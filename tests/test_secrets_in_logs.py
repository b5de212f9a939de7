"""URL userinfo never reaches a log line: webhooks, the Alertmanager, OTLP gRPC, free text."""

from __future__ import annotations

import base64
import logging
import socket
import threading
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxstack_otel import configure_monitoring
from fluxstack_otel._internal.config.model import AlertmanagerNotifierConfig, WebhookNotifierConfig
from fluxstack_otel._internal.redact import MASK, mask_in_logs, redact_text, url_secrets
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.sinks.alerts.notify import (
    AlertmanagerNotifier,
    Delivery,
    WebhookNotifier,
)
from fluxstack_otel.alerts import Alert
from receivers import JsonReceiver

PASSWORD = "Pa55-w0rd-in-url"
T0 = 1_700_000_000.0


def alert() -> Alert:
    return Alert(
        name="Down",
        state="firing",
        severity="critical",
        value=1.0,
        threshold=0.5,
        operator=">",
        labels={},
        message="down",
        subject="up",
        active_at=T0,
        started_at=T0,
        ended_at=None,
    )


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("kind", ["webhook", "alertmanager"])
def test_a_failing_notifier_url_with_userinfo_logs_no_password(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook or Alertmanager at user:PASSWORD@ that refuses logs its host, not the password."""
    caplog.set_level(logging.DEBUG)
    port = closed_port()
    url = f"http://alice:{PASSWORD}@127.0.0.1:{port}/hook"
    notifier = (
        WebhookNotifier(
            WebhookNotifierConfig(url=url, timeout=0.2), service="s", first_backoff=0.01
        )
        if kind == "webhook"
        else AlertmanagerNotifier(AlertmanagerNotifierConfig(url=url, timeout=0.2), service="s")
    )
    notifier.deliver(Delivery(T0, (alert(),), (alert(),), 30.0))
    notifier.shutdown(5)
    assert f"127.0.0.1:{port}" in caplog.text  # the failure was logged, naming the host
    assert PASSWORD not in caplog.text
    assert "alice" not in caplog.text


def test_userinfo_in_a_webhook_url_is_sent_as_basic_auth_not_as_part_of_the_host() -> None:
    """http://user:pass@host/hook is delivered to host/hook with an Authorization: Basic header."""
    with JsonReceiver() as receiver:
        url = receiver.url.replace("http://", f"http://alice:{PASSWORD}@")
        notifier = WebhookNotifier(WebhookNotifierConfig(url=url), service="s")
        notifier.deliver(Delivery(T0, (alert(),), (alert(),), 30.0))
        notifier.shutdown(5)
        (post,) = receiver.posts
    assert post.path == "/hook"
    expected = base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
    assert post.headers["Authorization"] == f"Basic {expected}"


@pytest.mark.slow
def test_the_grpc_exporter_s_own_log_lines_mask_the_endpoint_userinfo(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The official gRPC exporter logs its target; from the package's threads it is masked."""
    from fluxstack_otel._internal.sinks.otlp import OtlpSink

    caplog.set_level(logging.DEBUG)
    port = closed_port()
    endpoint = f"http://bob:{PASSWORD}@127.0.0.1:{port}"
    monitoring = configure_monitoring(
        {
            "system_metrics": False,
            "set_global": False,
            "exporters": [
                {"type": "otlp", "endpoint": endpoint, "protocol": "grpc", "interval": 3600}
            ],
        }
    )
    outcome: list[bool] = []
    try:
        (sink,) = [s for s in monitoring._sinks if isinstance(s, OtlpSink)]
        assert monitoring._recorder is not None
        monitoring._recorder.record("GET", "/a", 200, None, 0.01, 0, 5, time.perf_counter())
        runner = threading.Thread(
            target=lambda: outcome.append(sink.export(1.0)), name="fluxstack-otel-otlp test"
        )
        runner.start()
        runner.join(20)
    finally:
        monitoring.shutdown(1.0)
    assert outcome == [False]
    exporter_lines = [r for r in caplog.records if r.name.startswith("opentelemetry.exporter")]
    assert exporter_lines, "the official exporter logged nothing to mask"
    assert any(f"{MASK}@127.0.0.1:{port}" in r.getMessage() for r in exporter_lines)
    assert PASSWORD not in caplog.text


def test_a_fragment_of_a_known_url_is_masked_in_the_package_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A library error quoting 'PASSWORD@host' (no scheme, no user) is masked once the URL is
    known to the package's log filter."""
    mask_in_logs(f"http://carol:{PASSWORD}x@127.0.0.1:9/hook")
    try:
        raise ValueError(f"nonnumeric port: '{PASSWORD}x@127.0.0.1:9'")
    except ValueError:
        report_failure(f"a test of masking {time.monotonic()}")
    assert "nonnumeric port" in caplog.text  # the traceback was logged
    assert f"{PASSWORD}x" not in caplog.text


_SAFE = st.text(st.sampled_from("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789-._~!$&'()*+,;=%"), min_size=1, max_size=20)  # fmt: skip


@given(user=_SAFE, password=_SAFE, scheme=st.sampled_from(["http://", "https://", "grpc://", ""]))
def test_redact_text_never_shows_a_password_of_a_url_or_target(
    user: str, password: str, scheme: str
) -> None:
    """Whatever the userinfo, a message quoting the URL or gRPC target keeps no password."""
    secret = f"Zq{password}"  # a prefix no other part of the message has
    target = f"{scheme}{user}:{secret}@127.0.0.1:4317"
    for text in (
        f"Failed to export metrics to {target}, error code: StatusCode.UNAVAILABLE",
        f"Transient error encountered while exporting metrics to {target}, retrying in 1s.",
        f"POST {target}/v1/metrics failed ('{target}')",
    ):
        assert secret not in redact_text(text, secrets=url_secrets(target))


def test_url_secrets_finds_the_userinfo_as_written_and_decoded() -> None:
    """A percent-encoded password is masked in both its encoded and its decoded form."""
    found = url_secrets("http://user:p%40ss-word@host/x")
    assert {"user:p%40ss-word", "user:p@ss-word", "p%40ss-word", "p@ss-word"} <= set(found)
    assert url_secrets("http://host/x") == ()
