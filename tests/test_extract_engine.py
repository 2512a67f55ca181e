"""Extraction engine against a GitHub-shaped HTTP server on 127.0.0.1.

The server is stdlib http.server started by each test. Time runs on a virtual
clock, so rate-limit waits and backoff are counted without sleeping.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from twinme_lab import participants
from twinme_lab.errors import EXIT_OK, EXIT_PARTIAL
from twinme_lab.extract import state
from twinme_lab.extract.http import RetryPolicy
from twinme_lab.extract.limits import Clock
from twinme_lab.extract.run import run_extraction
from twinme_lab.oauth.errors import ReauthRequired


class VirtualClock(Clock):
    """A clock whose sleep advances virtual time instead of waiting."""

    def __init__(self):
        self.offset = 0.0
        self.slept = 0.0

    def now(self) -> float:
        return time.monotonic() + self.offset

    def wall(self) -> float:
        return time.time() + self.offset

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.offset += seconds
            self.slept += seconds


class FakeGitHub:
    """Users' repos (Link pages of 100), public events, languages, with faults."""

    def __init__(self, repos: int = 120, events: int = 130):
        self.login = "octo"
        self.repos = [
            {
                "id": 5000 + i,
                "full_name": f"octo/repo{i}",
                "owner": {"login": "octo"},
                "fork": i % 20 != 0,
                "language": "Python",
                "created_at": "2024-01-01T00:00:00Z",
                "pushed_at": "2025-01-01T00:00:00Z",
            }
            for i in range(1, repos + 1)
        ]
        self.events = [
            {
                "id": str(900000 + i),
                "type": "PushEvent" if i % 3 else "IssuesEvent",
                "repo": {"name": "octo/repo1"},
                "created_at": f"2026-11-{1 + i % 28:02d}T10:00:00Z",
            }
            for i in range(events, 0, -1)
        ]
        self.token = "token-1"
        self.faults: list[dict] = []
        self.seen: list[tuple[str, int]] = []
        self.lock = threading.Lock()

    def add_fault(self, path: str, status, count: int = 1, **extra) -> None:
        self.faults.append({"path": path, "status": status, "count": count, **extra})

    def add_events(self, n: int) -> None:
        top = int(self.events[0]["id"])
        fresh = [
            {
                "id": str(top + k),
                "type": "PushEvent",
                "repo": {"name": "octo/repo1"},
                "created_at": "2026-11-30T10:00:00Z",
            }
            for k in range(n, 0, -1)
        ]
        self.events = fresh + self.events

    def requests_to(self, fragment: str) -> int:
        return sum(1 for path, _ in self.seen if fragment in path)

    def fault_for(self, path: str):
        with self.lock:
            for fault in self.faults:
                if fault["count"] > 0 and path.startswith(fault["path"]):
                    fault["count"] -= 1
                    return fault
        return None


def _page(items: list, query: dict, base: str, size_default: int = 30):
    size = int(query.get("per_page", [size_default])[0])
    page = int(query.get("page", ["1"])[0])
    chunk = items[(page - 1) * size : page * size]
    link = None
    if page * size < len(items):
        link = f'<{base}?per_page={size}&page={page + 1}>; rel="next"'
    return chunk, link


def make_handler(fake: FakeGitHub, origin: list[str]):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return

        def reply(self, status: int, body=None, headers=None, raw: bytes | None = None):
            data = (
                raw
                if raw is not None
                else (b"" if body is None else json.dumps(body).encode())
            )
            fake.seen.append((self.path, status))
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            fault = fake.fault_for(parts.path)
            if fault is not None:
                kind = fault["status"]
                if kind == "truncated":
                    return self.reply(200, raw=b'[{"id": 1, "full_na')
                if kind == 429:
                    return self.reply(
                        429,
                        {"message": "slow down"},
                        {"Retry-After": fault["retry_after"]},
                    )
                if kind == "secondary":
                    return self.reply(
                        403,
                        {"message": "You have exceeded a secondary rate limit."},
                        {"x-ratelimit-remaining": "4000"},
                    )
                if kind == 401:
                    return self.reply(401, {"message": "Bad credentials"})
                return self.reply(kind, {"message": "fault"})

            if self.headers.get("Authorization") != f"Bearer {fake.token}":
                return self.reply(401, {"message": "Bad credentials"})

            if parts.path == "/user":
                body, link = {"id": 77, "login": fake.login}, None
            elif parts.path == "/user/repos":
                body, link = _page(fake.repos, query, origin[0] + "/user/repos")
            elif parts.path == f"/users/{fake.login}/events/public":
                body, link = _page(fake.events, query, origin[0] + parts.path)
            elif parts.path.endswith("/languages"):
                name = parts.path.split("/")[3]
                number = int(name.removeprefix("repo"))
                body, link = {"Python": 1000 * number, "C": 10}, None
            else:
                return self.reply(404, {"message": "Not Found"})

            payload = json.dumps(body).encode()
            etag = '"' + hashlib.sha256(payload).hexdigest()[:16] + '"'
            headers = {"ETag": etag}
            if link:
                headers["Link"] = link
            if self.headers.get("If-None-Match") == etag:
                return self.reply(304, headers=headers, raw=b"")
            return self.reply(200, headers=headers, raw=payload)

    return Handler


class FakeSession(requests.Session):
    """A session holding the server's token; refresh() fetches the current one."""

    def __init__(self, fake: FakeGitHub, refresh_fails: bool = False):
        super().__init__()
        self.fake = fake
        self.refresh_fails = refresh_fails
        self.refreshes = 0
        self.headers["Authorization"] = f"Bearer {fake.token}"

    def refresh(self) -> None:
        self.refreshes += 1
        if self.refresh_fails:
            raise ReauthRequired("The refresh token was revoked.")
        self.headers["Authorization"] = f"Bearer {self.fake.token}"


@pytest.fixture
def github(monkeypatch):
    fake = FakeGitHub()
    origin: list[str] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(fake, origin))
    origin.append(f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("TWINME_GITHUB_API_BASE", origin[0])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


def connect(workspace, participant_id: str = "p1", platform: str = "github"):
    """Enrol a participant and add a connection row (tokens live in FakeSession)."""
    try:
        participants.add(workspace, participant_id)
    except Exception:
        pass
    now = datetime.now(UTC)
    with workspace.connect() as con:
        con.execute(
            "INSERT INTO connections (participant_id, platform, origin, account_id, "
            "status, granted_scopes, consented_at, key_id, updated_at) "
            "VALUES (?, ?, 'platform', ?, 'connected', 'read:user', ?, 'k', ?)",
            [participant_id, platform, f"acct-{participant_id}", now, now],
        )


FAST = RetryPolicy(backoff_base=0.01, backoff_cap=0.05)


def run(workspace, fake, clock=None, session=None, policy=FAST, **kwargs):
    sessions = []

    def factory(ws, pid, platform):
        made = session or FakeSession(fake)
        sessions.append(made)
        return made

    result = run_extraction(
        workspace,
        session_factory=factory,
        clock=clock or VirtualClock(),
        policy=policy,
        **kwargs,
    )
    rows = {row["endpoint"]: row for row in result.rows}
    return result, rows, sessions


def held(workspace, sql: str, params=()) -> int:
    with workspace.connect() as con:
        return con.execute(sql, list(params)).fetchone()[0]


def test_clean_run_counts_every_item(workspace, github):
    connect(workspace)
    result, rows, _ = run(workspace, github)

    assert result.exit_code == EXIT_OK
    assert rows["repos"]["status"] == "ok"
    assert rows["repos"]["items"] == 120
    assert rows["repos"]["pages"] == 2
    assert rows["events"]["items"] == 130
    assert rows["events"]["pages"] == 2
    # Non-forks are repos 20, 40, ..., 120.
    assert rows["languages"]["requests"] == 6
    assert held(workspace, "SELECT count(*) FROM code_repositories") == 120
    assert held(workspace, "SELECT count(*) FROM code_activity") == 130
    assert held(workspace, "SELECT count(*) FROM code_languages") == 12
    assert held(
        workspace, "SELECT sum(bytes) FROM code_languages WHERE language = 'Python'"
    ) == 1000 * (20 + 40 + 60 + 80 + 100 + 120)


def test_rerun_with_nothing_new_sends_conditional(workspace, github):
    connect(workspace)
    run(workspace, github)
    result, rows, _ = run(workspace, github)

    assert result.exit_code == EXIT_OK
    assert rows["repos"]["requests"] == 2
    assert rows["repos"]["not_modified"] == 2
    assert rows["repos"]["items"] == 0
    assert rows["repos"]["status"] == "ok"
    assert rows["events"]["requests"] == 1
    assert rows["events"]["not_modified"] == 1
    assert rows["languages"]["not_modified"] == 6
    assert held(workspace, "SELECT count(*) FROM code_activity") == 130


def test_new_events_fetch_one_page(workspace, github):
    connect(workspace)
    run(workspace, github)
    github.add_events(5)
    _, rows, _ = run(workspace, github)

    assert rows["events"]["requests"] == 1
    assert rows["events"]["items_stored"] == 5
    assert held(workspace, "SELECT count(*) FROM code_activity") == 135
    assert held(workspace, "SELECT count(DISTINCT event_id) FROM code_activity") == 135


def test_server_errors_are_retried(workspace, github):
    connect(workspace)
    github.add_fault("/user/repos", 502, count=2)
    github.add_fault("/users/octo/events/public", 503, count=1)
    result, rows, _ = run(workspace, github)

    assert result.exit_code == EXIT_OK
    assert rows["repos"]["retries"] == 2
    assert rows["repos"]["items"] == 120
    assert rows["events"]["retries"] == 1
    assert held(workspace, "SELECT count(*) FROM code_activity") == 130


def test_429_waits_retry_after_seconds(workspace, github):
    connect(workspace)
    github.add_fault("/user/repos", 429, count=2, retry_after="7")
    clock = VirtualClock()
    result, rows, _ = run(workspace, github, clock=clock)

    assert result.exit_code == EXIT_OK
    assert rows["repos"]["rate_limited"] == 2
    assert rows["repos"]["items"] == 120
    # Real time spent on the requests counts toward each 7 s wait.
    assert 13.5 <= clock.slept <= 14.5


def test_429_waits_retry_after_http_date(workspace, github):
    connect(workspace)
    clock = VirtualClock()
    when = datetime.fromtimestamp(time.time() + 120, UTC)
    github.add_fault(
        "/user/repos", 429, count=1, retry_after=format_datetime(when, usegmt=True)
    )
    _, rows, _ = run(workspace, github, clock=clock)

    assert rows["repos"]["rate_limited"] == 1
    assert rows["repos"]["status"] == "ok"
    assert 110 <= clock.slept <= 200


def test_github_secondary_limit_waits_a_minute(workspace, github):
    connect(workspace)
    clock = VirtualClock()
    github.add_fault("/user/repos", "secondary", count=1)
    _, rows, _ = run(workspace, github, clock=clock)

    assert rows["repos"]["rate_limited"] == 1
    assert rows["repos"]["status"] == "ok"
    # Real time spent on the request counts toward the 60 s wait.
    assert 59.5 <= clock.slept <= 61


def test_truncated_json_is_retried(workspace, github):
    connect(workspace)
    github.add_fault("/user/repos", "truncated", count=1)
    _, rows, _ = run(workspace, github)

    assert rows["repos"]["status"] == "ok"
    assert rows["repos"]["retries"] == 1
    assert rows["repos"]["items"] == 120


def test_401_refreshes_once_then_succeeds(workspace, github):
    connect(workspace)
    github.add_fault("/user/repos", 401, count=1)
    result, rows, sessions = run(workspace, github)

    assert result.exit_code == EXIT_OK
    assert sessions[0].refreshes == 1
    assert rows["repos"]["items"] == 120


def test_revoked_refresh_requires_reauth(workspace, github):
    connect(workspace)
    github.token = "token-2"
    session = FakeSession(github, refresh_fails=True)
    session.headers["Authorization"] = "Bearer token-1"
    result, rows, _ = run(workspace, github, session=session)

    assert result.exit_code == EXIT_PARTIAL
    assert rows["user"]["status"] == "requires_reauth"
    assert rows["user"]["items"] is None
    # Later endpoints send nothing once the connection needs reconnecting.
    for name in ("repos", "events", "languages"):
        assert rows[name]["status"] == "requires_reauth"
        assert rows[name]["requests"] == 0
    assert session.refreshes == 1
    with workspace.connect() as con:
        status = con.execute(
            "SELECT status FROM connections WHERE participant_id = 'p1'"
        ).fetchone()[0]
    assert status == "requires_reauth"


def test_401_after_refresh_requires_reauth(workspace, github):
    connect(workspace)
    github.add_fault("/user", 401, count=2)
    _, rows, sessions = run(workspace, github)

    assert rows["user"]["status"] == "requires_reauth"
    assert sessions[0].refreshes == 1
    assert rows["user"]["requests"] == 2


def test_restricted_endpoint_keeps_others(workspace, github):
    connect(workspace)
    github.add_fault("/repos/", 403, count=100)
    result, rows, _ = run(workspace, github)

    assert result.exit_code == EXIT_PARTIAL
    assert rows["languages"]["status"] == "restricted"
    assert rows["languages"]["items"] is None
    assert rows["repos"]["status"] == "ok"
    assert held(workspace, "SELECT count(*) FROM code_repositories") == 120
    assert "languages: restricted" in result.summary()["problems"][0]


def test_persistent_failure_is_not_zero_items(workspace, github):
    connect(workspace)
    # Page 2 of events keeps failing; page 1's 100 events are kept.
    github.add_fault("/users/octo/events/public", 500, count=1)
    policy = RetryPolicy(max_retries=2, backoff_base=0.01, backoff_cap=0.05)
    github.faults.clear()

    original = github.fault_for

    def fail_page_two(path):
        return None

    github.fault_for = fail_page_two
    calls = {"n": 0}

    def fault_on_second_page(path):
        if path == "/users/octo/events/public":
            calls["n"] += 1
            if calls["n"] >= 2:
                return {"status": 500, "count": 1}
        return None

    github.fault_for = fault_on_second_page
    result, rows, _ = run(workspace, github, policy=policy)

    assert result.exit_code == EXIT_PARTIAL
    assert rows["events"]["status"] == "failed"
    assert rows["events"]["items"] is None
    assert rows["events"]["items_stored"] == 100
    assert rows["events"]["retries"] == 2
    assert "HTTP 500" in rows["events"]["error"]
    assert held(workspace, "SELECT count(*) FROM code_activity") == 100

    # The next run resumes at page 2 and then holds every event once.
    github.fault_for = original
    result, rows, _ = run(workspace, github)
    assert rows["events"]["status"] == "ok"
    assert rows["events"]["requests"] == 1
    assert held(workspace, "SELECT count(*) FROM code_activity") == 130


def test_run_log_rows_match_result(workspace, github):
    connect(workspace)
    result, _, _ = run(workspace, github)
    with workspace.connect() as con:
        logged = state.run_log(con, result.run_id)
        finished = con.execute(
            "SELECT exit_code, finished_at IS NOT NULL FROM extract_runs "
            "WHERE run_id = ?",
            [result.run_id],
        ).fetchone()
    assert [r["endpoint"] for r in logged] == ["events", "languages", "repos", "user"]
    assert finished == (0, True)


def test_events_window_start_recorded(workspace, github):
    connect(workspace)
    _, rows, _ = run(workspace, github)
    oldest = min(e["created_at"] for e in github.events)
    assert rows["events"]["window_start"].isoformat().startswith(oldest[:10])
    assert "300" in rows["events"]["note"]
