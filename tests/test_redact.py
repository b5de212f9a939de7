"""The masking rules every log line, error and repr goes through."""

from fluxstack_otel._internal.redact import MASK, mask_url, redact_text


def test_a_url_keeps_its_host_and_port_but_not_its_userinfo() -> None:
    """A collector endpoint keeps its path; its userinfo and query are masked."""
    assert mask_url("https://u:pw@otel.example:4318/v1?k=v", keep_path=True) == (
        "https://otel.example:4318/v1?***"
    )


def test_a_webhook_url_loses_its_path() -> None:
    """Without keep_path the path, which carries a webhook's secret, becomes /***."""
    assert mask_url("https://hooks.example/services/T0/B0/SECRET", keep_path=False) == (
        "https://hooks.example/***"
    )


def test_text_loses_the_userinfo_of_every_url_in_it() -> None:
    """Free text keeps its words and hosts; each URL's userinfo becomes ***."""
    text = "POST http://alice:s3cret@127.0.0.1:9/hook failed; retry grpc://bob:pw@c:4317"
    out = redact_text(text)
    assert "s3cret" not in out
    assert "pw" not in out
    assert out == f"POST http://{MASK}@127.0.0.1:9/hook failed; retry grpc://{MASK}@c:4317"
