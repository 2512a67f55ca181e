"""Shared pieces of the simulated platform APIs: requests, responses, routes, data.

Each platform module subclasses :class:`PlatformApi`: it generates the data of one
sandbox user from a seeded random generator, lists its routes, and shapes error
bodies and rate-limit headers the way the real platform does.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

# Every generated timestamp lies before this instant, so the data never depends on
# the clock of the machine that serves it.
DATA_END = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)

BASE62 = string.digits + string.ascii_letters


@dataclass
class ApiRequest:
    """One authenticated API call, as passed to a route handler."""

    platform: str
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Any  # http.client.HTTPMessage: case-insensitive get()
    api_root: str
    user: dict
    user_index: int
    scopes: frozenset[str]
    client_id: str
    # Seconds until the access token expires, or None when it never expires.
    expires_in: int | None = None
    route_name: str = ""
    path_params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str | None = None) -> str | None:
        """Return the first value of query parameter ``name``."""
        values = self.query.get(name)
        return values[0] if values else default

    def url(self, path: str, params: dict[str, Any]) -> str:
        """Return the absolute sandbox URL of ``path`` with ``params``."""
        clean = {key: value for key, value in params.items() if value is not None}
        suffix = f"?{urlencode(clean)}" if clean else ""
        return f"{self.api_root}{path}{suffix}"


@dataclass
class ApiResponse:
    """A response before it is written: a JSON-able body or raw bytes."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)

    def encoded(self) -> bytes:
        """Return the body as bytes (JSON unless it already is bytes)."""
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


class ApiError(Exception):
    """Raised by a route handler to return the platform's error response."""

    def __init__(self, status: int, message: str, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


@dataclass(frozen=True)
class Route:
    """One API endpoint: a name, a path pattern and its handler.

    ``pattern`` is a regular expression matched against the whole path below
    ``/<platform>/api``. ``scope`` is the scope a token needs, or None.
    """

    name: str
    pattern: re.Pattern
    handler: Callable[[ApiRequest], ApiResponse]
    scope: str | None = None


def route(
    name: str,
    pattern: str,
    handler: Callable[[ApiRequest], ApiResponse],
    scope: str | None = None,
) -> Route:
    return Route(name, re.compile(f"^{pattern}$"), handler, scope)


class PlatformApi:
    """Base class of one simulated platform API."""

    name = ""

    def __init__(self, seed: int):
        self.seed = seed
        self.routes: list[Route] = []

    # Data -----------------------------------------------------------------
    def rng(self, *parts: object) -> random.Random:
        """Return a generator seeded by the sandbox seed, this platform and parts.

        String seeds hash with SHA-512 in :mod:`random`, so the sequence is the
        same in every process whatever ``PYTHONHASHSEED`` is.
        """
        key = "/".join(str(part) for part in (self.seed, self.name, *parts))
        return random.Random(key)

    def build_user(self, index: int) -> dict:
        """Generate every record of sandbox user ``index``."""
        raise NotImplementedError

    # Endpoints whose data add_items can grow, mapped to the method that adds one.
    growable: dict[str, str] = {}

    def add_items(self, user: dict, index: int, endpoint: str, count: int) -> int:
        """Add ``count`` items to ``endpoint`` as if just created; return its total.

        New items are dated after every generated one (from ``DATA_END`` on, one
        every 7 minutes) and come from a generator seeded by the number of items
        added so far, so the same sequence of calls gives the same data.
        """
        method_name = self.growable.get(endpoint)
        if method_name is None:
            choices = ", ".join(self.growable) or "none"
            raise ValueError(
                f"{self.name} cannot add items to {endpoint!r}; choose one of: "
                f"{choices}."
            )
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}.")
        added = user.setdefault("_added", {"count": 0})
        total = 0
        for _ in range(count):
            added["count"] += 1
            moment = DATA_END + dt.timedelta(minutes=7 * added["count"])
            rng = self.rng("added", index, added["count"])
            total = getattr(self, method_name)(user, rng, moment)
        return total

    def account(self, user: dict) -> dict:
        """Return the login, id and display name shown on the consent page."""
        return {"id": user["id"], "login": user["login"], "name": user["name"]}

    def matches_hint(self, user: dict, hint: str) -> bool:
        """Return True when ``login_hint`` names this user (login, id or e-mail)."""
        wanted = hint.strip().lower()
        candidates = (user.get("login"), user.get("id"), user.get("email"))
        return any(str(value).lower() == wanted for value in candidates if value)

    # Responses --------------------------------------------------------------
    def error_body(self, status: int, message: str, reason: str | None) -> Any:
        """Return the JSON body the platform sends with an error status."""
        return {"error": {"status": status, "message": message}}

    def error(
        self,
        status: int,
        message: str,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> ApiResponse:
        return ApiResponse(
            status, self.error_body(status, message, reason), headers or {}
        )

    def rate_limit_headers(self, window: dict) -> dict[str, str]:
        """Return the platform's rate-limit headers for the caller's window.

        ``window`` has ``limit``, ``remaining``, ``used``, ``reset_at`` (epoch
        seconds), ``reset_after`` (seconds) and ``bucket``.
        """
        return {}

    def rate_limited_response(self, window: dict) -> ApiResponse:
        """Return the 429 response sent when the caller's window is exhausted."""
        return self.error(429, "API rate limit exceeded.", "rateLimitExceeded")

    def check_request(self, headers: Any, client_id: str) -> ApiResponse | None:
        """Return an error response when a required header is missing, else None."""
        return None

    def unauthorized(self, message: str) -> ApiResponse:
        return self.error(401, message, "authError")


# Helpers used by several platforms -------------------------------------------


def base62_id(rng: random.Random, length: int = 22) -> str:
    return "".join(rng.choice(BASE62) for _ in range(length))


def base36(value: int) -> str:
    digits = string.digits + string.ascii_lowercase
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if value == 0:
            return out


def hex_id(rng: random.Random, length: int = 40) -> str:
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))


def snowflake(moment: dt.datetime, rng: random.Random) -> str:
    """Return a Discord-style snowflake id (milliseconds since 2015 in the top bits)."""
    discord_epoch_ms = 1420070400000
    millis = int(moment.timestamp() * 1000) - discord_epoch_ms
    return str((millis << 22) | rng.getrandbits(22))


def iso(moment: dt.datetime, millis: bool = False) -> str:
    """Return an ISO-8601 UTC timestamp ending in Z."""
    if millis:
        return (
            moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
        )
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def moments(
    rng: random.Random, count: int, span: dt.timedelta, end: dt.datetime = DATA_END
) -> list[dt.datetime]:
    """Return ``count`` distinct instants in ``[end - span, end)``, newest first."""
    seconds = int(span.total_seconds())
    picked = rng.sample(range(1, seconds), count) if count else []
    return sorted(
        (end - dt.timedelta(seconds=offset, milliseconds=rng.randrange(1000)))
        for offset in picked
    )[::-1]


def int_arg(
    request: ApiRequest,
    name: str,
    default: int,
    low: int,
    high: int,
    clamp: bool = False,
) -> int:
    """Parse an integer query parameter; out of range raises 400 unless ``clamp``."""
    raw = request.arg(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid {name}: {raw!r} is not an integer") from None
    if clamp:
        return max(low, min(high, value))
    if not low <= value <= high:
        raise ApiError(400, f"Invalid {name}: must be between {low} and {high}")
    return value


def encode_cursor(payload: dict) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, name: str) -> dict:
    """Decode a cursor made by :func:`encode_cursor`; a bad one raises 400."""
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, f"Invalid {name}: {token!r}") from None
    if not isinstance(value, dict):
        raise ApiError(400, f"Invalid {name}: {token!r}")
    return value


def json_response(body: Any, headers: dict[str, str] | None = None) -> ApiResponse:
    return ApiResponse(200, body, headers or {})
