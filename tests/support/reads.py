"""How often a scrape reads every series for the text (``http/tally.py``'s ``tally``)."""

from __future__ import annotations

from typing import Any

import pytest

from fluxstack_otel._internal.http import recorder as recorder_module


def tally_reads(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that gains an item each time the recorder tallies its series from now on."""
    reads: list[int] = []
    tally = recorder_module.tally

    def counted(*args: Any) -> Any:
        reads.append(1)
        return tally(*args)

    monkeypatch.setattr(recorder_module, "tally", counted)
    return reads
