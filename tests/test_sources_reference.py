"""docs/configuration.md is generated from the config model and the source table, and kept so."""

from __future__ import annotations

from pathlib import Path

from fluxstack_otel._internal.config.model import PARAMETERS
from fluxstack_otel._internal.config.reference import render_reference
from fluxstack_otel._internal.config.sources import ENV_VARS

PAGE = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"


def test_the_reference_page_matches_the_model() -> None:
    """The page is exactly what the model generates; regenerate it when the model changes."""
    assert PAGE.read_text(encoding="utf-8") == render_reference(), (
        "docs/configuration.md is out of date: "
        "python -m fluxstack_otel._internal.config.reference > docs/configuration.md"
    )


def test_the_reference_names_every_key_and_variable() -> None:
    """Every top-level key has a row, and every variable read appears in the page."""
    page = render_reference()
    for p in PARAMETERS:
        assert f"| `{p.name}` | `{p.camel_name}` |" in page
    for var in ENV_VARS:
        assert f"| `{var.name}` | `{var.key}` |" in page
