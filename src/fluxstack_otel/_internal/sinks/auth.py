"""Protection of the monitoring endpoints: client networks first, then credentials.

``/metrics``, the JSON endpoint and the dashboard answer anyone who can reach them unless the
``auth`` section says otherwise. A ``Guard`` holds the rules of that section and judges one
request from two facts: the client address and the ``Authorization`` header. It serves both
places endpoints live: ``protect`` wraps the endpoints the middleware serves, and the standalone
Prometheus server asks the same ``Guard`` (``exporters/_prometheus.py``).

The order and the answers:

1. ``allow_networks`` set and the client address outside every network (or unknown, as over a
   Unix socket): ``403`` with the fixed body ``Forbidden``. Credentials do not help.
2. A bearer token or basic credentials set and the request carries neither correct one: ``401``
   with one ``WWW-Authenticate`` challenge per configured scheme and the fixed body
   ``Unauthorized``.

A refused request never reaches the endpoint, so no metric is collected and no metric name is in
the answer. Secrets are compared as SHA-256 digests with ``hmac.compare_digest``: the time taken
depends neither on the secret nor on how much of it a guess shares, nor on the secret's length.

Cost: nothing on the request path of the app. Only endpoint paths are wrapped, so requests to the
app never meet the guard.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple, TypeAlias

from fluxstack_otel._internal.asgi_types import Receive, Scope, Send

if TYPE_CHECKING:
    import ipaddress

    from fluxstack_otel._internal.config.model import AuthConfig
    from fluxstack_otel._internal.sinks.base import Endpoint

__all__ = ["Denial", "Guard", "ProtectedEndpoint", "protect"]


# hashlib, hmac, base64 and ipaddress are imported where a guard first needs them: an app without
# an ``auth`` section never loads them.
_Network: TypeAlias = "ipaddress.IPv4Network | ipaddress.IPv6Network"
_REALM = 'realm="metrics"'


class Denial(NamedTuple):
    """The answer to a refused request.

    Attributes:
        status: 401 (credentials missing or wrong) or 403 (client network not allowed).
        body: A fixed short body that says nothing about the metrics.
        headers: The response headers, lowercase names, as ASGI wants them.
    """

    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...]


def _denial(status: int, body: bytes, *extra: tuple[bytes, bytes]) -> Denial:
    headers = (
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *extra,
    )
    return Denial(status, body, headers)


_FORBIDDEN = _denial(403, b"Forbidden")


def _digest(value: bytes) -> bytes:
    import hashlib

    return hashlib.sha256(value).digest()


class Guard:
    """The access rules of the monitoring endpoints.

    Args:
        bearer_token: The token a ``Authorization: Bearer <token>`` header must carry.
        basic: ``(username, password)`` a ``Authorization: Basic ...`` header must carry.
        networks: Client networks allowed, as ``ipaddress`` network strings; empty allows all.

    Raises:
        ValueError: A network does not parse (``load_config`` has checked them already).
    """

    __slots__ = ("_basic", "_networks", "_token", "_unauthorized")

    def __init__(
        self,
        *,
        bearer_token: str | None = None,
        basic: tuple[str, str] | None = None,
        networks: Sequence[str] = (),
    ) -> None:
        self._token = None if bearer_token is None else _digest(bearer_token.encode())
        self._basic = (
            None if basic is None else (_digest(basic[0].encode()), _digest(basic[1].encode()))
        )
        import ipaddress

        self._networks: tuple[_Network, ...] = tuple(
            ipaddress.ip_network(n, strict=False) for n in networks
        )
        challenges = []
        if self._token is not None:
            challenges.append((b"www-authenticate", f"Bearer {_REALM}".encode()))
        if self._basic is not None:
            challenges.append((b"www-authenticate", f'Basic {_REALM}, charset="UTF-8"'.encode()))
        self._unauthorized = _denial(401, b"Unauthorized", *challenges)

    @classmethod
    def from_config(cls, auth: AuthConfig) -> Guard | None:
        """The guard of an ``auth`` section, or None when the section sets no rule."""
        if not auth.restricts:
            return None
        basic = None
        if auth.basic is not None and auth.basic.password is not None:
            basic = (auth.basic.username, auth.basic.password)
        return cls(bearer_token=auth.bearer_token, basic=basic, networks=auth.allow_networks)

    def check(self, client_host: str | None, authorization: str | None) -> Denial | None:
        """Judge one request.

        Args:
            client_host: The client's IP address as text (``scope["client"][0]``), or None.
            authorization: The ``Authorization`` header's value, or None.

        Returns:
            None when the request may reach the endpoint, else the answer to send instead.
        """
        if self._networks and not self._allowed(client_host):
            return _FORBIDDEN
        if self._token is None and self._basic is None:
            return None
        if authorization is not None and self._credentials_match(authorization):
            return None
        return self._unauthorized

    def _allowed(self, host: str | None) -> bool:
        if host is None:
            return False
        import ipaddress

        try:
            address = ipaddress.ip_address(host.split("%", 1)[0])  # drop an IPv6 zone
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # a dual-stack socket reports ::ffff:10.0.0.1
        return any(address in network for network in self._networks)

    def _credentials_match(self, authorization: str) -> bool:
        import base64
        import binascii
        import hmac

        scheme, _, value = authorization.strip().partition(" ")
        scheme = scheme.lower()
        value = value.strip()
        if scheme == "bearer" and self._token is not None:
            return hmac.compare_digest(_digest(value.encode("latin-1", "replace")), self._token)
        if scheme == "basic" and self._basic is not None:
            try:
                decoded = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
            user, sep, password = decoded.partition(b":")
            if not sep:
                return False
            # Both halves are always compared, so a right username takes no longer to refuse.
            user_ok = hmac.compare_digest(_digest(user), self._basic[0])
            password_ok = hmac.compare_digest(_digest(password), self._basic[1])
            return user_ok & password_ok
        return False

    def __repr__(self) -> str:
        schemes = [n for n, s in (("bearer", self._token), ("basic", self._basic)) if s]
        networks = [str(n) for n in self._networks]
        return f"<Guard schemes={schemes!r} networks={networks!r}>"


class ProtectedEndpoint:
    """An endpoint that runs only for requests its guard lets through.

    Args:
        endpoint: The ASGI endpoint to protect.
        guard: The rules.
    """

    __slots__ = ("_endpoint", "_guard")

    def __init__(self, endpoint: Endpoint, guard: Guard) -> None:
        self._endpoint = endpoint
        self._guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        denial = self._guard.check(_client_host(scope), _authorization(scope))
        if denial is None:
            await self._endpoint(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": denial.status,
                    "headers": list(denial.headers)})  # fmt: skip
        body = b"" if scope.get("method") == "HEAD" else denial.body
        await send({"type": "http.response.body", "body": body})


def protect(endpoints: Mapping[str, Endpoint], guard: Guard | None) -> dict[str, Endpoint]:
    """Wrap every endpoint with ``guard``; without a guard, the endpoints as they are."""
    if guard is None:
        return dict(endpoints)
    return {path: ProtectedEndpoint(endpoint, guard) for path, endpoint in endpoints.items()}


def _client_host(scope: Scope) -> str | None:
    client = scope.get("client")
    if isinstance(client, list | tuple) and client and isinstance(client[0], str):
        return client[0]
    return None


def _authorization(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if isinstance(key, bytes) and key.lower() == b"authorization":
            return value.decode("latin-1") if isinstance(value, bytes) else None
    return None
