"""The HTTP text kept between scrapes is compressed, and an idle gzip scrape sends it as it is.

Kept as text, the HTTP scope of 1,000 label sets held 2.8 MB for the next scrape: three times the
series it was written from. Kept as a raw deflate fragment it is about 24 times smaller. A gzip
scrape splices the fragment into its member and combines its CRC-32 with the member's; a plain
scrape inflates it. What a scraper reads must stay the exposition a fresh render gives, in every
order of plain and gzip scrapes, with a head (``target_info``) and a tail (``# EOF``) around it,
and the gzip member must be one that checks (``gzip.decompress`` verifies its CRC and length).
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from fluxstack_otel import Monitoring, configure_monitoring
from fluxstack_otel._internal.sinks.prometheus import deflate, exposition, reuse
from fluxstack_otel._internal.sinks.prometheus.deflate import (
    Deflated,
    GzipBody,
    crc32_combine,
)
from support.asgi import drive
from support.configs import SCRAPED
from support.reads import tally_reads

ROUTES = 200
OPENMETRICS = b"application/openmetrics-text; version=1.0.0"


async def _ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


app_routes = Starlette(routes=[Route(f"/r{i}", _ok) for i in range(ROUTES)])


@given(st.binary(max_size=3000), st.binary(max_size=3000))
def test_the_combined_crc_is_the_crc_of_the_joined_bytes(a: bytes, b: bytes) -> None:
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_the_combined_crc_holds_past_a_megabyte() -> None:
    a, b = b"target_info 1\n" * 7, bytes(range(256)) * 5000
    assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def _fragment(text: bytes) -> Deflated:
    """``text`` kept as a gzip scrape keeps it, after other text in its member."""
    body = GzipBody(1 << 20)
    body.start()
    body.write(b"before\n")
    body.begin()
    for at in range(0, len(text), 100):
        body.write(text[at : at + 100])
    _, fragment = body.end()
    assert fragment is not None
    return fragment


def test_a_spliced_fragment_makes_one_gzip_member_that_checks() -> None:
    text = "".join(f'route="/é{i}",status="200"}} {i}\n' for i in range(2000)).encode()
    fragment = _fragment(text)
    assert fragment.size == len(text)
    assert fragment.crc == zlib.crc32(text)
    assert sum(map(len, fragment.blocks)) < len(text) // 5
    member = GzipBody(1 << 20)
    out = [member.start(), member.write(b"# HELP target_info\n")]
    out += list(member.splice(fragment))
    out += [member.write(b"process_cpu 1\n# EOF\n"), member.finish()]
    body = b"".join(out)
    assert b"".join(fragment.blocks) in body  # sent as it is, not compressed again
    inflate = zlib.decompressobj(31)  # exactly one member, nothing after it
    assert inflate.decompress(body) == b"# HELP target_info\n" + text + b"process_cpu 1\n# EOF\n"
    assert inflate.eof
    assert not inflate.unused_data
    assert gzip.decompress(body).endswith(b"# EOF\n")  # CRC and length checked


def test_a_fragment_inflates_in_bounded_chunks_and_whole_characters() -> None:
    text = "é€𝄞 " * 5000  # characters of 2, 3 and 4 bytes, cut anywhere by the chunks
    fragment = _fragment(text.encode())
    chunks = list(fragment.chunks(7))
    assert max(map(len, chunks)) <= 7
    assert b"".join(chunks) == text.encode()
    assert "".join(fragment.texts(7)) == text


@pytest.fixture
def monitoring(monkeypatch: pytest.MonkeyPatch) -> Iterator[Monitoring]:
    monkeypatch.setattr(exposition, "CHUNK", 4096)  # many chunks either side of the fragment
    monkeypatch.setattr(reuse, "PIECE", 1024)
    # target_info and scope labels: text before the HTTP scope, and labels in it
    exporter = {**SCRAPED["exporters"][0], "target_info": True, "scope_labels": True}
    m = configure_monitoring({**SCRAPED, "exporters": [exporter]})
    try:
        yield m
    finally:
        m.shutdown()


def _feed(app: Any, routes: range) -> None:
    async def go() -> None:
        for i in routes:
            await drive(app, _scope(f"/r{i}"))

    asyncio.run(go())


def _scope(path: str, gzip_ok: bool = False, openmetrics: bool = False) -> dict[str, Any]:
    headers = [(b"accept-encoding", b"gzip")] if gzip_ok else []
    if openmetrics:
        headers.append((b"accept", OPENMETRICS))
    return {"type": "http", "method": "GET", "path": path, "raw_path": path.encode(),
            "query_string": b"", "headers": headers, "root_path": ""}  # fmt: skip


def _scrape(app: Any, compressed: bool, openmetrics: bool) -> bytes:
    sent = asyncio.run(drive(app, _scope("/metrics", compressed, openmetrics)))
    body = b"".join(m["body"] for m in sent if m["type"] == "http.response.body")
    return gzip.decompress(body) if compressed else body


def _fresh(monitoring: Monitoring, openmetrics: bool) -> bytes:
    exposition_ = _endpoint(monitoring)._exposition
    return b"".join(
        reuse.Exposition(exposition_._collect, None, exposition_._options).stream(openmetrics)
    )


def _endpoint(monitoring: Monitoring) -> Any:
    return next(s for s in monitoring._sinks if type(s).__name__ == "PrometheusSink")._endpoint


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
@pytest.mark.parametrize(
    "order",
    [(True, True, False), (False, True, True), (True, False, True)],
    ids=["gzip-gzip-plain", "plain-gzip-gzip", "gzip-plain-gzip"],
)
def test_every_order_of_plain_and_gzip_scrapes_reads_a_fresh_render(
    monitoring: Monitoring,
    monkeypatch: pytest.MonkeyPatch,
    openmetrics: bool,
    order: tuple[bool, ...],
) -> None:
    app = monitoring.instrument(app_routes)
    _feed(app, range(ROUTES))
    reads = tally_reads(monkeypatch)
    fresh = _fresh(monitoring, openmetrics)
    assert fresh.startswith(b"# HELP target")  # the head before the HTTP scope
    for compressed in order:
        assert _scrape(app, compressed, openmetrics) == fresh
    # Plain scrapes write the text and keep nothing; the first gzip one keeps its fragment,
    # which every scrape after it uses.
    assert len(reads) == order.index(True) + 1
    kept = _endpoint(monitoring)._exposition._kept[openmetrics].current()[1]
    assert isinstance(kept.text, Deflated)
    assert sum(map(len, kept.text.blocks)) < kept.text.size // 10
    # A request between two scrapes always shows.
    _feed(app, range(1))
    after = _scrape(app, order[0], openmetrics)
    assert after == _fresh(monitoring, openmetrics) != fresh
    assert len(reads) == order.index(True) + 2


def test_a_plain_scrape_keeps_nothing_and_inflates_what_gzip_kept(
    monitoring: Monitoring, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Compressing would be work a plain scrape does only to keep the text: it keeps nothing
    and compresses nothing, while a gzip scrape keeps what it sends, which a plain one inflates."""
    app = monitoring.instrument(app_routes)
    _feed(app, range(ROUTES))
    kept = _endpoint(monitoring)._exposition._kept[False]
    made = []
    compressobj = zlib.compressobj
    monkeypatch.setattr(deflate.zlib, "compressobj", lambda *a: made.append(a) or compressobj(*a))
    fresh = _fresh(monitoring, False)
    assert _scrape(app, False, False) == fresh
    assert kept.current()[1] is None
    assert made == []
    assert _scrape(app, True, False) == fresh
    assert len(made) == 1  # the gzip member's own compressor
    assert isinstance(kept.current()[1].text, Deflated)
    reads = tally_reads(monkeypatch)
    assert _scrape(app, False, False) == fresh
    assert reads == []
