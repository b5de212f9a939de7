"""``Alert``: what callbacks, notifiers, ``monitoring.alerts()`` and the JSON document receive."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from fluxstack_otel._internal.metrics.points import rfc3339

__all__ = ["Alert", "AlertState", "rfc3339"]

AlertState: TypeAlias = Literal["pending", "firing", "resolved"]


@dataclass(frozen=True, kw_only=True)
class Alert:
    """One alert instance (a rule and one series' label set) at one moment.

    Callbacks and notifiers receive ``state`` ``"firing"`` (first notification or a repeat) or
    ``"resolved"``; ``monitoring.alerts()`` lists the ``"pending"`` and ``"firing"`` ones.

    Attributes:
        name: The rule's name (``alertname`` in Alertmanager).
        state: ``"pending"``, ``"firing"`` or ``"resolved"``.
        severity: ``"info"``, ``"warning"``, ``"error"`` or ``"critical"``.
        value: The last evaluated value, in the rule's unit (ms for the ``_ms`` alias).
        threshold: The value it is compared with.
        operator: The comparison, such as ``">"``.
        labels: The series' labels (empty for built-in threshold rules, which read every series).
        message: The rendered notification text.
        subject: What is compared, such as ``"http_request_duration_ms p95"``.
        active_at: Unix time the condition first held (the start of ``pending``).
        started_at: Unix time the alert started firing; None while pending.
        ended_at: Unix time it resolved; None unless resolved.
        repeat: True for a re-notification of an alert that was already firing.
    """

    name: str
    state: AlertState
    severity: str
    value: float
    threshold: float
    operator: str
    labels: Mapping[str, str]
    message: str
    subject: str
    active_at: float
    started_at: float | None = None
    ended_at: float | None = None
    repeat: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: times as RFC 3339 strings, a non-finite value as None."""
        return {
            "name": self.name,
            "state": self.state,
            "severity": self.severity,
            "value": self.value if math.isfinite(self.value) else None,
            "threshold": self.threshold,
            "operator": self.operator,
            "labels": dict(self.labels),
            "message": self.message,
            "subject": self.subject,
            "active_at": rfc3339(self.active_at),
            "started_at": None if self.started_at is None else rfc3339(self.started_at),
            "ended_at": None if self.ended_at is None else rfc3339(self.ended_at),
        }
