"""Pushing the exposition to a Prometheus Pushgateway, for a prometheus entry with ``push_url``.

Every interval (and once more at shutdown, within its bound) the text 0.0.4 exposition that
``/metrics`` serves is sent with ``PUT <push_url>/metrics/job/<job>/instance/<instance>``, as
prometheus_client's ``push_to_gateway`` does: ``job`` is the service name and ``instance`` the
``service.instance.id`` of the resource, both read from each collection (so a forked worker
pushes under its own id, and a multiprocess host under the host's). A PUT replaces the whole
group, so a series the app no longer exports leaves the Pushgateway too. The work runs on the one
periodic scheduler; a failed push is retried with backoff inside its run, then reported through
``report_failure`` and tried again next interval, never raised. A URL with userinfo is sent as
Basic authentication and masked in every log line (``redact.mask_in_logs``).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from functools import partial
from urllib.parse import quote

from opentelemetry.sdk.metrics.export import MetricsData

from fluxstack_otel._internal.metrics.stream import MetricSource
from fluxstack_otel._internal.redact import mask_in_logs
from fluxstack_otel._internal.runtime.failures import report_failure
from fluxstack_otel._internal.runtime.scheduler import PeriodicWorker, Tick
from fluxstack_otel._internal.sinks.prometheus.exposition import (
    CONTENT_TYPE_TEXT,
    RenderOptions,
    render,
)
from fluxstack_otel._internal.transport.post import PostError, post, post_with_retries, public_url

__all__ = ["Pusher", "grouping_url"]

_TIMEOUT = 10.0  # seconds one PUT may take; the run's deadline bounds it too
_SERVICE_NAME = "service.name"
_INSTANCE_ID = "service.instance.id"


def _label_segment(name: str, value: str) -> str:
    # The Pushgateway's URL form: a value with '/' (or empty) goes base64url-encoded after '@base64'.
    if not value:
        return f"/{name}@base64/="
    if "/" in value:
        encoded = base64.urlsafe_b64encode(value.encode()).decode("ascii")
        return f"/{name}@base64/{encoded}"
    return f"/{name}/{quote(value, safe='')}"


def grouping_url(push_url: str, data: MetricsData) -> str:
    """The URL a collection is PUT to: ``<push_url>/metrics/job/<job>/instance/<instance>``.

    Args:
        push_url: The configured Pushgateway URL (a trailing ``/`` is ignored).
        data: The collection whose resource names the job and the instance.

    Returns:
        The group's URL, label values encoded as the Pushgateway expects.
    """
    job = instance = ""
    for rm in data.resource_metrics:
        attributes = rm.resource.attributes
        job = str(attributes.get(_SERVICE_NAME, "") or job)
        instance = str(attributes.get(_INSTANCE_ID, "") or instance)
        break
    job_segment = _label_segment("job", job or "unknown_service")
    return f"{push_url.rstrip('/')}/metrics{job_segment}{_label_segment('instance', instance)}"


class Pusher:
    """The periodic PUT of one prometheus entry's exposition to its Pushgateway.

    Args:
        push_url: The Pushgateway's base URL.
        source: The stream it pushes (each run reads its round's collection)
        options: What the exposition includes (the entry's).
        interval: Seconds between pushes.
        send: The single attempt (``transport.post.post`` with PUT), replaceable in tests.
    """

    def __init__(
        self,
        push_url: str,
        source: MetricSource,
        options: RenderOptions,
        interval: float,
        *,
        send: Callable[[str, bytes, Mapping[str, str], float], int] | None = None,
    ) -> None:
        mask_in_logs(push_url)
        self._url = push_url
        self._source = source
        self._options = options
        self._send = send or partial(post, method="PUT")
        self._headers = {"Content-Type": CONTENT_TYPE_TEXT}
        self.worker = PeriodicWorker(
            f"fluxstack-otel-pushgateway {public_url(push_url)}", interval, self._run
        )

    def push(self, tick: Tick) -> bool:
        """One run: render the exposition and PUT it, retrying within the run.

        Args:
            tick: The run; its deadline bounds the retries.

        Returns:
            True when the Pushgateway took it; a failure is reported, never raised.
        """
        try:
            data = self._source.collect_in(tick.round)  # the round's collection, shared
            body = render(data, openmetrics=False, options=self._options)
            target = grouping_url(self._url, data)
            post_with_retries(
                target, body, self._headers, timeout=_TIMEOUT, tick=tick, send=self._send
            )
        except PostError as exc:
            report_failure(f"pushing to the Pushgateway ({exc})", exc_info=False)
            return False
        except Exception:
            report_failure(f"pushing to the Pushgateway {public_url(self._url)}")
            return False
        return True

    def _run(self, tick: Tick) -> None:
        self.push(tick)
