"""Extraction against the local sandbox over real HTTPS, with faults switched on.

Expected counts come from the sandbox's per-user size tables (user index 1 of
each platform): GitHub 135 owned repositories of which every fifth is a fork,
340 events of which the API serves 300; Spotify 50 plays, 260 saved tracks and
55 followed artists; Discord 450 guilds, 7 owned; Reddit 140 subreddits, 60
posts and 1,200 comments of which listings serve 1,000; YouTube 120
subscriptions and 75 liked videos; Twitch 230 followed channels.

Connections are made with the real OAuth flow. Time runs on a virtual clock, so
Retry-After and backoff waits are counted, not slept; the sandbox's own rate
limits are off except where a test sets one.
"""

from __future__ import annotations

import time

import pytest
import requests

from twinme_lab import oauth, participants, sandbox
from twinme_lab.errors import EXIT_OK, EXIT_PARTIAL
from twinme_lab.extract import spotify as spotify_extractor
from twinme_lab.extract.http import RetryPolicy
from twinme_lab.extract.limits import Clock
from twinme_lab.extract.run import run_extraction

USER = 1


class VirtualClock(Clock):
    """Sleeping advances virtual time; requests still take real time."""

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


POLICY = RetryPolicy(backoff_base=0.01, backoff_cap=0.05, timeout=(5.0, 0.5))


@pytest.fixture(scope="module")
def sb():
    handle = sandbox.serve(auto_consent=True, seed=0, rate_limits=False)
    yield handle
    handle.stop()


@pytest.fixture
def env(sb, monkeypatch):
    for key, value in sb.env().items():
        monkeypatch.setenv(key, value)
    sb.clear_faults()
    for name in sandbox.PLATFORM_NAMES:
        sb.set_rate_limit(name, None)
    yield sb
    sb.clear_faults()


def connect(
    workspace, sb, platform: str, participant_id: str = "p1", user: int = USER
) -> None:
    """Connect through the real flow, with the sandbox consenting as ``user``."""
    try:
        participants.add(workspace, participant_id)
    except Exception:
        pass
    optional = ("connections",) if platform == "discord" else ()
    pending = oauth.begin(workspace, platform, participant_id, optional_scopes=optional)
    response = requests.get(
        pending.url + f"&sandbox_user={user}",
        verify=sb.ca_path,
        allow_redirects=False,
        timeout=10,
    )
    oauth.complete(workspace, pending, response.headers["Location"])


def extract(workspace, clock=None, policy=POLICY, **kwargs):
    result = run_extraction(
        workspace, clock=clock or VirtualClock(), policy=policy, **kwargs
    )
    rows = {(r["platform"], r["endpoint"]): r for r in result.rows}
    return result, rows


def scalar(workspace, sql: str, params=()):
    with workspace.connect() as con:
        return con.execute(sql, list(params)).fetchone()[0]


def test_clean_run_github_counts(workspace, env):
    connect(workspace, env, "github")
    result, rows = extract(workspace)

    assert result.exit_code == EXIT_OK
    repos = rows[("github", "repos")]
    assert (repos["status"], repos["items"], repos["pages"]) == ("ok", 135, 2)
    events = rows[("github", "events")]
    assert (events["items"], events["pages"]) == (300, 3)
    assert events["window_start"] is not None
    assert rows[("github", "languages")]["requests"] == 108
    assert scalar(workspace, "SELECT count(*) FROM code_repositories") == 135
    assert (
        scalar(
            workspace, "SELECT count(*) FROM code_repositories WHERE owned AND NOT fork"
        )
        == 108
    )
    assert (
        scalar(workspace, "SELECT count(DISTINCT event_id) FROM code_activity") == 300
    )
    assert scalar(workspace, "SELECT count(*) FROM code_activity") == 300


def test_rerun_github_is_all_304(workspace, env):
    connect(workspace, env, "github")
    extract(workspace)
    env.reset_stats()
    result, rows = extract(workspace)

    assert result.exit_code == EXIT_OK
    assert rows[("github", "repos")]["not_modified"] == 2
    assert rows[("github", "events")]["requests"] == 1
    assert rows[("github", "events")]["not_modified"] == 1
    assert rows[("github", "languages")]["not_modified"] == 108
    stats = env.stats()["platforms"]["github"]
    # user (1) + repos (2) + events (1) + languages (108), every one a 304.
    assert stats["requests"] == 112
    assert stats["not_modified"] == 112


def test_clean_run_other_platforms(workspace, env):
    for name in ("spotify", "discord", "reddit", "youtube", "twitch", "linkedin"):
        connect(workspace, env, name)
    result, rows = extract(workspace)

    assert result.exit_code == EXIT_OK, result.summary()["problems"]
    expected = {
        ("spotify", "recently_played"): 50,
        ("spotify", "top_artists:short_term"): 50,
        ("spotify", "top_artists:medium_term"): 75,
        ("spotify", "top_artists:long_term"): 99,
        ("spotify", "top_tracks:long_term"): 99,
        ("spotify", "saved_tracks"): 260,
        ("spotify", "followed_artists"): 55,
        ("discord", "guilds"): 450,
        ("discord", "connections"): 5,
        ("reddit", "subreddits"): 140,
        ("reddit", "submitted"): 60,
        ("reddit", "comments"): 1000,
        ("youtube", "subscriptions"): 120,
        ("youtube", "liked_videos"): 75,
        ("twitch", "followed_channels"): 230,
        ("linkedin", "userinfo"): 1,
    }
    for key, count in expected.items():
        assert rows[key]["status"] == "ok", key
        assert rows[key]["items"] == count, key
    assert rows[("discord", "guilds")]["pages"] == 3
    assert "50 plays" in rows[("spotify", "recently_played")]["note"]
    assert rows[("reddit", "comments")]["window_start"] is not None

    assert (
        scalar(
            workspace,
            "SELECT count(*) FROM listening_events WHERE source = 'spotify_api'",
        )
        == 50
    )
    assert (
        scalar(
            workspace,
            "SELECT count(*) FROM listening_events WHERE ms_played IS NOT NULL",
        )
        == 0
    )
    assert (
        scalar(
            workspace,
            "SELECT count(*) FROM communities WHERE platform = 'discord' AND owned",
        )
        == 7
    )
    assert (
        scalar(workspace, "SELECT count(*) FROM communities WHERE platform = 'twitch'")
        == 230
    )
    assert (
        scalar(workspace, "SELECT count(*) FROM community_posts WHERE kind = 'comment'")
        == 1000
    )
    assert scalar(workspace, "SELECT count(*) FROM video_subscriptions") == 120
    assert (
        scalar(
            workspace,
            "SELECT count(*) FROM music_top_items WHERE "
            "item_type = 'artist' AND time_range = 'long_term'",
        )
        == 99
    )
    # Every subscribed channel has its topics cached after one run.
    assert (
        scalar(
            workspace,
            "SELECT count(*) FROM video_subscriptions s WHERE "
            "NOT EXISTS (SELECT 1 FROM channel_topics t "
            "WHERE t.channel_id = s.channel_id)",
        )
        == 0
    )


def test_rerun_spotify_adds_nothing(workspace, env):
    connect(workspace, env, "spotify")
    extract(workspace)
    result, rows = extract(workspace)

    assert result.exit_code == EXIT_OK
    recent = rows[("spotify", "recently_played")]
    assert (recent["requests"], recent["items"], recent["unchanged"]) == (1, 0, 1)
    saved = rows[("spotify", "saved_tracks")]
    assert saved["requests"] == 1
    assert saved["items_stored"] == 0
    assert rows[("spotify", "artists")]["requests"] == 0
    assert rows[("spotify", "artists")]["status"] == "ok"
    assert scalar(workspace, "SELECT count(*) FROM listening_events") == 50

    # The cursor survives a run that found nothing new.
    _, rows = extract(workspace, platform="spotify")
    recent = rows[("spotify", "recently_played")]
    assert (recent["requests"], recent["items"]) == (1, 0)


def test_fresh_list_without_etag_not_reread(workspace, env):
    connect(workspace, env, "discord")
    extract(workspace)
    env.reset_stats()
    _, rows = extract(workspace)

    guilds = rows[("discord", "guilds")]
    assert (guilds["status"], guilds["requests"], guilds["items"]) == ("ok", 0, 0)
    assert "--refresh" in guilds["note"]
    assert env.stats()["requests"] == 0

    _, rows = extract(workspace, refresh=True)
    guilds = rows[("discord", "guilds")]
    assert (guilds["requests"], guilds["items"], guilds["items_stored"]) == (3, 450, 0)
    assert scalar(workspace, "SELECT count(*) FROM communities") == 450


@pytest.mark.parametrize("style", ["seconds", "http-date"])
def test_429_retry_after(workspace, env, style):
    connect(workspace, env, "github")
    env.set_fault(
        "github",
        "rate_limit",
        "repos",
        count=2,
        retry_after=30,
        retry_after_format=style,
    )
    clock = VirtualClock()
    result, rows = extract(workspace, clock=clock, platform="github")

    repos = rows[("github", "repos")]
    assert result.exit_code == EXIT_OK
    assert repos["rate_limited"] == 2
    assert repos["items"] == 135
    # Two waits of about 30 s each (an HTTP date has whole-second precision).
    assert clock.slept >= 58


def test_server_error_burst(workspace, env):
    connect(workspace, env, "github")
    env.set_fault("github", "server_error", "events", count=3, status=502)
    result, rows = extract(workspace)

    events = rows[("github", "events")]
    assert result.exit_code == EXIT_OK
    assert events["retries"] == 3
    assert events["items"] == 300
    assert scalar(workspace, "SELECT count(*) FROM code_activity") == 300


def test_server_error_persisting_fails(workspace, env):
    connect(workspace, env, "github")
    env.set_fault("github", "server_error", "events", after=1, status=500)
    result, rows = extract(workspace)

    events = rows[("github", "events")]
    assert result.exit_code == EXIT_PARTIAL
    assert events["status"] == "failed"
    assert events["items"] is None
    assert events["items_stored"] == 100
    assert "HTTP 500" in events["error"]
    assert rows[("github", "languages")]["status"] == "ok"
    assert result.summary()["problems"] == ["p1 github events: failed"]

    env.clear_faults()
    result, rows = extract(workspace)
    assert rows[("github", "events")]["status"] == "ok"
    assert scalar(workspace, "SELECT count(*) FROM code_activity") == 300


def test_slow_response_times_out_and_retries(workspace, env):
    connect(workspace, env, "github")
    env.set_fault("github", "slow", "repos", count=1, delay=1.5)
    _, rows = extract(workspace)

    repos = rows[("github", "repos")]
    assert repos["status"] == "ok"
    assert repos["retries"] == 1
    assert repos["items"] == 135


def test_token_expiry_mid_pagination(workspace, env):
    connect(workspace, env, "spotify")
    env.set_fault("spotify", "expire_token", "saved_tracks", after=2)
    result, rows = extract(workspace)

    saved = rows[("spotify", "saved_tracks")]
    assert result.exit_code == EXIT_OK
    assert saved["items"] == 260
    assert saved["retries"] == 1
    assert (
        scalar(
            workspace,
            "SELECT count(*) FROM api_records WHERE endpoint = 'saved_tracks'",
        )
        == 260
    )


def test_revoked_refresh_token_requires_reauth(workspace, env):
    connect(workspace, env, "spotify")
    env.set_fault("spotify", "revoke_refresh_token", "token")
    env.set_fault("spotify", "expire_token", "saved_tracks", after=1)
    result, rows = extract(workspace)

    saved = rows[("spotify", "saved_tracks")]
    assert result.exit_code == EXIT_PARTIAL
    assert saved["status"] == "requires_reauth"
    assert saved["items"] is None
    assert saved["items_stored"] == 50
    # Endpoints after it send nothing; those before it keep their rows.
    followed = rows[("spotify", "followed_artists")]
    assert (followed["status"], followed["requests"]) == ("requires_reauth", 0)
    assert rows[("spotify", "recently_played")]["status"] == "ok"
    assert scalar(workspace, "SELECT count(*) FROM listening_events") == 50
    assert (
        scalar(workspace, "SELECT status FROM connections WHERE platform = 'spotify'")
        == "requires_reauth"
    )

    # The next run sends nothing for this connection and still reports it.
    env.reset_stats()
    result, rows = extract(workspace)
    assert result.exit_code == EXIT_PARTIAL
    assert {r["status"] for r in result.rows} == {"requires_reauth"}
    assert sum(r["requests"] for r in result.rows) == 0
    assert env.stats()["requests"] == 0


def test_truncated_json_is_retried(workspace, env):
    connect(workspace, env, "discord")
    env.set_fault("discord", "truncate", "guilds", count=1, after=1)
    result, rows = extract(workspace)

    guilds = rows[("discord", "guilds")]
    assert result.exit_code == EXIT_OK
    assert guilds["retries"] == 1
    assert guilds["items"] == 450
    assert scalar(workspace, "SELECT count(*) FROM communities") == 450


def test_restricted_endpoint_is_not_empty(workspace, env):
    connect(workspace, env, "github")
    env.set_fault("github", "forbidden", "languages")
    result, rows = extract(workspace)

    languages = rows[("github", "languages")]
    assert result.exit_code == EXIT_PARTIAL
    assert languages["status"] == "restricted"
    assert languages["items"] is None
    assert rows[("github", "repos")]["items"] == 135
    assert scalar(workspace, "SELECT count(*) FROM code_languages") == 0
    with workspace.connect() as con:
        logged = con.execute(
            "SELECT items FROM extract_run_log WHERE endpoint = 'languages'"
        ).fetchone()[0]
    assert logged is None


def test_faults_in_combination(workspace, env):
    for name in ("github", "spotify", "discord"):
        connect(workspace, env, name)
    env.set_fault("github", "rate_limit", "repos", count=1, retry_after=5)
    env.set_fault("github", "server_error", "events", count=2, after=1)
    env.set_fault("github", "truncate", "languages", count=3, after=10)
    env.set_fault("spotify", "expire_token", "followed_artists", after=1)
    env.set_fault("spotify", "server_error", "saved_tracks", count=2, after=3)
    env.set_fault(
        "discord",
        "rate_limit",
        "guilds",
        count=1,
        after=1,
        retry_after=2,
        retry_after_format="http-date",
    )
    env.set_fault("discord", "truncate", "guilds", count=1, after=2)
    result, rows = extract(workspace)

    assert result.exit_code == EXIT_OK, result.summary()["problems"]
    assert rows[("github", "repos")]["items"] == 135
    assert rows[("github", "events")]["items"] == 300
    assert rows[("github", "languages")]["requests"] == 108 + 3
    assert rows[("spotify", "saved_tracks")]["items"] == 260
    assert rows[("spotify", "followed_artists")]["items"] == 55
    assert rows[("discord", "guilds")]["items"] == 450
    assert scalar(workspace, "SELECT count(*) FROM code_activity") == 300
    assert scalar(workspace, "SELECT count(*) FROM communities") == 450
    assert scalar(workspace, "SELECT count(*) FROM code_languages") == scalar(
        workspace, "SELECT count(DISTINCT (repo_id, language)) FROM code_languages"
    )


def test_rate_limit_headers_pace_the_run(workspace, env):
    # User 0 needs 10 requests: user, repos, events and 7 languages.
    connect(workspace, env, "github", user=0)
    # A window far below GitHub's documented 5,000 an hour, so only the
    # X-RateLimit-Remaining/Reset headers can keep the run under it.
    env.set_rate_limit("github", 4, 5, "token")
    env.reset_stats()
    started = time.monotonic()
    # Default timeouts: the 0.5 s read timeout of POLICY is for the slow fault.
    result, rows = extract(
        workspace, clock=Clock(), policy=RetryPolicy(), platform="github"
    )
    elapsed = time.monotonic() - started

    assert result.exit_code == EXIT_OK
    assert sum(r["retries"] for r in result.rows) == 0
    assert sum(r["requests"] for r in result.rows) == 10
    assert env.stats()["platforms"]["github"]["rate_limited"] == 0
    # Ten requests at four per five seconds span at least two window resets.
    assert elapsed >= 10


def test_api_play_seen_in_export_counts_once(workspace, env, tmp_path):
    connect(workspace, env, "spotify")
    extract(workspace)
    with workspace.connect() as con:
        plays = con.execute(
            "SELECT ended_at, track_name, artist_name FROM listening_events "
            "ORDER BY ended_at LIMIT 3"
        ).fetchall()
        # An account export records end times to the minute, without seconds.
        for ended_at, track, artist in plays:
            con.execute(
                "INSERT INTO listening_events (participant_id, source, kind, "
                "ended_at, time_precision, ms_played, track_name, artist_name, "
                "record_key, record_ordinal, import_id) VALUES ('p1', "
                "'spotify_account', 'music', date_trunc('minute', ?::TIMESTAMPTZ), "
                "'minute', 1000, ?, ?, ?, 1, 0)",
                [ended_at, track, artist, f"export-{ended_at}"],
            )
        removed = spotify_extractor.drop_api_duplicates(con, "p1")
        remaining = con.execute(
            "SELECT count(*) FROM listening_events WHERE source = 'spotify_api'"
        ).fetchone()[0]
    assert removed == 3
    assert remaining == 47

    # Extracting again does not bring the three API plays back.
    env.reset_stats()
    with workspace.connect() as con:
        con.execute("DELETE FROM extract_cursors")
    extract(workspace, platform="spotify")
    assert (
        scalar(
            workspace,
            "SELECT count(*) FROM listening_events WHERE source = 'spotify_api'",
        )
        == 47
    )
    assert scalar(workspace, "SELECT count(*) FROM listening_events") == 50


def test_export_import_supersedes_api_plays(workspace, env, tmp_path):
    import json as json_module

    from twinme_lab.imports import import_path

    connect(workspace, env, "spotify")
    extract(workspace)
    with workspace.connect() as con:
        plays = con.execute(
            "SELECT strftime(date_trunc('minute', ended_at AT TIME ZONE 'UTC'), "
            "'%Y-%m-%d %H:%M'), track_name, artist_name FROM listening_events "
            "WHERE source = 'spotify_api' ORDER BY ended_at LIMIT 3"
        ).fetchall()
    export = [
        {"endTime": end, "artistName": artist, "trackName": track, "msPlayed": 1000}
        for end, track, artist in plays
    ]
    path = tmp_path / "StreamingHistory_music_0.json"
    path.write_text(json_module.dumps(export))

    summary = import_path(workspace, "spotify", path, "p1")

    assert summary.added == 3
    assert (
        scalar(
            workspace,
            "SELECT count(*) FROM listening_events WHERE source = 'spotify_api'",
        )
        == 47
    )
    assert scalar(workspace, "SELECT count(*) FROM listening_events") == 50


def test_discord_community_features(workspace, env):
    from twinme_lab.features import compute_features, features_table

    # Sandbox user 1 belongs to 450 servers and owns 7 of them.
    connect(workspace, env, "discord", participant_id="p1", user=1)
    extract(workspace, platform="discord")
    compute_features(workspace)
    table = features_table(workspace, "p1").set_index("feature")
    assert table.loc["discord_community_count", "value"] == 450
    assert table.loc["discord_owned_communities", "value"] == 7
    assert table.loc["discord_community_count", "n_obs"] == 450


def test_discord_community_features_null_when_guilds_fail(workspace, env):
    from twinme_lab.features import compute_features, features_table

    connect(workspace, env, "discord", participant_id="p1", user=1)
    env.set_fault("discord", "forbidden", "guilds")
    extract(workspace, platform="discord")
    compute_features(workspace)
    table = features_table(workspace, "p1")
    assert "discord_community_count" not in set(
        table.loc[table["value"].notna(), "feature"]
    )


def test_extraction_time_recorded_on_connection(workspace, env):
    connect(workspace, env, "twitch")
    assert oauth.connections(workspace, "p1")[0]["last_extraction_at"] is None
    extract(workspace, platform="twitch")
    assert oauth.connections(workspace, "p1")[0]["last_extraction_at"] is not None
