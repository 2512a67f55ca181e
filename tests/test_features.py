"""Feature computation on small hand-built event tables with hand-computed values."""

from __future__ import annotations

import itertools
import math

import pytest

from twinme_lab import participants
from twinme_lab.errors import NotFoundError
from twinme_lab.features import (
    compute_features,
    definitions,
    feature_definitions,
    features_table,
)

_keys = itertools.count(1)


def play(con, pid, ended_at, kind="music", ms=60000, artist="A", skipped=None):
    """Insert one listening event; ended_at is an ISO string in UTC."""
    con.execute(
        "INSERT INTO listening_events (participant_id, source, kind, ended_at, "
        "time_precision, ms_played, artist_name, skipped, record_key, "
        "record_ordinal, import_id) VALUES (?, 'spotify_extended', ?, "
        "CAST(? AS TIMESTAMPTZ), 'second', ?, ?, ?, ?, 1, 1)",
        [pid, kind, ended_at, ms, artist, skipped, f"k{next(_keys)}"],
    )


def view(
    con,
    pid,
    title,
    started_at=None,
    watched_on=None,
    duration=None,
    series=None,
    supplemental=False,
    source="netflix_activity",
):
    """Insert one viewing event; an episode is a row with a series title."""
    precision = "second" if started_at else "day"
    if watched_on is None:
        watched_on = started_at[:10]
    con.execute(
        "INSERT INTO viewing_events (participant_id, source, started_at, "
        "watched_on, time_precision, duration_s, title, series_title, is_episode, "
        "supplemental_type, is_supplemental, record_key, record_ordinal, "
        "import_id) VALUES (?, ?, CAST(? AS TIMESTAMPTZ), CAST(? AS DATE), ?, ?, "
        "?, ?, ?, ?, ?, ?, 1, 1)",
        [
            pid,
            source,
            started_at,
            watched_on,
            precision,
            duration,
            title,
            series,
            series is not None,
            "TRAILER" if supplemental else None,
            supplemental,
            f"v{next(_keys)}",
        ],
    )


def values_of(ws, pid) -> dict:
    table = features_table(ws, pid)
    return {
        row.feature: (None if math.isnan(row.value) else row.value, row.n_obs)
        for row in table.itertuples()
    }


def test_definitions_declare_unit_and_source():
    table = feature_definitions()
    assert "listening_artist_entropy" in set(table["feature"])
    assert "viewing_binge_sessions" in set(table["feature"])
    assert table["unit"].str.len().min() > 0
    assert set(definitions()) == set(table["feature"])


def test_artist_entropy_top_share_hours(workspace):
    participants.add(workspace, "p1")
    with workspace.connect() as con:
        for artist, count in (("A", 4), ("B", 2), ("C", 2)):
            for i in range(count):
                play(con, "p1", f"2026-01-0{i + 1}T12:00:00Z", ms=450000, artist=artist)
    compute_features(workspace)
    got = values_of(workspace, "p1")
    # p = (1/2, 1/4, 1/4): H = 1.5 ln 2, normalized by ln 3.
    assert got["listening_artist_entropy"][0] == pytest.approx(
        1.5 * math.log(2) / math.log(3)
    )
    assert got["listening_artist_entropy"][1] == 8
    assert got["listening_top_artist_share"][0] == pytest.approx(0.5)
    assert got["listening_distinct_artists"][0] == 3
    # 8 plays x 7.5 minutes = one hour.
    assert got["listening_hours"][0] == pytest.approx(1.0)


def test_entropy_single_artist_is_zero(workspace):
    participants.add(workspace, "solo")
    with workspace.connect() as con:
        for day in range(1, 7):
            play(con, "solo", f"2026-02-0{day}T12:00:00Z", artist="Only")
    compute_features(workspace)
    got = values_of(workspace, "solo")
    assert got["listening_artist_entropy"][0] == 0.0
    assert got["listening_top_artist_share"][0] == 1.0


def test_below_minimum_observations_is_null(workspace):
    participants.add(workspace, "few")
    with workspace.connect() as con:
        for day, artist in ((1, "A"), (2, "B"), (3, "C")):
            play(con, "few", f"2026-02-0{day}T12:00:00Z", artist=artist)
    compute_features(workspace)
    got = values_of(workspace, "few")
    assert got["listening_artist_entropy"] == (None, 3)
    assert got["listening_distinct_artists"] == (3, 3)


def test_skip_rate_ignores_unrecorded_plays(workspace):
    participants.add(workspace, "skips")
    participants.add(workspace, "old_export")
    with workspace.connect() as con:
        recorded = [True, True, False, False, False, False]
        for i, skipped in enumerate(recorded + [None] * 4):
            play(con, "skips", f"2026-03-{i + 1:02d}T12:00:00Z", skipped=skipped)
        for i in range(8):
            play(con, "old_export", f"2026-03-{i + 1:02d}T12:00:00Z", skipped=None)
    compute_features(workspace)
    got = values_of(workspace, "skips")
    assert got["listening_skip_rate"][0] == pytest.approx(2 / 6)
    assert got["listening_skip_rate"][1] == 6
    assert values_of(workspace, "old_export")["listening_skip_rate"] == (None, 0)


DST_PLAYS = [
    "2026-03-27T04:30:00Z",  # Fri 05:30 CET: night
    "2026-03-28T23:30:00Z",  # Sun 00:30 CET: night
    "2026-03-29T03:30:00Z",  # Sun 05:30 CEST: night
    "2026-03-29T04:30:00Z",  # Sun 06:30 CEST: day (05:30 at a fixed +01:00)
    "2026-03-29T12:00:00Z",  # Sun 14:00 CEST: day
    "2026-03-30T04:59:00Z",  # Mon 06:59 CEST: day (05:59 at a fixed +01:00)
]


def test_night_share_across_dst_change(workspace):
    participants.add(workspace, "berlin", "Europe/Berlin")
    with workspace.connect() as con:
        for ended in DST_PLAYS:
            play(con, "berlin", ended)
    compute_features(workspace)
    got = values_of(workspace, "berlin")
    assert got["listening_night_share"] == (pytest.approx(3 / 6), 6)
    # Local days: Fri 27, Sun 29 (four plays), Mon 30.
    assert got["listening_active_days"][0] == 3
    assert got["listening_weekend_share"][0] == pytest.approx(4 / 6)


def test_time_of_day_null_without_zone(workspace):
    participants.add(workspace, "nozone")
    with workspace.connect() as con:
        for ended in DST_PLAYS:
            play(con, "nozone", ended)
    compute_features(workspace)
    got = values_of(workspace, "nozone")
    assert got["listening_night_share"] == (None, 6)
    assert got["listening_weekend_share"] == (None, 6)
    # Active days fall back to UTC dates: 27, 28, 29, 30.
    assert got["listening_active_days"][0] == 4


def test_podcast_share_by_time_and_video_left_out(workspace):
    participants.add(workspace, "mix")
    with workspace.connect() as con:
        for day in (1, 2, 3):
            play(con, "mix", f"2026-04-0{day}T12:00:00Z", ms=60000)
        play(con, "mix", "2026-04-04T12:00:00Z", kind="podcast", ms=180000, artist=None)
        play(
            con, "mix", "2026-04-05T12:00:00Z", kind="audiobook", ms=60000, artist=None
        )
        play(con, "mix", "2026-04-06T12:00:00Z", kind="video", ms=3600000, artist=None)
    compute_features(workspace)
    got = values_of(workspace, "mix")
    assert got["listening_podcast_share"] == (pytest.approx(3 / 7), 5)
    # 420000 ms of audio; the hour of video is not listening.
    assert got["listening_hours"][0] == pytest.approx(420000 / 3600000)


def test_new_artist_rate_per_month(workspace):
    participants.add(workspace, "months")
    participants.add(workspace, "onemonth")
    with workspace.connect() as con:
        for ended, artist in (
            ("2026-01-05T12:00:00Z", "A"),
            ("2026-01-06T12:00:00Z", "B"),
            ("2026-02-05T12:00:00Z", "A"),
            ("2026-02-06T12:00:00Z", "C"),
            ("2026-04-05T12:00:00Z", "D"),
            ("2026-04-06T12:00:00Z", "B"),
        ):
            play(con, "months", ended, artist=artist)
        for day in (1, 2):
            play(con, "onemonth", f"2026-01-0{day}T12:00:00Z", artist=str(day))
    compute_features(workspace)
    # C and D are new after January; February to April is three months.
    assert values_of(workspace, "months")["listening_new_artist_rate"][0] == (
        pytest.approx(2 / 3)
    )
    assert values_of(workspace, "onemonth")["listening_new_artist_rate"][0] is None


def test_viewing_binge_titles_series_hours(workspace):
    participants.add(workspace, "nyc", "America/New_York")
    with workspace.connect() as con:
        # Three episodes of S on one day: one binge session.
        for hour, episode in ((18, 1), (19, 2), (20, 3)):
            view(
                con,
                "nyc",
                f"S: E{episode}",
                f"2026-01-05T{hour}:00:00Z",
                None,
                1800,
                "S",
            )
        # Two distinct episodes of S the next day, one of them twice: no session.
        for hour, episode in ((15, 4), (16, 4), (17, 5)):
            view(
                con,
                "nyc",
                f"S: E{episode}",
                f"2026-01-06T{hour}:00:00Z",
                None,
                1800,
                "S",
            )
        # Two episodes of T and a T trailer: the trailer never counts.
        for hour, episode in ((15, 1), (16, 2)):
            view(
                con,
                "nyc",
                f"T: E{episode}",
                f"2026-01-07T{hour}:00:00Z",
                None,
                1800,
                "T",
            )
        view(
            con,
            "nyc",
            "T: Trailer",
            "2026-01-07T17:00:00Z",
            None,
            3600,
            "T",
            supplemental=True,
        )
        # U: 17:00, 18:00 and 20:00 on 10 January in New York, which spans two
        # UTC dates; the export's watched_on is the UTC date.
        for started, episode in (
            ("2026-01-10T22:00:00Z", 1),
            ("2026-01-10T23:00:00Z", 2),
            ("2026-01-11T01:00:00Z", 3),
        ):
            view(con, "nyc", f"U: E{episode}", started, None, 1800, "U")
        # A film at 01:30 New York time.
        view(con, "nyc", "M", "2026-01-12T06:30:00Z", None, 5400)
    compute_features(workspace)
    got = values_of(workspace, "nyc")
    assert got["viewing_binge_sessions"] == (2, 12)
    assert got["viewing_distinct_titles"][0] == 4
    assert got["viewing_series_share"][0] == pytest.approx(11 / 12)
    # 11 episodes of 30 minutes and a 90-minute film; the trailer is excluded.
    assert got["viewing_hours"] == (pytest.approx(7.0), 12)
    assert got["viewing_late_night_share"][0] == pytest.approx(1 / 12)


def test_history_only_netflix_has_no_hours(workspace):
    participants.add(workspace, "history", "Europe/London")
    with workspace.connect() as con:
        for episode in (1, 2, 3):
            view(
                con,
                "history",
                f"S: E{episode}",
                None,
                "2026-02-01",
                None,
                "S",
                source="netflix_history",
            )
        for day in (2, 3):
            view(
                con,
                "history",
                "Film",
                None,
                f"2026-02-0{day}",
                None,
                source="netflix_history",
            )
    compute_features(workspace)
    got = values_of(workspace, "history")
    assert got["viewing_hours"] == (None, 0)
    assert got["viewing_late_night_share"] == (None, 0)
    assert got["viewing_binge_sessions"] == (1, 5)
    assert got["viewing_distinct_titles"][0] == 2


def test_supplemental_only_counts_nothing(workspace):
    participants.add(workspace, "trailers", "Europe/London")
    with workspace.connect() as con:
        for hour in range(10, 17):
            view(
                con,
                "trailers",
                "X: Trailer",
                f"2026-02-01T{hour}:00:00Z",
                None,
                60,
                "X",
                supplemental=True,
            )
    compute_features(workspace)
    got = values_of(workspace, "trailers")
    for name in (
        "viewing_hours",
        "viewing_distinct_titles",
        "viewing_series_share",
        "viewing_binge_sessions",
        "viewing_late_night_share",
    ):
        assert got[name] == (None, 0), name


def test_participant_without_data_gets_null_rows(workspace):
    participants.add(workspace, "empty")
    summary = compute_features(workspace)
    table = features_table(workspace, "empty")
    assert len(table) == len(definitions())
    assert table["value"].isna().all()
    assert (table["n_obs"] == 0).all()
    assert summary["features"]["listening_hours"] == {"value": 0, "null": 1}


def test_recompute_replaces_rows_deterministically(workspace):
    participants.add(workspace, "p1", "Europe/Berlin")
    participants.add(workspace, "p2")
    with workspace.connect() as con:
        for i, artist in enumerate("AABBBCDDEE"):
            play(con, "p1", f"2026-05-{i + 1:02d}T22:00:00Z", artist=artist)
        play(con, "p2", "2026-05-01T12:00:00Z")
    compute_features(workspace)
    first = features_table(workspace)
    compute_features(workspace)
    second = features_table(workspace)
    assert len(second) == 2 * len(definitions())
    assert first["value"].fillna(-1).tolist() == second["value"].fillna(-1).tolist()

    with workspace.connect() as con:
        con.execute("DELETE FROM listening_events WHERE participant_id = 'p1'")
    compute_features(workspace, ["p1"])
    after = values_of(workspace, "p1")
    assert after["listening_hours"] == (None, 0)
    # p2 was outside the run and keeps its rows.
    assert values_of(workspace, "p2")["listening_hours"][1] == 1


def test_unknown_participant_rejected(workspace):
    with pytest.raises(NotFoundError, match="ghost"):
        compute_features(workspace, ["ghost"])


def test_no_participants_computes_nothing(workspace):
    summary = compute_features(workspace)
    assert summary["participants"] == []
    assert summary["rows"] == 0
    assert features_table(workspace).empty


def test_play_in_account_and_extended_counts_once(workspace):
    participants.add(workspace, "P1", "UTC")
    with workspace.connect() as con:
        for source, precision, ended_at, ordinal in (
            ("spotify_extended", "second", "2024-03-01 10:00:41+00", 1),
            ("spotify_account", "minute", "2024-03-01 10:00:00+00", 1),
            ("spotify_account", "minute", "2024-03-01 11:00:00+00", 1),
        ):
            con.execute(
                "INSERT INTO listening_events (participant_id, source, kind, "
                "ended_at, time_precision, ms_played, track_name, artist_name, "
                "record_key, record_ordinal, import_id) VALUES ('P1', ?, 'music', "
                "CAST(? AS TIMESTAMPTZ), ?, 1800000, 'Song', 'Band', ?, ?, 1)",
                [source, ended_at, precision, f"d{next(_keys)}", ordinal],
            )
    compute_features(workspace)
    values = values_of(workspace, "P1")
    # The 10:00 account row is the extended play seen twice; the 11:00 one is new.
    assert values["listening_hours"] == (1.0, 2)


@pytest.mark.parametrize(
    ("zone", "start"),
    [
        # Lord Howe leaves daylight saving on 2024-04-07, going back 30 minutes.
        ("Australia/Lord_Howe", "2024-04-06 12:00:00+00"),
        ("Asia/Kathmandu", "2024-04-06 12:00:00+00"),
        # St John's starts daylight saving on 2024-03-10 at 02:00 local time.
        ("America/St_Johns", "2024-03-10 00:00:00+00"),
    ],
)
def test_night_and_weekend_in_odd_offset_zones(workspace, zone, start):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    participants.add(workspace, "P1", zone)
    first = datetime.fromisoformat(start)
    ends = [first + timedelta(minutes=7 * i) for i in range(600)]
    with workspace.connect() as con:
        for ended in ends:
            play(con, "P1", ended.isoformat())
    compute_features(workspace)
    values = values_of(workspace, "P1")

    local = [ended.astimezone(ZoneInfo(zone)) for ended in ends]
    night = sum(1 for moment in local if moment.hour < 6) / len(local)
    weekend = sum(1 for moment in local if moment.weekday() >= 5) / len(local)
    assert values["listening_night_share"][0] == pytest.approx(night, abs=1e-12)
    assert values["listening_weekend_share"][0] == pytest.approx(weekend, abs=1e-12)
    assert values["listening_night_share"][1] == 600
