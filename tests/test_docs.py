"""The documentation stays true: links resolve, the index is complete, references match the code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from fluxstack_otel import load_config
from fluxstack_otel._internal.metrics.catalog import BUILTIN_METRICS

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.glob("*.md"))]

# [text](target) but not ![image](...) nor an autolink <https://...>; code spans and fenced code
# blocks are removed before matching, so a link inside an example is not checked.
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)
_CODE = re.compile(r"`[^`\n]*`")
_TABLE_START = "<!-- metrics table: generated from _catalog.py, checked by tests/test_docs.py -->"
_TABLE_END = "<!-- end of metrics table -->"


def _prose(path: Path) -> str:
    return _CODE.sub("", _FENCE.sub("", path.read_text(encoding="utf-8")))


def _links(path: Path) -> list[str]:
    return _LINK.findall(_prose(path))


def _anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.*)$", _FENCE.sub("", path.read_text(encoding="utf-8")), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(page: Path) -> None:
    """Each relative link names an existing file (and an existing heading when it has a #)."""
    broken = []
    for target in _links(page):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (page.parent / file_part).resolve() if file_part else page
        if not resolved.exists():
            broken.append(f"{target} (no file {resolved})")
        elif anchor and resolved.suffix == ".md" and anchor not in _anchors(resolved):
            broken.append(f"{target} (no heading for #{anchor} in {resolved.name})")
    assert broken == [], f"{page.relative_to(ROOT)}: broken links"


def test_the_docs_index_links_every_document() -> None:
    """docs/README.md lists every page in docs/; a new page gets a line there."""
    linked = {(DOCS / t.partition("#")[0]).resolve() for t in _links(DOCS / "README.md")}
    documents = {p.resolve() for p in DOCS.iterdir() if p.suffix in (".md", ".json")}
    missing = sorted(p.name for p in documents - linked if p.name != "README.md")
    assert missing == [], "add a line for each to docs/README.md"


def test_the_project_readme_links_the_docs() -> None:
    """The project README points to the documentation index and the getting-started guide."""
    links = _links(ROOT / "README.md")
    assert "docs/README.md" in links
    assert "docs/getting-started.md" in links


def _metrics_table() -> str:
    rows = [
        "| Metric | Type | Unit | Labels | Help |",
        "| --- | --- | --- | --- | --- |",
    ]
    for spec in BUILTIN_METRICS:
        labels = ", ".join(f"`{label}`" for label in spec.labels) or "none"
        rows.append(f"| `{spec.name}` | {spec.kind} | `{spec.unit}` | {labels} | {spec.help} |")
    return "\n".join(rows)


def test_metrics_reference_table_is_the_catalogue() -> None:
    """The table in docs/metrics.md is what the catalogue generates, row for row."""
    text = (DOCS / "metrics.md").read_text(encoding="utf-8")
    start, end = text.index(_TABLE_START) + len(_TABLE_START), text.index(_TABLE_END)
    assert text[start:end].strip() == _metrics_table(), (
        "docs/metrics.md is out of date; the table should read:\n" + _metrics_table()
    )


def test_metrics_reference_explains_every_metric() -> None:
    """Beyond the table, every catalogue metric has its own "how measured" entry."""
    text = (DOCS / "metrics.md").read_text(encoding="utf-8")
    explained = text.split(_TABLE_END, 1)[1]
    for spec in BUILTIN_METRICS:
        assert f"**`{spec.name}`**" in explained, spec.name


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", path.read_text(encoding="utf-8"), re.M | re.S)


def test_migration_guide_examples_are_the_same_config() -> None:
    """The guide's FluxStack-style object and its snake_case twin load to the same config."""
    captured: list[Any] = []

    def configure_monitoring(config: Any) -> Any:
        captured.append(load_config(config))
        return _Handle()

    for block in _python_blocks(DOCS / "migrating-from-fluxstack.md")[:2]:
        code = block.replace("from fluxstack_otel import configure_monitoring\n", "")
        exec(code, {"configure_monitoring": configure_monitoring, "app": object()})
    fluxstack, native = captured
    assert fluxstack == native


class _Handle:
    def instrument(self, app: object) -> object:
        return app
