"""YouTube Takeout importer and features on the real samples and variants."""

from __future__ import annotations

import json
import math
import shutil
import zipfile

import pytest
from conftest import REAL, feature_value, kinds_of, query

from twinme_lab import participants
from twinme_lab.errors import InputError
from twinme_lab.features import compute_features
from twinme_lab.imports import import_path

TAKEOUT_A = REAL / "youtube_takeout" / "a"
HISTORY_A = TAKEOUT_A / "Takeout" / "YouTube and YouTube Music" / "history"
WATCH_A = HISTORY_A / "watch-history.json"
SEARCH_A = HISTORY_A / "search-history.json"
WATCH_B = REAL / "youtube_takeout" / "b" / "watch-history.json"

AD_ROW = {
    "header": "YouTube",
    "title": "Watched Spring sale trailer",
    "titleUrl": "https://www.youtube.com/watch?v\u003dAAAAAAAAAAA",
    "subtitles": [
        {"name": "Example Shop", "url": "https://www.youtube.com/channel/UCexample"}
    ],
    "time": "2021-12-30T18:00:00.000Z",
    "products": ["YouTube"],
    "details": [{"name": "From Google Ads"}],
    "activityControls": ["Web \u0026 App Activity", "YouTube watch history"],
}


def test_sample_counts_match_expected(ws, expected_counts):
    for relative, path in (
        (
            "youtube_takeout/a/Takeout/YouTube and YouTube Music/history/"
            "watch-history.json",
            WATCH_A,
        ),
        (
            "youtube_takeout/a/Takeout/YouTube and YouTube Music/history/"
            "search-history.json",
            SEARCH_A,
        ),
        ("youtube_takeout/b/watch-history.json", WATCH_B),
    ):
        summary = import_path(ws, "youtube", path, "P001")
        assert summary.added == expected_counts[relative]["records"], relative


def test_watch_history_a_rows(ws):
    summary = import_path(ws, "youtube", WATCH_A, "P001")
    assert kinds_of(summary) == {"watch": (300, 0)}
    removed = query(
        ws,
        "SELECT count(*) FROM youtube_events WHERE removed AND video_id IS NULL "
        "AND video_title IS NULL AND channel_id IS NULL",
    )[0][0]
    assert removed == 8
    no_channel = query(
        ws,
        "SELECT count(*) FROM youtube_events WHERE NOT removed AND channel_id IS NULL",
    )[0][0]
    assert no_channel == 2


def test_title_url_escapes_decoded(ws):
    import_path(ws, "youtube", WATCH_A, "P001")
    first = json.loads(WATCH_A.read_text())[0]
    row = query(
        ws,
        "SELECT video_id, video_title, channel_id, channel_name FROM youtube_events "
        "WHERE occurred_at = CAST(? AS TIMESTAMPTZ)",
        [first["time"]],
    )[0]
    assert row[0] == first["titleUrl"].split("v=")[1]
    assert row[1] == first["title"].removeprefix("Watched ")
    assert row[2] == first["subtitles"][0]["url"].rsplit("/", 1)[1]
    assert row[3] == first["subtitles"][0]["name"]


def test_music_header_and_visits(ws):
    summary = import_path(ws, "youtube", WATCH_B, "P001")
    assert kinds_of(summary) == {"watch": (290, 0), "visit": (10, 0)}
    rows = json.loads(WATCH_B.read_text())
    music_watches = sum(
        1
        for r in rows
        if r["header"] == "YouTube Music" and r["title"].startswith("Watched")
    )
    stored = query(
        ws,
        "SELECT count(*) FROM youtube_events WHERE kind = 'watch' "
        "AND product = 'YouTube Music'",
    )[0][0]
    assert stored == music_watches == 234


def test_visit_rows_keep_no_recommendation_notes(ws):
    import_path(ws, "youtube", WATCH_B, "P001")
    rows = query(
        ws,
        "SELECT channel_name, channel_id, removed FROM youtube_events "
        "WHERE kind = 'visit'",
    )
    assert len(rows) == 10
    assert all(r == (None, None, False) for r in rows)
    weather = query(
        ws, "SELECT count(*) FROM youtube_events WHERE channel_name LIKE 'Weather%'"
    )[0][0]
    assert weather == 0


def test_timestamp_precisions(ws):
    import_path(ws, "youtube", WATCH_B, "P001")
    import_path(ws, "youtube", SEARCH_A, "P001")
    rows = query(
        ws,
        "SELECT kind, strftime(occurred_at AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%S') "
        "FROM youtube_events WHERE time_precision = 'second' ORDER BY kind",
    )
    assert ("watch", "2022-03-30T06:32:42") in rows
    assert len([r for r in rows if r[0] == "search"]) == 1
    assert len(rows) == 2


def test_search_text_not_stored_by_default(ws):
    summary = import_path(ws, "youtube", SEARCH_A, "P001")
    assert kinds_of(summary) == {"search": (300, 0)}
    assert query(ws, "SELECT count(search_query) FROM youtube_events")[0][0] == 0
    first = json.loads(SEARCH_A.read_text())[0]["title"].removeprefix("Searched for ")
    hits = query(
        ws,
        "SELECT count(*) FROM youtube_events WHERE video_title = ? OR channel_name = ?",
        [first, first],
    )[0][0]
    assert hits == 0


def test_search_text_kept_on_request(ws):
    import_path(ws, "youtube", SEARCH_A, "P001", keep_text=True)
    queries = query(
        ws, "SELECT search_query FROM youtube_events ORDER BY occurred_at DESC"
    )
    expected = sorted(
        (r["time"], r["title"].removeprefix("Searched for "))
        for r in json.loads(SEARCH_A.read_text())
    )
    assert len(queries) == 300
    assert queries[0][0] == expected[-1][1]
    assert sorted(q for (q,) in queries) == sorted(q for _, q in expected)


def test_ads_kept_apart(ws, tmp_path):
    rows = json.loads(WATCH_A.read_text())[:5] + [AD_ROW]
    path = tmp_path / "watch-history.json"
    path.write_text(json.dumps(rows))
    summary = import_path(ws, "youtube", path, "P001")
    assert kinds_of(summary) == {"watch": (5, 0), "ad": (1, 0)}
    compute_features(ws)
    watches, n_obs = feature_value(ws, "youtube_watches")
    assert watches == 5
    assert n_obs == 5


def test_reimport_adds_nothing(ws):
    import_path(ws, "youtube", TAKEOUT_A, "P001")
    again = import_path(ws, "youtube", TAKEOUT_A, "P001")
    assert again.added == 0
    assert kinds_of(again) == {"watch": (0, 300), "search": (0, 300)}
    assert query(ws, "SELECT count(*) FROM youtube_events")[0][0] == 600


def test_overlapping_export_adds_new_rows(ws, tmp_path):
    rows = json.loads(WATCH_A.read_text())
    older = tmp_path / "older" / "watch-history.json"
    older.parent.mkdir()
    older.write_text(json.dumps(rows[100:]))
    import_path(ws, "youtube", older, "P001")
    summary = import_path(ws, "youtube", WATCH_A, "P001")
    assert kinds_of(summary) == {"watch": (100, 200)}


def test_takeout_zip(ws, tmp_path):
    archive = tmp_path / "takeout-20220101T000000Z-001.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in HISTORY_A.iterdir():
            zf.write(path, f"Takeout/YouTube and YouTube Music/history/{path.name}")
        zf.writestr("Takeout/archive_browser.html", "<html></html>")
    summary = import_path(ws, "youtube", archive, "P001")
    assert summary.added == 600
    assert summary.ignored_files == 1


def test_html_history_rejected(ws, tmp_path):
    folder = tmp_path / "history"
    folder.mkdir()
    (folder / "watch-history.html").write_text("<html><body>Watched</body></html>")
    with pytest.raises(InputError) as error:
        import_path(ws, "youtube", folder, "P001")
    message = str(error.value)
    assert "watch-history.html" in message
    assert "JSON" in message
    assert query(ws, "SELECT count(*) FROM youtube_events")[0][0] == 0


def test_html_saved_as_json_rejected(ws, tmp_path):
    path = tmp_path / "watch-history.json"
    path.write_text("<!DOCTYPE html><html></html>")
    with pytest.raises(InputError, match="JSON"):
        import_path(ws, "youtube", path, "P001")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "empty"),
        ('{"title": "Watched x"}', "JSON array"),
        (
            '[{"header": "YouTube", "title": "Watched x", "time": "yesterday"}]',
            "ISO-8601",
        ),
        ('[{"header": "YouTube", "title": "Watched x"}]', "no 'time'"),
    ],
)
def test_malformed_file_adds_nothing(ws, tmp_path, content, problem):
    good = tmp_path / "export" / "search-history.json"
    good.parent.mkdir()
    shutil.copy(SEARCH_A, good)
    (tmp_path / "export" / "watch-history.json").write_text(content)
    with pytest.raises(InputError) as error:
        import_path(ws, "youtube", tmp_path / "export", "P001")
    assert problem in str(error.value)
    assert "watch-history.json" in str(error.value)
    assert query(ws, "SELECT count(*) FROM youtube_events")[0][0] == 0
    assert query(ws, "SELECT count(*) FROM imports")[0][0] == 0


def test_truncated_json_names_file(ws, tmp_path):
    path = tmp_path / "watch-history.json"
    path.write_text(WATCH_A.read_text()[:5000])
    with pytest.raises(InputError, match="watch-history.json"):
        import_path(ws, "youtube", path, "P001")


def test_features_from_takeout(workspace):
    participants.add(workspace, "P001", timezone_name="Asia/Bangkok")
    import_path(workspace, "youtube", TAKEOUT_A, "P001")
    compute_features(workspace, ["P001"])
    rows = json.loads(WATCH_A.read_text())

    assert feature_value(workspace, "youtube_watches") == (300, 300)
    assert feature_value(workspace, "youtube_watch_hours") == (None, 0)
    assert feature_value(workspace, "youtube_topic_diversity") == (None, 0)

    channels = {r["subtitles"][0]["url"] for r in rows if "subtitles" in r}
    assert feature_value(workspace, "youtube_distinct_channels") == (len(channels), 290)

    # Bangkok is UTC+7 all year: night (00:00-05:59 local) is 17:00-22:59 UTC.
    night = sum(1 for r in rows if 17 <= int(r["time"][11:13]) <= 22)
    value, n_obs = feature_value(workspace, "youtube_night_share")
    assert value == pytest.approx(night / 300)
    assert n_obs == 300

    assert feature_value(workspace, "youtube_search_watch_ratio") == (1.0, 600)
    assert feature_value(workspace, "youtube_music_share") == (0.0, 300)


def test_channel_entropy_by_hand(ws, tmp_path):
    base = json.loads(WATCH_A.read_text())[0]
    rows = []
    for index, channel in enumerate(["A", "A", "A", "B", "B", "C"]):
        row = dict(base, time=f"2021-01-0{index + 1}T10:00:00.000Z")
        row["subtitles"] = [
            {"name": channel, "url": f"https://www.youtube.com/channel/UC{channel}"}
        ]
        rows.append(row)
    path = tmp_path / "watch-history.json"
    path.write_text(json.dumps(rows))
    import_path(ws, "youtube", path, "P001")
    compute_features(ws)
    # p = 1/2, 1/3, 1/6: H = 1.0114 nats, divided by ln 3 = 1.0986.
    value, n_obs = feature_value(ws, "youtube_channel_entropy")
    assert value == pytest.approx(1.011404 / 1.098612, abs=1e-5)
    assert n_obs == 6


def test_features_null_below_minimum(ws, tmp_path):
    path = tmp_path / "watch-history.json"
    path.write_text(json.dumps(json.loads(WATCH_A.read_text())[:4]))
    import_path(ws, "youtube", path, "P001")
    compute_features(ws)
    assert feature_value(ws, "youtube_watches") == (4, 4)
    assert feature_value(ws, "youtube_music_share") == (None, 4)
    assert feature_value(ws, "youtube_channel_entropy") == (None, 4)
    assert feature_value(ws, "youtube_search_watch_ratio") == (None, 0)
    assert feature_value(ws, "youtube_night_share") == (None, 4)


def test_topic_diversity_from_channel_topics(ws, tmp_path):
    base = json.loads(WATCH_A.read_text())[0]
    rows = []
    for index, channel in enumerate(["A", "A", "B", "B", "B", "C"]):
        row = dict(base, time=f"2021-01-0{index + 1}T10:00:00.000Z")
        row["subtitles"] = [
            {"name": channel, "url": f"https://www.youtube.com/channel/UC{channel}"}
        ]
        rows.append(row)
    path = tmp_path / "watch-history.json"
    path.write_text(json.dumps(rows))
    import_path(ws, "youtube", path, "P001")
    music = "https://en.wikipedia.org/wiki/Music"
    games = "https://en.wikipedia.org/wiki/Video_game_culture"
    # Topics as the YouTube extractor caches them; channel C was never looked up.
    with ws.connect() as con:
        con.execute(
            "INSERT INTO channel_topics VALUES "
            "('youtube', 'UCA', [?], now()), ('youtube', 'UCB', [?, ?], now())",
            [music, music, games],
        )
    compute_features(ws)
    # Watch-topic pairs: A 2 x music, B 3 x music and 3 x games: 5 music, 3 games.
    p_music, p_games = 5 / 8, 3 / 8
    entropy = -(p_music * math.log(p_music) + p_games * math.log(p_games))
    value, n_obs = feature_value(ws, "youtube_topic_diversity")
    assert value == pytest.approx(entropy / math.log(2))
    assert n_obs == 5
