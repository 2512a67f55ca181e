"""compute_features restricted to a list of features, and the --feature option."""

from __future__ import annotations

import itertools
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from conftest import REAL

from twinme_lab import participants
from twinme_lab.cli import common, main
from twinme_lab.errors import UsageError
from twinme_lab.features import compute_features, definitions, listening
from twinme_lab.imports import import_path

FIVE = [
    "listening_hours",
    "listening_active_days",
    "listening_distinct_artists",
    "listening_skip_rate",
    "listening_night_share",
]
LISTENING = [d.name for d in listening.FEATURES]

_keys = itertools.count(1)


@pytest.fixture(autouse=True)
def reset_cli_state():
    common._state.update({"json": False, "exit_code": 0})
    yield
    common._state.update({"json": False, "exit_code": 0})


def play(
    con,
    pid,
    ended_at,
    kind="music",
    ms=600000,
    artist="A",
    skipped=None,
    title="song",
    precision="second",
):
    """Insert one listening event; ended_at is an ISO string in UTC."""
    con.execute(
        "INSERT INTO listening_events (participant_id, source, kind, ended_at, "
        "time_precision, ms_played, track_name, artist_name, skipped, record_key, "
        "record_ordinal, import_id) VALUES (?, 'spotify_extended', ?, "
        "CAST(? AS TIMESTAMPTZ), ?, ?, ?, ?, ?, ?, 1, 1)",
        [pid, kind, ended_at, precision, ms, title, artist, skipped, f"k{next(_keys)}"],
    )


def stored(ws) -> dict:
    """Return every stored feature row by (participant, feature), NULL as None."""
    with ws.connect() as con:
        rows = con.execute(
            "SELECT participant_id, feature, value, n_obs, window_start, "
            "window_end, computed_at FROM features"
        ).fetchall()
    return {(row[0], row[1]): row[2:] for row in rows}


def audit_count(ws) -> int:
    with ws.connect() as con:
        return con.execute("SELECT count(*) FROM audit_log").fetchone()[0]


def add_berlin(ws):
    """Add participant 'berlin' with plays whose five features are worked out.

    Six music plays of 10 minutes, so 1.0 hour. Artists A, A, B, C, C, C, so 3
    distinct. Skip field on five plays, two of them skipped, so 0.4. Local
    (Berlin) days 2 Jan, 2 Jan, 3 Jan, 5 Jan, 1 Jul and 1 Jul, so 4 active
    days. Plays ending at 00:30, 05:00 and 05:30 local are at night, so 0.5.
    The video play and the minute-precision copy of the 10:00:30 play are left
    out.
    """
    participants.add(ws, "berlin", "Europe/Berlin")
    with ws.connect() as con:
        play(con, "berlin", "2024-01-01T23:30:00Z", artist="A", skipped=True)
        play(con, "berlin", "2024-01-02T10:00:30Z", artist="A", skipped=False)
        play(con, "berlin", "2024-01-03T04:00:00Z", artist="B", skipped=None)
        play(con, "berlin", "2024-01-05T12:00:00Z", artist="C", skipped=False)
        play(con, "berlin", "2024-07-01T03:30:00Z", artist="C", skipped=True)
        play(con, "berlin", "2024-07-01T04:30:00Z", artist="C", skipped=False)
        play(con, "berlin", "2024-01-04T12:00:00Z", kind="video", artist=None)
        play(con, "berlin", "2024-01-02T10:00:00Z", artist="A", precision="minute")


def add_generated(ws, seed=11):
    """Add participants in several zones, one without a zone, with random plays.

    St John's moved its clocks at 05:30 UTC on 10 March 2024 and Lord Howe moves
    them by 30 minutes, so some plays fall in UTC hours that contain a
    transition. Some plays have a minute-precision copy (dropped), some minute
    rows have no copy (kept), and 'g_few' has fewer plays than the minimums.
    """
    zones = {
        "g_newyork": "America/New_York",
        "g_stjohns": "America/St_Johns",
        "g_lordhowe": "Australia/Lord_Howe",
        "g_kathmandu": "Asia/Kathmandu",
        "g_nozone": None,
        "g_few": "Europe/Berlin",
    }
    rng = random.Random(seed)
    kinds = ["music"] * 8 + ["podcast", "audiobook", "video"]
    start = datetime(2024, 1, 1, tzinfo=UTC)
    spring = datetime(2024, 3, 10, 5, tzinfo=UTC)
    for pid, zone in zones.items():
        participants.add(ws, pid, zone)
    with ws.connect() as con:
        for pid in zones:
            for i in range(3 if pid == "g_few" else 150):
                if i < 6:
                    ended = spring + timedelta(seconds=rng.randrange(3600))
                else:
                    ended = start + timedelta(seconds=rng.randrange(400 * 86400))
                kind = rng.choice(kinds)
                artist = rng.choice(["A", "B", "C", "D", None])
                title = f"t{rng.randrange(12)}"
                ms = rng.randrange(400000)
                play(
                    con,
                    pid,
                    _iso(ended),
                    kind,
                    ms,
                    artist,
                    rng.choice([True, False, None]),
                    title,
                )
                if rng.random() < 0.2:
                    minute = ended.replace(second=0)
                    play(
                        con, pid, _iso(minute), kind, ms, artist, None, title, "minute"
                    )
            for _ in range(5):
                ended = start + timedelta(minutes=rng.randrange(400 * 1440))
                play(
                    con,
                    pid,
                    _iso(ended),
                    "music",
                    1000,
                    "E",
                    None,
                    "unmatched",
                    "minute",
                )


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def cohort(workspace):
    add_berlin(workspace)
    add_generated(workspace)
    return workspace


def assert_same_rows(after: dict, before: dict, names, computed_again: bool):
    """Check the rows of ``names`` against ``before``, value by value."""
    keys = sorted(key for key in before if key[1] in names)
    assert keys, names
    for key in keys:
        assert after[key][:4] == before[key][:4], key
        if computed_again:
            assert after[key][4] > before[key][4], key
        else:
            assert after[key][4] == before[key][4], key


def test_subset_equals_full_run(cohort):
    compute_features(cohort)
    full = stored(cohort)
    subsets = [FIVE, *([name] for name in LISTENING)]
    subsets += [
        ["listening_distinct_artists", "listening_artist_entropy"],
        ["listening_new_artist_rate", "listening_podcast_share"],
        ["listening_weekend_share", "viewing_hours"],
    ]
    for subset in subsets:
        before = stored(cohort)
        summary = compute_features(cohort, features=subset)
        after = stored(cohort)
        assert set(after) == set(full), subset
        assert_same_rows(after, full, subset, computed_again=True)
        others = [name for name in definitions() if name not in subset]
        assert_same_rows(after, before, others, computed_again=False)
        assert sorted(summary["features"]) == sorted(subset)


def test_subset_values_by_hand(cohort):
    summary = compute_features(cohort, features=FIVE)
    rows = stored(cohort)
    assert rows[("berlin", "listening_hours")][:2] == (1.0, 6)
    assert rows[("berlin", "listening_active_days")][:2] == (4.0, 6)
    assert rows[("berlin", "listening_distinct_artists")][:2] == (3.0, 6)
    assert rows[("berlin", "listening_skip_rate")][:2] == (0.4, 5)
    assert rows[("berlin", "listening_night_share")][:2] == (0.5, 6)
    # No time zone: no night share. Fewer than five plays: no skip rate.
    assert rows[("g_nozone", "listening_night_share")][0] is None
    assert rows[("g_few", "listening_skip_rate")][0] is None
    assert summary["modules"] == ["listening"]
    assert summary["rows"] == 5 * 7
    assert len(rows) == 5 * 7


def test_subset_keeps_other_rows(workspace):
    add_berlin(workspace)
    compute_features(workspace)
    before = stored(workspace)
    with workspace.connect() as con:
        play(con, "berlin", "2024-08-01T12:00:00Z", ms=1800000, artist="Z")

    compute_features(workspace, features=["listening_hours"])
    after = stored(workspace)
    assert after[("berlin", "listening_hours")][:2] == (1.5, 7)
    # Not requested, so still from before the new play (4 days, 3 artists).
    assert (
        after[("berlin", "listening_active_days")]
        == before[("berlin", "listening_active_days")]
    )
    assert after[("berlin", "listening_distinct_artists")][0] == 3.0
    assert_same_rows(
        after, before, [n for n in definitions() if n != "listening_hours"], False
    )


def test_subset_for_one_participant(cohort):
    compute_features(cohort)
    before = stored(cohort)
    compute_features(cohort, ["berlin"], features=["listening_night_share"])
    after = stored(cohort)
    for key, row in after.items():
        if key == ("berlin", "listening_night_share"):
            assert row[:4] == before[key][:4]
            assert row[4] > before[key][4]
        else:
            assert row == before[key], key


def test_real_sample_subset(workspace):
    participants.add(workspace, "P1", "Europe/Berlin")
    import_path(workspace, "spotify", REAL / "spotify_extended" / "a", "P1")
    import_path(
        workspace,
        "netflix",
        REAL / "netflix_viewing_activity" / "b" / "ViewingActivity.csv",
        "P1",
    )
    compute_features(workspace)
    full = stored(workspace)
    assert full[("P1", "listening_hours")][0] is not None
    assert full[("P1", "listening_night_share")][0] is not None
    for subset in (FIVE, LISTENING, ["viewing_hours", "listening_artist_entropy"]):
        compute_features(workspace, features=subset)
        assert_same_rows(stored(workspace), full, subset, computed_again=True)


def test_unknown_feature_changes_nothing(cohort):
    compute_features(cohort)
    before = stored(cohort)
    audits = audit_count(cohort)
    with pytest.raises(UsageError) as caught:
        compute_features(cohort, features=["listening_hours", "listening_hourz"])
    message = str(caught.value)
    assert "'listening_hourz'" in message
    assert "listening_hours," in message
    assert "viewing_hours" in message
    assert stored(cohort) == before
    assert audit_count(cohort) == audits


def test_empty_or_string_features_rejected(cohort):
    with pytest.raises(UsageError, match="empty list"):
        compute_features(cohort, features=[])
    with pytest.raises(UsageError, match="not one string"):
        compute_features(cohort, features="listening_hours")
    assert stored(cohort) == {}


def test_cli_feature_option(cohort, capsys):
    root = str(cohort.root)
    assert main(["features", "--workspace", root, "--json"]) == 0
    full = json.loads(capsys.readouterr().out)
    code = main(
        [
            "features",
            "--workspace",
            root,
            "--feature",
            "listening_hours",
            "--feature",
            "listening_skip_rate",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == set(full)
    assert summary["modules"] == ["listening"]
    assert sorted(summary["features"]) == ["listening_hours", "listening_skip_rate"]
    assert summary["features"]["listening_hours"] == full["features"]["listening_hours"]
    assert summary["rows"] == 2 * 7

    assert main(["features", "--workspace", root, "--feature", "viewing_hours"]) == 0
    text = capsys.readouterr().out
    assert "viewing_hours" in text
    assert "listening_hours" not in text


def test_cli_unknown_feature(cohort, capsys):
    root = str(cohort.root)
    code = main(["features", "--workspace", root, "--feature", "listening_hourz"])
    assert code == 2
    err = capsys.readouterr().err
    assert "Unknown feature 'listening_hourz'" in err
    assert stored(cohort) == {}
