"""The ``auth`` section of the configuration: who may read the monitoring endpoints.

Part of the configuration model (``model`` re-exports every name). A secret is never echoed in
an error, not even a wrong one, and the classes' ``repr`` masks them; a secret may come from an
environment variable named by a ``*_env`` key, read when the configuration is loaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

from fluxstack_otel._internal.config.checks import (
    CHECK,
    fail,
    items,
    join,
    key_of,
    optional_text,
    text,
)
from fluxstack_otel._internal.config.fields import build, option, validate
from fluxstack_otel.errors import ConfigError

__all__ = ["AuthConfig", "BasicAuthConfig", "parse_auth"]


def _secret(value: object, path: str, camel: bool) -> str | None:
    if value is None:
        return None
    if isinstance(value, str) and value and "\r" not in value and "\n" not in value:
        return str.__str__(value)
    # A secret is never echoed, not even a wrong one: name its type only.
    shown = (
        "an empty string or one with a line break"
        if isinstance(value, str)
        else type(value).__name__
    )
    raise ConfigError(
        f"expected a non-empty string without line breaks or null, got {shown}", path=path
    )


def _from_env(
    value: str | None, variable: str | None, path: str, key: str, camel: bool
) -> str | None:
    """The secret itself, or the value of the environment variable ``variable`` names."""
    if variable is None:
        return value
    name, env_name = key_of(key, camel), key_of(f"{key}_env", camel)
    if value is not None:
        raise ConfigError(f"{name!r} and {env_name!r} are both set; keep one", path=path)
    found = os.environ.get(variable)
    if not found or "\r" in found or "\n" in found:
        raise ConfigError(
            f"environment variable {variable!r} is unset, empty or holds a line break",
            path=join(path, env_name),
        )
    return found


def _networks(value: object, path: str, camel: bool) -> tuple[str, ...]:
    out = []
    for i, item in enumerate(items(value, path)):
        try:
            if not isinstance(item, str):
                raise ValueError(item)
            import ipaddress

            out.append(str(ipaddress.ip_network(str.__str__(item).strip(), strict=False)))
        except ValueError:
            allowed = "an IP network such as '10.0.0.0/8' or '::1'"
            raise fail(f"{path}[{i}]", allowed, item) from None
    return tuple(out)


@dataclass(frozen=True, kw_only=True, repr=False)  # its own __repr__ masks secrets
class BasicAuthConfig:
    """HTTP basic credentials of the monitoring endpoints; ``repr`` masks the password."""

    username: str = field(
        metadata={CHECK: text("a non-empty string without ':'", lambda t: bool(t) and ":" not in t)}
    )
    """The user name (required)."""
    password: str | None = option(None, _secret)
    """The password; one of ``password`` and ``password_env`` is required."""
    password_env: str | None = option(None, optional_text)
    """The environment variable holding the password, read when the config is loaded."""

    def __post_init__(self) -> None:
        validate(self)

    def __repr__(self) -> str:
        return (
            f"BasicAuthConfig(username={self.username!r}, password='***',"
            f" password_env={self.password_env!r})"
        )


def _basic(value: object, path: str, camel: bool) -> BasicAuthConfig | None:
    if value is None or isinstance(value, BasicAuthConfig):
        return value
    config = build(BasicAuthConfig, value, path, camel)
    password = _from_env(config.password, config.password_env, path, "password", camel)
    if password is None:
        keys = f"{key_of('password', camel)!r} or {key_of('password_env', camel)!r}"
        raise ConfigError(f"missing required key {keys}", path=path)
    return replace(config, password=password)


@dataclass(frozen=True, kw_only=True, repr=False)  # its own __repr__ masks secrets
class AuthConfig:
    """Who may read the monitoring endpoints (docs/security.md); ``repr`` masks the secrets."""

    bearer_token: str | None = option(None, _secret)
    """The token of an ``Authorization: Bearer`` header."""
    bearer_token_env: str | None = option(None, optional_text)
    """The environment variable holding the token, read when the config is loaded."""
    basic: BasicAuthConfig | None = option(None, _basic)
    """HTTP basic credentials; with a token as well, either one lets a request through."""
    allow_networks: tuple[str, ...] = option((), _networks)
    """Client networks allowed (``127.0.0.0/8``, ``10.0.0.0/8``, ``::1``); empty allows all."""

    @property
    def restricts(self) -> bool:
        """True when the section sets a rule (without one the endpoints are open)."""
        return self.bearer_token is not None or self.basic is not None or bool(self.allow_networks)

    def __post_init__(self) -> None:
        validate(self)

    def __repr__(self) -> str:
        token = None if self.bearer_token is None else "***"
        return (
            f"AuthConfig(bearer_token={token!r}, bearer_token_env={self.bearer_token_env!r},"
            f" basic={self.basic!r}, allow_networks={self.allow_networks!r})"
        )


def parse_auth(value: object, path: str, camel: bool) -> AuthConfig:
    """The ``auth`` section; the ``*_env`` keys are read from the environment here."""
    if isinstance(value, AuthConfig):
        return value
    config = build(AuthConfig, value, path, camel)
    token = _from_env(config.bearer_token, config.bearer_token_env, path, "bearer_token", camel)
    return replace(config, bearer_token=token)
