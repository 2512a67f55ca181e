"""Request pacing: one budget per token or per app, shared by every participant.

Each budget is a token bucket refilled at the platform's documented rate, scaled by
a safety factor so steady-state traffic stays under the limit instead of finding it
with a 429. The response headers a platform sends tighten the pace further:

- ``Retry-After`` in seconds or as an HTTP date (RFC 9110, section 10.2.3);
- remaining/reset pairs: GitHub and Twitch send the reset as epoch seconds,
  Reddit as seconds from now (``x-ratelimit-reset``);
- Discord's per-route buckets (``x-ratelimit-bucket``, ``-remaining``,
  ``-reset-after``) and its global limit (``x-ratelimit-global``).

Times come from an injectable clock so tests can run without sleeping.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

log = logging.getLogger(__name__)

# Share of a documented limit the pacer uses, so a server counting a sliding
# window with slightly different boundaries never counts one request too many.
SAFETY_FACTOR = 0.98

# Windows at least this long (seconds) are quotas that may be spent in a burst.
LONG_WINDOW = 3600.0

# Reset values above this are epoch seconds; below, seconds from now.
EPOCH_THRESHOLD = 1_000_000_000


class Clock:
    """Monotonic time and sleeping, replaceable in tests."""

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


def parse_retry_after(value: str | None, wall_now: float) -> float | None:
    """Return the wait in seconds a ``Retry-After`` value requests, or None.

    Accepts delta-seconds (integer or decimal) and HTTP dates. A date in the past
    means no wait; an unreadable value returns None.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - wall_now)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # requests' CaseInsensitiveDict and plain dicts from tests both work.
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class HeaderWindow:
    """A remaining/reset pair read from one response: the server's own count."""

    remaining: float
    reset_in: float  # seconds from now until the window resets
    bucket: str | None = None
    is_global: bool = False


def read_window(headers: Mapping[str, str], wall_now: float) -> HeaderWindow | None:
    """Read the remaining/reset rate-limit headers of GitHub, Reddit, Twitch, Discord.

    Returns None when the response carries none. Header names are matched without
    regard to case, because HTTP/2 servers send them in lower case.
    """
    remaining = _float(_header(headers, "x-ratelimit-remaining"))
    if remaining is None:
        remaining = _float(_header(headers, "ratelimit-remaining"))  # Twitch
    if remaining is None:
        return None

    reset_after = _float(_header(headers, "x-ratelimit-reset-after"))  # Discord
    if reset_after is None:
        text = _header(headers, "x-ratelimit-reset")
        if text is None:
            text = _header(headers, "ratelimit-reset")
        reset = _float(text)
        if reset is None:
            return None
        reset_after = reset - wall_now if reset > EPOCH_THRESHOLD else reset
        if "." not in text:
            # Whole seconds may be truncated (GitHub's epoch), so the window can
            # reset up to one second later than the header says.
            reset_after += 1.0
    global_flag = (_header(headers, "x-ratelimit-global") or "").lower() == "true"
    return HeaderWindow(
        remaining=remaining,
        reset_in=max(0.0, reset_after),
        bucket=_header(headers, "x-ratelimit-bucket"),
        is_global=global_flag,
    )


@dataclass
class Budget:
    """A token bucket for one token or one app, plus any server-imposed pause."""

    rate: float  # requests per second
    capacity: float = 1.0
    tokens: float = 1.0
    updated: float = 0.0
    blocked_until: float = 0.0
    requests: int = 0

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(
                self.capacity, self.tokens + (now - self.updated) * self.rate
            )
            self.updated = now

    def ready_at(self, now: float) -> float:
        """Return the earliest time a request may be sent."""
        self.refill(now)
        start = max(now, self.blocked_until)
        if self.tokens >= 1.0:
            return start
        return max(start, now + (1.0 - self.tokens) / self.rate)

    def take(self, now: float) -> None:
        self.refill(now)
        self.tokens -= 1.0
        self.requests += 1

    def block(self, until: float) -> None:
        self.blocked_until = max(self.blocked_until, until)
        # Nothing may burst out when the pause ends.
        self.tokens = min(self.tokens, 0.0)


@dataclass
class RateLimiter:
    """Pacing for every budget of one extraction run.

    A budget key is ``(platform, "app")`` for per-app limits and
    ``(platform, "token", participant_id)`` for per-token limits. Discord's
    route buckets get extra keys once its headers name them.
    """

    clock: Clock = field(default_factory=Clock)
    safety: float = SAFETY_FACTOR
    budgets: dict[tuple, Budget] = field(default_factory=dict)
    waited: float = 0.0
    _routes: dict[tuple, str] = field(default_factory=dict)
    _on_wait: Callable[[float], None] | None = None

    def budget(self, key: tuple, requests: int, per_seconds: float) -> Budget:
        found = self.budgets.get(key)
        if found is None:
            rate = requests / per_seconds * self.safety
            # Windows shorter than an hour are paced evenly. Hourly and daily
            # quotas may be spent in a burst, because the platforms count them
            # per window. Remaining/reset headers slow the burst down where the
            # platform sends them.
            if per_seconds >= LONG_WINDOW:
                capacity = float(max(1, int(requests * self.safety)))
            else:
                # A bucket of capacity c sends at most c + rate * window in any
                # window, so the headroom the safety factor leaves may be a burst.
                # It lets the pace catch up after a slow database write.
                capacity = float(max(1, int(requests * (1 - self.safety))))
            found = Budget(
                rate=rate, capacity=capacity, tokens=capacity, updated=self.clock.now()
            )
            self.budgets[key] = found
        return found

    def _keys(self, key: tuple, route: str | None) -> list[tuple]:
        keys = [key]
        bucket = self._routes.get((key, route)) if route else None
        if bucket:
            keys.append((*key, "bucket", bucket))
        return keys

    def acquire(
        self, key: tuple, requests: int, per_seconds: float, route: str | None = None
    ) -> float:
        """Wait until the budget allows one request, take it, return seconds waited."""
        self.budget(key, requests, per_seconds)
        waited = 0.0
        while True:
            now = self.clock.now()
            ready = max(
                self._budget_for(k).ready_at(now) for k in self._keys(key, route)
            )
            if ready <= now:
                break
            self.clock.sleep(ready - now)
            waited += ready - now
        for k in self._keys(key, route):
            self._budget_for(k).take(self.clock.now())
        self.waited += waited
        return waited

    def _budget_for(self, key: tuple) -> Budget:
        found = self.budgets.get(key)
        if found is None:
            # A Discord bucket: paced only by the pauses its headers impose.
            found = Budget(rate=1e9, capacity=1e9, tokens=1e9, updated=self.clock.now())
            self.budgets[key] = found
        return found

    def pause(self, key: tuple, seconds: float, route: str | None = None) -> None:
        """Hold every request on ``key`` for ``seconds`` (after a 429, for instance)."""
        until = self.clock.now() + seconds
        for k in self._keys(key, route):
            self._budget_for(k).block(until)
        log.info("pausing %s for %.1f s", key[0], seconds)

    def observe(
        self, key: tuple, headers: Mapping[str, str], route: str | None = None
    ) -> HeaderWindow | None:
        """Tighten the pace from a response's remaining/reset headers."""
        window = read_window(headers, self.clock.wall())
        if window is None:
            return None
        now = self.clock.now()
        if window.bucket and route:
            self._routes[(key, route)] = window.bucket
        target = (
            self._budget_for((*key, "bucket", window.bucket))
            if (window.bucket and route)
            else self._budget_for(key)
        )
        if window.remaining < 1:
            target.block(now + window.reset_in)
        elif window.reset_in > 0:
            # Spread what is left evenly over the rest of the server's window.
            spacing = window.reset_in / window.remaining
            if spacing > 1.0 / target.rate:
                target.block(now + spacing)
        return window
