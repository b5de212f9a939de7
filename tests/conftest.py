"""Shared fixtures: real servers with a bounded life, built on ``servers.py``.

A fixture whose binary is absent skips the test with the package to install; tests that call the
``servers`` helpers directly use its ``requires_*`` marks instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from autoinst import write_entry_points
from servers import (
    ALERTMANAGER_MISSING,
    PROMETHEUS_MISSING,
    AlertmanagerServer,
    ASGIApp,
    PrometheusServer,
    alertmanager_path,
    prometheus_path,
    serve_asgi,
)
from support.pipeline import Pipeline


@pytest.fixture(scope="module")
def entry_dir(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Where the declared entry points are visible to subprocesses (None: installed already)."""
    return write_entry_points(tmp_path_factory.mktemp("entry-points"))


@pytest.fixture
def serve() -> Iterator[Callable[[ASGIApp], str]]:
    """``serve(app) -> "http://127.0.0.1:PORT"``: real uvicorn, stopped when the test ends."""
    with ExitStack() as stack:

        def start(app: ASGIApp) -> str:
            return stack.enter_context(serve_asgi(app))

        yield start


@pytest.fixture
def pipeline() -> Iterator[Pipeline]:
    """A ``support.pipeline.Pipeline`` (recorder, SDK provider, stream), shut down at the end."""
    p = Pipeline()
    yield p
    p.close()


@pytest.fixture
def prometheus() -> Iterator[Callable[..., PrometheusServer]]:
    """``prometheus(targets, **options)``: a started ``PrometheusServer``, stopped at the end."""
    if prometheus_path() is None:
        pytest.skip(PROMETHEUS_MISSING)
    with ExitStack() as stack:

        def start(targets: list[str], **options: Any) -> PrometheusServer:
            return stack.enter_context(PrometheusServer(targets, **options))

        yield start


@pytest.fixture
def alertmanager() -> Iterator[AlertmanagerServer]:
    """A started ``AlertmanagerServer``, stopped when the test ends."""
    if alertmanager_path() is None:
        pytest.skip(ALERTMANAGER_MISSING)
    with AlertmanagerServer() as server:
        yield server
