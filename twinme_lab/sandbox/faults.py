"""Switchable faults, rate-limit windows and request counters of the sandbox."""

from __future__ import annotations

import fnmatch
import itertools
import threading
import time
from collections import defaultdict
from dataclasses import asdict, dataclass

# Fault kinds and what each does to a matching request:
#   rate_limit            429 (or ``status`` 403, as GitHub's secondary limit) with
#                         Retry-After (seconds, or an HTTP date)
#   server_error          a 5xx status (default 503); use ``count`` for a burst
#   slow                  waits ``delay`` seconds, then responds normally
#   expire_token          expires the caller's access token and returns 401
#   revoke_refresh_token  token endpoint: revokes the refresh token sent, so the
#                         refresh fails with invalid_grant
#   truncate              cuts the body of a 200 response in half (Content-Length
#                         matches); 304s and errors neither count nor consume it
#   forbidden             403 with the platform's error body
FAULT_KINDS = (
    "rate_limit",
    "server_error",
    "slow",
    "expire_token",
    "revoke_refresh_token",
    "truncate",
    "forbidden",
)
RETRY_AFTER_FORMATS = ("seconds", "http-date")


@dataclass
class Fault:
    """One switched-on fault.

    ``endpoint`` is an endpoint name (``repos``, ``token``), an API path glob
    (``/user/repos``, ``/v1/me/*``) or ``*``. The first ``after`` matching
    requests pass untouched; then the fault fires ``count`` times (None: until
    cleared).
    """

    id: int
    platform: str
    kind: str
    endpoint: str = "*"
    count: int | None = None
    after: int = 0
    status: int | None = None
    retry_after: float = 1.0
    retry_after_format: str = "seconds"
    delay: float = 0.5
    fired: int = 0

    def matches(self, platform: str, names: set[str], path: str) -> bool:
        if self.platform not in ("*", platform):
            return False
        if self.endpoint == "*" or self.endpoint in names:
            return True
        return fnmatch.fnmatchcase(path, self.endpoint)


class FaultBook:
    """The active faults, consulted once per request."""

    def __init__(self):
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._ids = itertools.count(1)

    def add(self, platform: str, kind: str, endpoint: str = "*", **options) -> Fault:
        """Switch on a fault; raise ValueError naming a bad option."""
        if kind not in FAULT_KINDS:
            raise ValueError(
                f"Unknown fault kind {kind!r}; choose one of {', '.join(FAULT_KINDS)}."
            )
        known = {
            "count",
            "after",
            "status",
            "retry_after",
            "retry_after_format",
            "delay",
        }
        unknown = set(options) - known
        if unknown:
            raise ValueError(
                f"Unknown fault option {sorted(unknown)[0]!r}; known: "
                f"{', '.join(sorted(known))}."
            )
        options = {key: value for key, value in options.items() if value is not None}
        fault = Fault(
            id=0, platform=platform, kind=kind, endpoint=endpoint or "*", **options
        )
        _check_fault(fault)
        if kind == "expire_token" and fault.count is None:
            fault.count = 1
        with self._lock:
            fault.id = next(self._ids)
            self._faults.append(fault)
        return fault

    def clear(self, platform: str | None = None, fault_id: int | None = None) -> int:
        """Remove faults (all, one platform's, or one by id); return how many."""
        with self._lock:
            keep = [
                fault
                for fault in self._faults
                if not (
                    (platform is None or fault.platform == platform)
                    and (fault_id is None or fault.id == fault_id)
                )
            ]
            removed = len(self._faults) - len(keep)
            self._faults = keep
        return removed

    def list(self) -> list[dict]:
        with self._lock:
            return [asdict(fault) for fault in self._faults]

    def take(
        self,
        platform: str,
        names: set[str],
        path: str,
        kinds: tuple[str, ...] = FAULT_KINDS,
    ) -> list[Fault]:
        """Return the faults that fire for this request, counting them as fired."""
        fired = []
        with self._lock:
            for fault in self._faults:
                if fault.kind not in kinds or not fault.matches(platform, names, path):
                    continue
                if fault.count is not None and fault.fired >= fault.count:
                    continue
                if fault.after > 0:
                    fault.after -= 1
                    continue
                fault.fired += 1
                fired.append(fault)
        return fired


def _check_fault(fault: Fault) -> None:
    """Raise ValueError naming the first invalid option of ``fault``."""
    if fault.retry_after_format not in RETRY_AFTER_FORMATS:
        raise ValueError(
            "retry_after_format must be 'seconds' or 'http-date', not "
            f"{fault.retry_after_format!r}."
        )
    if fault.count is not None and fault.count < 1:
        raise ValueError(
            f"count must be at least 1 (or None for no limit), not {fault.count}."
        )
    if fault.after < 0:
        raise ValueError(f"after must be 0 or more, not {fault.after}.")
    if (
        fault.kind == "server_error"
        and fault.status is not None
        and not 500 <= fault.status <= 599
    ):
        raise ValueError(f"server_error status must be 5xx, not {fault.status}.")
    if fault.kind == "rate_limit" and fault.status not in (None, 403, 429):
        raise ValueError(f"rate_limit status must be 429 or 403, not {fault.status}.")


@dataclass
class RateLimitRule:
    requests: int
    per_seconds: float
    counted_per: str  # token | app


class RateLimiter:
    """Fixed windows per platform and caller (app or token), as GitHub and Reddit count.

    A window starts with its first request and lasts ``per_seconds``.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._rules: dict[str, RateLimitRule | None] = {}
        self._windows: dict[tuple, list[float]] = {}

    def set_rule(self, platform: str, rule: RateLimitRule | None) -> None:
        with self._lock:
            self._rules[platform] = rule
            for key in [key for key in self._windows if key[0] == platform]:
                del self._windows[key]

    def rule(self, platform: str) -> RateLimitRule | None:
        return self._rules.get(platform)

    def check(
        self, platform: str, client_id: str, user_index: int
    ) -> tuple[bool, dict | None]:
        """Count one request; return (allowed, window) for the rate-limit headers."""
        rule = self._rules.get(platform)
        if rule is None:
            return True, None
        caller = client_id if rule.counted_per == "app" else f"{client_id}/{user_index}"
        key = (platform, caller)
        now = time.time()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now >= window[0] + rule.per_seconds:
                window = [now, 0]
                self._windows[key] = window
            allowed = window[1] < rule.requests
            if allowed:
                window[1] += 1
            used = int(window[1])
            reset_at = window[0] + rule.per_seconds
        return allowed, {
            "limit": rule.requests,
            "remaining": max(0, rule.requests - used),
            "used": used,
            "reset_at": reset_at,
            "reset_after": max(0.0, reset_at - now),
            "bucket": caller,
        }

    def refund(self, platform: str, client_id: str, user_index: int) -> None:
        """Give back one request (GitHub does not count a 304 against the limit)."""
        rule = self._rules.get(platform)
        if rule is None:
            return
        caller = client_id if rule.counted_per == "app" else f"{client_id}/{user_index}"
        with self._lock:
            window = self._windows.get((platform, caller))
            if window is not None and window[1] > 0:
                window[1] -= 1


class Stats:
    """Request counters per platform and endpoint, for tests and benchmarks."""

    def __init__(self):
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._started = time.time()
            self._endpoints: dict[tuple[str, str], dict] = defaultdict(self._empty)

    @staticmethod
    def _empty() -> dict:
        return {
            "requests": 0,
            "not_modified": 0,
            "rate_limited": 0,
            "statuses": defaultdict(int),
            "faults": defaultdict(int),
        }

    def record(
        self, platform: str, endpoint: str, status: int, faults: list[Fault]
    ) -> None:
        with self._lock:
            entry = self._endpoints[(platform, endpoint)]
            entry["requests"] += 1
            entry["statuses"][str(status)] += 1
            if status == 304:
                entry["not_modified"] += 1
            if status == 429:
                entry["rate_limited"] += 1
            for fault in faults:
                entry["faults"][fault.kind] += 1

    def snapshot(self) -> dict:
        """Return the counters as plain JSON-able dicts.

        Shape: ``{"since", "requests", "not_modified", "rate_limited",
        "platforms": {name: {"requests", "not_modified", "rate_limited",
        "statuses", "endpoints": {endpoint: {...same keys, "faults"}}}}}``.
        """
        with self._lock:
            platforms: dict[str, dict] = {}
            totals = {"requests": 0, "not_modified": 0, "rate_limited": 0}
            for (platform, endpoint), entry in sorted(self._endpoints.items()):
                summary = platforms.setdefault(
                    platform,
                    {
                        "requests": 0,
                        "not_modified": 0,
                        "rate_limited": 0,
                        "statuses": {},
                        "endpoints": {},
                    },
                )
                summary["endpoints"][endpoint] = {
                    "requests": entry["requests"],
                    "not_modified": entry["not_modified"],
                    "rate_limited": entry["rate_limited"],
                    "statuses": dict(entry["statuses"]),
                    "faults": dict(entry["faults"]),
                }
                for key in totals:
                    summary[key] += entry[key]
                    totals[key] += entry[key]
                for status, number in entry["statuses"].items():
                    summary["statuses"][status] = (
                        summary["statuses"].get(status, 0) + number
                    )
            return {"since": self._started, **totals, "platforms": platforms}
