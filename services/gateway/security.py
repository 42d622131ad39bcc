"""The gateway's edge protections: per-client rate limiting, security headers, CORS and the admin key check.

Nothing here knows about artworks; :mod:`services.gateway.app` wires these into the HTTP layer.
"""

from __future__ import annotations

import contextlib
import hmac
import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from services.common import errors
from services.common.errors import ConfigurationError

API_CONTENT_SECURITY_POLICY = "default-src 'none'; frame-ancestors 'none'"
"""CSP of API answers (JSON, images): they load nothing and may not be framed. Pages set their own."""

SECURITY_HEADERS: dict[str, str] = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": API_CONTENT_SECURITY_POLICY,
}
"""Headers every gateway response carries unless the route set its own value (the web page sets its CSP)."""

_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by client: ``per_minute`` tokens refill each minute, at most ``burst`` saved up.

    Memory is bounded: beyond ``max_clients`` keys the least recently seen client is forgotten (it starts again
    with a full bucket, which errs on the side of serving). Used from the event loop only, so no lock.

    Args:
        per_minute: sustained requests a minute per client; 0 disables limiting.
        burst: requests a client may send at once after being idle.
        max_clients: most clients tracked at a time.
        clock: monotonic seconds (a test seam).
    """

    def __init__(
        self,
        per_minute: int,
        burst: int,
        *,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.burst = max(1, burst)
        self.max_clients = max_clients
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    @property
    def enabled(self) -> bool:
        """Whether requests are limited at all."""
        return self.per_minute > 0

    def acquire(self, client: str) -> float:
        """Take one token for ``client``: 0.0 when allowed, else the seconds until a token is available."""
        if not self.enabled:
            return 0.0
        now = self._clock()
        rate = self.per_minute / 60.0
        bucket = self._buckets.pop(client, None) or _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        self._buckets[client] = bucket
        if len(self._buckets) > self.max_clients:
            self._buckets.popitem(last=False)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def check(self, client: str) -> None:
        """Take one token or raise.

        Raises:
            RateLimited: with ``details.retry_after_s`` (whole seconds, at least 1), sent as ``Retry-After``.
        """
        wait = self.acquire(client)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise errors.RateLimited(
                f"too many requests; try again in {retry_after} s",
                details={"retry_after_s": retry_after, "limit_per_minute": self.per_minute, "burst": self.burst},
            )


class AdmissionGate:
    """A bound on the ``/identify`` requests being answered at once: one more is refused at once.

    Past the bound, the backends' queues only grow and every answer gets later, until callers time out. Refusing at
    once with 503 ``overloaded`` and ``Retry-After`` lets a client (or the load balancer) try another replica or
    wait, and keeps the answers in progress fast. Used from the event loop only; 0 turns the bound off.
    """

    def __init__(self, max_in_flight: int, *, retry_after_s: int = 1) -> None:
        self.max_in_flight = max_in_flight
        self.retry_after_s = max(1, retry_after_s)
        self.in_flight = 0

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one place for the block.

        Raises:
            Overloaded: ``max_in_flight`` requests are already being answered; ``details.retry_after_s`` is sent
                as ``Retry-After``.
        """
        if 0 < self.max_in_flight <= self.in_flight:
            raise errors.Overloaded(
                f"the gateway is answering {self.in_flight} photos already; try again in {self.retry_after_s} s",
                details={
                    "in_flight": self.in_flight,
                    "max_in_flight": self.max_in_flight,
                    "retry_after_s": self.retry_after_s,
                },
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1


def client_address(peer: str | None, forwarded_for: str | None, trusted_hops: int) -> str:
    """The address to rate-limit: the socket peer, or the one ``trusted_hops`` proxies saw (``X-Forwarded-For``).

    Each trusted proxy (a load balancer, say) appends the address it received the request from, so the entry
    ``trusted_hops`` from the right is the last one a trusted party vouches for; entries left of it are the
    client's own claims and could be forged.
    """
    if trusted_hops > 0 and forwarded_for:
        entries = [e.strip() for e in forwarded_for.split(",") if e.strip()]
        if entries:
            return entries[max(0, len(entries) - trusted_hops)]
    return peer or "unknown"


def check_cors(origins: list[str], allow_credentials: bool) -> None:
    """Refuse CORS settings that would let any site act with a visitor's credentials, or malformed origins.

    Raises:
        ConfigurationError: naming the setting to change.
    """
    if "*" in origins and allow_credentials:
        raise ConfigurationError(
            "GATEWAY_CORS_ORIGINS contains '*' while GATEWAY_CORS_ALLOW_CREDENTIALS is true: any web site could "
            "call the API with a visitor's credentials. List the allowed origins explicitly "
            "(GATEWAY_CORS_ORIGINS='[\"https://museum.example\"]') or set GATEWAY_CORS_ALLOW_CREDENTIALS=false"
        )
    for origin in origins:
        if origin != "*" and not _ORIGIN.fullmatch(origin):
            raise ConfigurationError(
                f"GATEWAY_CORS_ORIGINS entry {origin!r} is not an origin; write scheme://host[:port] with no path "
                "or trailing slash, e.g. https://museum.example"
            )


def read_secret(value: SecretStr | None, file: Path | None, name: str) -> SecretStr | None:
    """A secret given directly (``<NAME>``) or as a file (``<NAME>_FILE``, e.g. a mounted secret), never both.

    The file's surrounding white space (a trailing newline) is ignored.

    Raises:
        ConfigurationError: both are set, or the file is unreadable or empty.
    """
    if file is None:
        return value
    if value is not None:
        raise ConfigurationError(f"set either {name} or {name}_FILE, not both")
    try:
        text = Path(file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{name}_FILE {file} cannot be read ({type(exc).__name__}); fix the path") from exc
    if not text:
        raise ConfigurationError(f"{name}_FILE {file} is empty; put the key in it or unset {name}_FILE")
    return SecretStr(text)


async def add_security_headers(message: Any, scope: Any) -> None:
    """``before_send`` hook: the :data:`SECURITY_HEADERS` a response does not set itself.

    The interactive API docs under ``/schema`` load their scripts from elsewhere, so they get no API CSP (their
    JSON document does).
    """
    if message["type"] != "http.response.start":
        return
    headers: list[tuple[bytes, bytes]] = list(message.get("headers") or [])
    present = {name.lower() for name, _ in headers}
    path = str(scope.get("path", ""))
    docs_page = path.startswith("/schema") and not path.endswith(".json")
    for name, value in SECURITY_HEADERS.items():
        if name.encode() in present or (docs_page and name == "content-security-policy"):
            continue
        headers.append((name.encode(), value.encode()))
    message["headers"] = headers


API_KEY_HEADER = "x-api-key"
"""The request header carrying the admin key."""


def check_api_key(given: str | None, key: SecretStr | None) -> None:
    """Let an admin request through or raise; ``key`` None means the admin endpoints are disabled.

    The key is compared in constant time.

    Raises:
        Forbidden: no admin key is configured.
        Unauthorized: ``given`` (the ``X-API-Key`` header) is missing or holds another key.
    """
    if key is None:
        raise errors.Forbidden("admin endpoints are disabled: set GATEWAY_API_KEY to enable them")
    if not hmac.compare_digest((given or "").encode(), key.get_secret_value().encode()):
        raise errors.Unauthorized("a valid X-API-Key header is required")
