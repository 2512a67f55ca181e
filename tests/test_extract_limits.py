"""Rate-limit header parsing and pacing, on a virtual clock."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from twinme_lab.extract.limits import Clock, RateLimiter, parse_retry_after, read_window

NOW = 1_800_000_000.0


class VirtualClock(Clock):
    def __init__(self):
        self.t = 0.0

    def now(self) -> float:
        return self.t

    def wall(self) -> float:
        return NOW + self.t

    def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), ("0.5", 0.5), ("-3", 0.0), ("", None), ("soon", None)],
)
def test_retry_after_seconds(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_http_date():
    when = datetime.fromtimestamp(NOW + 90, UTC)
    assert parse_retry_after(format_datetime(when, usegmt=True), NOW) == 90.0
    past = datetime.fromtimestamp(NOW - 90, UTC)
    assert parse_retry_after(format_datetime(past, usegmt=True), NOW) == 0.0


def test_window_github_epoch_reset():
    window = read_window(
        {"X-RateLimit-Remaining": "10", "X-RateLimit-Reset": str(int(NOW + 600))}, NOW
    )
    assert window.remaining == 10
    # One second is added because whole-second resets may be truncated.
    assert window.reset_in == 601


def test_window_reddit_seconds_reset():
    window = read_window(
        {"x-ratelimit-remaining": "42.0", "x-ratelimit-reset": "17"}, NOW
    )
    assert (window.remaining, window.reset_in) == (42.0, 18.0)


def test_window_twitch_names():
    window = read_window(
        {"Ratelimit-Remaining": "799", "Ratelimit-Reset": str(int(NOW + 60))}, NOW
    )
    assert (window.remaining, window.reset_in) == (799.0, 61.0)


def test_window_discord_bucket():
    window = read_window(
        {
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{NOW + 9.5:.3f}",
            "X-RateLimit-Reset-After": "2.250",
            "X-RateLimit-Bucket": "abcd",
        },
        NOW,
    )
    assert (window.remaining, window.reset_in, window.bucket) == (0.0, 2.25, "abcd")


def test_window_absent():
    assert read_window({"Content-Type": "application/json"}, NOW) is None


def test_pacing_stays_under_minute_limit():
    clock = VirtualClock()
    limiter = RateLimiter(clock=clock)
    sent = []
    for _ in range(400):
        limiter.acquire(("spotify", "app"), 180, 60)
        sent.append(clock.now())
    # No sliding 60-second window holds more than 180 requests.
    start = 0
    for end, moment in enumerate(sent):
        while sent[start] <= moment - 60:
            start += 1
        assert end - start + 1 <= 180
    # The pace is the limit scaled by the 0.98 safety factor.
    rate = (len(sent) - 1) / (sent[-1] - sent[0]) * 60
    assert rate == pytest.approx(180 * 0.98, rel=0.01)


def test_budgets_shared_per_app_not_per_token():
    clock = VirtualClock()
    limiter = RateLimiter(clock=clock)
    for _ in range(10):
        limiter.acquire(("reddit", "app"), 100, 60)
    shared = clock.now()
    clock.t = 0.0
    other = RateLimiter(clock=clock)
    for index in range(10):
        other.acquire(("discord", "token", f"p{index}"), 1, 60)
    # Ten requests on one app budget wait (after a burst of 2, the 2 % headroom
    # of 100); ten on ten token budgets do not.
    assert shared == pytest.approx(8 * 60 / (100 * 0.98))
    assert clock.now() == 0.0


def test_zero_remaining_blocks_until_reset():
    clock = VirtualClock()
    limiter = RateLimiter(clock=clock)
    key = ("github", "token", "p1")
    limiter.acquire(key, 5000, 3600)
    limiter.observe(
        key, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW + 300))}
    )
    waited = limiter.acquire(key, 5000, 3600)
    assert waited == pytest.approx(301)


def test_discord_bucket_pause_applies_to_route():
    clock = VirtualClock()
    limiter = RateLimiter(clock=clock)
    key = ("discord", "token", "p1")
    limiter.acquire(key, 50, 1, route="guilds")
    limiter.observe(
        key,
        {
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset-After": "4.0",
            "X-RateLimit-Bucket": "b1",
        },
        route="guilds",
    )
    # Another route is not held by the guilds bucket.
    assert limiter.acquire(key, 50, 1, route="user") == pytest.approx(1 / 49, rel=0.05)
    assert limiter.acquire(key, 50, 1, route="guilds") == pytest.approx(4.0, abs=0.05)
