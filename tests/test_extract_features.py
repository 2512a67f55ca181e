"""Features, interests and the ``extract`` command on data from the sandbox.

Expected values are computed here in Python from the sandbox's generated user
records, independently of the SQL in the feature modules.
"""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
import requests

from twinme_lab import interests, oauth, participants, sandbox
from twinme_lab.cli import main
from twinme_lab.errors import EXIT_OK, EXIT_PARTIAL
from twinme_lab.extract.limits import Clock
from twinme_lab.extract.run import run_extraction
from twinme_lab.features import compute_features


class NoWait(Clock):
    def sleep(self, seconds: float) -> None:
        return None


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
    yield sb
    sb.clear_faults()


def connect(workspace, sb, platform: str, user: int = 0, pid: str = "p1") -> None:
    try:
        participants.add(workspace, pid, timezone_name="Europe/Berlin")
    except Exception:
        pass
    pending = oauth.begin(workspace, platform, pid)
    response = requests.get(
        pending.url + f"&sandbox_user={user}",
        verify=sb.ca_path,
        allow_redirects=False,
        timeout=10,
    )
    oauth.complete(workspace, pending, response.headers["Location"])


def features_of(workspace, pid: str = "p1") -> dict[str, tuple]:
    with workspace.connect() as con:
        rows = con.execute(
            "SELECT feature, value, n_obs FROM features WHERE participant_id = ?",
            [pid],
        ).fetchall()
    return {name: (value, n_obs) for name, value, n_obs in rows}


def normalized_entropy(counts) -> float:
    values = [v for v in counts if v > 0]
    if len(values) == 1:
        return 0.0
    total = sum(values)
    return -sum(v / total * math.log(v / total) for v in values) / math.log(len(values))


def test_github_features_match_sandbox_data(workspace, env):
    connect(workspace, env, "github", user=1)
    run_extraction(workspace, clock=NoWait())
    compute_features(workspace)
    got = features_of(workspace)

    api = env.app.apis["github"]
    user = env.app.users["github"][1]
    owned = [
        r
        for r in user["repos"]
        if r["owner"]["login"] == user["login"] and not r["fork"]
    ]
    bytes_by_language: Counter = Counter()
    with_languages = 0
    for repo in owned:
        languages = api.repos_by_name[repo["full_name"].lower()]["languages"]
        with_languages += bool(languages)
        bytes_by_language.update(languages)
    assert got["github_owned_repos"] == (len(owned), len(owned))
    value, n_obs = got["github_language_diversity"]
    assert n_obs == with_languages
    assert value == pytest.approx(normalized_entropy(bytes_by_language.values()))

    served = user["events"][:300]
    kinds = Counter(e["type"] for e in served)
    value, n_obs = got["github_activity_mix"]
    assert n_obs == 300
    assert value == pytest.approx(normalized_entropy(kinds.values()))


def test_failed_endpoint_is_not_measured(workspace, env):
    connect(workspace, env, "github", user=1)
    env.set_fault("github", "forbidden", "languages")
    result = run_extraction(workspace, clock=NoWait())
    assert result.exit_code == EXIT_PARTIAL
    compute_features(workspace)
    got = features_of(workspace)

    assert got["github_language_diversity"] == (None, 0)
    assert got["github_owned_repos"][0] == 108
    assert got["github_activity_mix"][0] is not None


def test_reddit_and_spotify_features(workspace, env):
    connect(workspace, env, "reddit", user=0)
    connect(workspace, env, "spotify", user=0)
    run_extraction(workspace, clock=NoWait())
    compute_features(workspace)
    got = features_of(workspace)

    user = env.app.users["reddit"][0]
    things = user["posts"] + user["comments"]
    value, n_obs = got["reddit_comment_share"]
    assert n_obs == 12 + 80
    assert value == pytest.approx(80 / 92)
    per_sub = Counter(t["data"]["subreddit"] for t in things)
    assert got["reddit_subreddit_diversity"][0] == pytest.approx(
        normalized_entropy(per_sub.values())
    )
    assert got["reddit_subscribed_subreddits"] == (18, 18)

    spotify = env.app.users["spotify"][0]
    genres: Counter = Counter()
    artists = 0
    for time_range in ("short_term", "medium_term", "long_term"):
        for artist in spotify["top_artists"][time_range]:
            if artist["genres"]:
                artists += 1
                for genre in artist["genres"]:
                    genres[genre] += 1 / len(artist["genres"])
    value, n_obs = got["spotify_genre_diversity"]
    assert n_obs == artists
    assert value == pytest.approx(normalized_entropy(genres.values()))
    assert got["spotify_distinct_genres"][0] == len(genres)


def test_interests_profile_weights(workspace, env):
    connect(workspace, env, "reddit", user=0)
    connect(workspace, env, "github", user=0)
    run_extraction(workspace, clock=NoWait())
    counts = interests.compute_interests(workspace)
    profile = interests.interests_profile(workspace, "p1", top=1000)

    assert counts["subreddit"] > 0
    assert sum(row["weight"] for row in profile["subreddit"]) == pytest.approx(1.0)
    user = env.app.users["reddit"][0]
    engagement = Counter(
        t["data"]["subreddit"] for t in user["posts"] + user["comments"]
    )
    engagement.update(s["data"]["display_name"] for s in user["subscribed"])
    total = sum(engagement.values())
    top_label, top_count = sorted(engagement.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    assert profile["subreddit"][0]["label"] == top_label
    assert profile["subreddit"][0]["weight"] == pytest.approx(top_count / total)
    assert sum(row["weight"] for row in profile["language"]) == pytest.approx(1.0)


def test_interests_off_by_default(workspace, env):
    connect(workspace, env, "twitch", user=0)
    assert not interests.enabled(workspace)
    from twinme_lab.extract import extract

    extract(workspace)
    with workspace.connect() as con:
        assert con.execute("SELECT count(*) FROM interests").fetchone()[0] == 0
    interests.set_enabled(workspace, True)
    extract(workspace)
    with workspace.connect() as con:
        assert con.execute("SELECT count(*) FROM interests").fetchone()[0] == 9


def test_cli_extract_json_and_exit_codes(workspace, env, capsys):
    connect(workspace, env, "twitch", user=0)
    code = main(["extract", "--workspace", str(workspace.root), "--json", "--quiet"])
    out = json.loads(capsys.readouterr().out)
    assert code == EXIT_OK
    endpoints = {row["endpoint"]: row for row in out["endpoints"]}
    assert endpoints["followed_channels"]["items"] == 9
    assert out["summary"]["exit_code"] == 0

    env.set_fault("twitch", "forbidden", "followed_channels")
    code = main(["extract", "--workspace", str(workspace.root), "--quiet", "--refresh"])
    text = capsys.readouterr().out
    assert code == EXIT_PARTIAL
    assert "twitch followed_channels: restricted" in text


def test_cli_unknown_participant_is_refused(workspace, env, capsys):
    code = main(
        ["extract", "--workspace", str(workspace.root), "--participant", "nobody"]
    )
    assert code == 1
    assert "nobody" in capsys.readouterr().err
