"""Sending one API request: pacing, retries, backoff and the 401 refresh.

:func:`Requester.get` returns a :class:`Reply` or raises one of the errors below;
it never returns a 429 or a 5xx. Counters for the run log accumulate on the
:class:`Counters` passed in.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from ..errors import TwinMeError
from ..oauth.errors import ReauthRequired, TransientTokenError
from .limits import Clock, RateLimiter, parse_retry_after

log = logging.getLogger(__name__)


class EndpointError(Exception):
    """An endpoint could not be read; ``status`` is the run log status to record."""

    status = "failed"


class RestrictedError(EndpointError):
    """The platform refuses this endpoint to this app or user (403 or 404 policy)."""

    status = "restricted"


class ReauthError(EndpointError):
    """The token was refused after one refresh; the participant must reconnect."""

    status = "requires_reauth"


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying one request.

    Backoff for 5xx, timeouts and unreadable bodies is "full jitter": a uniform
    wait between 0 and ``min(cap, base * 2**attempt)`` seconds.
    """

    max_retries: int = 5
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    max_rate_limit_waits: int = 8
    max_wait: float = 900.0  # a longer Retry-After fails the endpoint instead
    timeout: tuple[float, float] = (10.0, 30.0)  # connect, read
    secondary_wait: float = 60.0  # GitHub: wait at least a minute, per its docs

    def backoff(self, attempt: int, rng: random.Random) -> float:
        return rng.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))


@dataclass
class Counters:
    """Per-endpoint request counts for the run log."""

    requests: int = 0
    not_modified: int = 0
    unchanged: int = 0  # 304s plus pages whose items were all held already
    rate_limited: int = 0
    retries: int = 0
    refreshed: int = 0


@dataclass
class Reply:
    """A successful response: status 200-299 or 304, body decoded."""

    status: int
    headers: Mapping[str, str]
    body: Any
    url: str

    @property
    def not_modified(self) -> bool:
        return self.status == 304


@dataclass(frozen=True)
class Budgeting:
    """A request budget's key and size."""

    key: tuple
    requests: int
    per_seconds: float


def safe_url(url: str) -> str:
    """Return a URL without its query string, for logs and error messages."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


# A platform hook deciding whether a non-2xx response is a rate limit, returning
# the seconds to wait, or None when it is not one (GitHub sends 403 for both).
RateLimitHook = Callable[[requests.Response, RetryPolicy, float], float | None]


@dataclass
class Requester:
    """Send GET requests through one OAuth session under a shared rate limiter."""

    session: Any
    limiter: RateLimiter
    budgeting: Budgeting
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit_hook: RateLimitHook | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)
    clock: Clock | None = None

    def __post_init__(self) -> None:
        if self.clock is None:
            self.clock = self.limiter.clock

    def get(
        self,
        url: str,
        counters: Counters,
        params: Mapping[str, Any] | None = None,
        conditional: Mapping[str, str] | None = None,
        route: str | None = None,
    ) -> Reply:
        """GET ``url``, retrying what is transient, and return the decoded reply."""
        attempt = 0
        waits = 0
        refreshed = False
        headers = {**self.headers, **(conditional or {})}
        while True:
            budget = self.budgeting
            self.limiter.acquire(budget.key, budget.requests, budget.per_seconds, route)
            counters.requests += 1
            try:
                response = self.session.get(
                    url, params=params, headers=headers, timeout=self.policy.timeout
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
                attempt = self._retry_or_raise(
                    attempt, counters, f"GET {safe_url(url)} {kind}"
                )
                continue
            except ReauthRequired as exc:
                # The session's own refresh before expiry was rejected.
                raise ReauthError(str(exc)) from None
            except TransientTokenError as exc:
                attempt = self._retry_or_raise(attempt, counters, str(exc))
                continue
            except TwinMeError as exc:
                raise EndpointError(f"GET {safe_url(url)} failed: {exc}") from None

            self.limiter.observe(budget.key, response.headers, route)
            status = response.status_code

            wait = self._rate_limit_wait(response)
            if wait is not None:
                counters.rate_limited += 1
                waits += 1
                if (
                    waits > self.policy.max_rate_limit_waits
                    or wait > self.policy.max_wait
                ):
                    raise EndpointError(
                        f"GET {safe_url(url)} is rate limited (HTTP {status}); the "
                        f"platform asks for a {wait:.0f} s wait. Run extract again "
                        "later."
                    )
                log.info("HTTP %s from %s, waiting %.1f s", status, safe_url(url), wait)
                self.limiter.pause(budget.key, wait, route)
                counters.retries += 1
                continue

            if status == 401:
                if refreshed:
                    raise ReauthError(
                        f"The token for {safe_url(url)} was rejected after a refresh; "
                        "the participant must connect again."
                    )
                self._refresh(url)
                refreshed = True
                counters.refreshed += 1
                counters.retries += 1
                continue

            if status >= 500:
                asked = parse_retry_after(
                    response.headers.get("Retry-After"), self.clock.wall()
                )
                attempt = self._retry_or_raise(
                    attempt,
                    counters,
                    f"GET {safe_url(url)} returned HTTP {status}",
                    min(asked or 0.0, self.policy.backoff_cap),
                )
                continue

            if status == 403:
                raise RestrictedError(
                    f"GET {safe_url(url)} returned HTTP {status}: the platform "
                    "does not give this app or account access to this endpoint."
                )
            if status >= 400:
                raise EndpointError(f"GET {safe_url(url)} returned HTTP {status}.")

            if status == 304:
                counters.not_modified += 1
                return Reply(status, response.headers, None, response.url or url)

            try:
                body = json.loads(response.content) if response.content else None
            except ValueError:
                attempt = self._retry_or_raise(
                    attempt, counters, f"GET {safe_url(url)} returned unreadable JSON"
                )
                continue
            return Reply(status, response.headers, body, response.url or url)

    def _rate_limit_wait(self, response: requests.Response) -> float | None:
        if self.rate_limit_hook is not None:
            wait = self.rate_limit_hook(response, self.policy, self.clock.wall())
            if wait is not None:
                return wait
        if response.status_code != 429:
            return None
        wait = parse_retry_after(response.headers.get("Retry-After"), self.clock.wall())
        if wait is None:
            # A 429 without Retry-After: back off as for a server error.
            wait = self.policy.backoff(3, self.rng) + 1.0
        return wait

    def _retry_or_raise(
        self, attempt: int, counters: Counters, message: str, at_least: float = 0.0
    ) -> int:
        if attempt >= self.policy.max_retries:
            raise EndpointError(f"{message}, {attempt + 1} attempts in all.")
        delay = max(at_least, self.policy.backoff(attempt, self.rng))
        log.info("%s; retry %d in %.2f s", message, attempt + 1, delay)
        counters.retries += 1
        self.clock.sleep(delay)
        return attempt + 1

    def _refresh(self, url: str) -> None:
        refresh = getattr(self.session, "refresh", None)
        if refresh is None:
            raise ReauthError(
                f"The token for {safe_url(url)} was rejected and this platform "
                "issues no refresh token; the participant must connect again."
            )
        try:
            refresh()
        except ReauthRequired:
            raise ReauthError(
                "The refresh token was rejected; the participant must connect again."
            ) from None
        except TransientTokenError as exc:
            raise EndpointError(f"Refreshing the token failed: {exc}") from None
