"""Spotify importer on the real samples, their variants and broken copies."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections import Counter
from datetime import UTC, datetime

import pytest
from conftest import REAL, query

from twinme_lab.cli import main as cli_main
from twinme_lab.errors import InputError
from twinme_lab.imports import import_path

PLAY_FILES = [
    "spotify_account/a/StreamingHistory_music_0.json",
    "spotify_account/a/StreamingHistory_podcast_0.json",
    "spotify_account/a/StreamingHistory_audiobook_0.json",
    "spotify_account/b/my_spotify_data/Spotify Account Data/"
    "StreamingHistory_music_0.json",
    "spotify_account/b/my_spotify_data/Spotify Account Data/"
    "StreamingHistory_podcast_0.json",
    "spotify_extended/a/Streaming_History_Audio_2023.json",
    "spotify_extended/a/Streaming_History_Video_2023.json",
    "spotify_extended/b/my_spotify_data/Spotify Extended Streaming History/"
    "Streaming_History_Audio_2024.json",
    "spotify_extended/b/my_spotify_data/Spotify Extended Streaming History/"
    "Streaming_History_Video_2024.json",
]
EXTENDED_A = REAL / "spotify_extended" / "a" / "Streaming_History_Audio_2023.json"
MUSIC_A = REAL / "spotify_account" / "a" / "StreamingHistory_music_0.json"
LIBRARY_A = REAL / "spotify_account" / "a" / "YourLibrary.json"
LIBRARY_TYPES = {
    "tracks": "track",
    "albums": "album",
    "shows": "show",
    "episodes": "episode",
    "bannedTracks": "banned_track",
    "artists": "artist",
    "bannedArtists": "banned_artist",
}


def _event_count(ws) -> int:
    return query(ws, "SELECT count(*) FROM listening_events")[0][0]


@pytest.mark.parametrize("relative", PLAY_FILES)
def test_sample_counts_match_expected(ws, expected_counts, relative):
    expected = expected_counts[relative]
    summary = import_path(ws, "spotify", REAL / relative, "P001")
    assert summary.added == expected["records"]
    assert summary.skipped == 0
    rows = query(
        ws,
        "SELECT count(*), count(*) FILTER (WHERE ms_played = 0), "
        "count(*) FILTER (WHERE kind = 'podcast'), "
        "count(*) FILTER (WHERE kind = 'audiobook') FROM listening_events",
    )[0]
    assert rows[0] == expected["records"]
    assert rows[1] == expected["ms_played_zero"]
    assert rows[2] == expected["podcast_rows"]
    assert rows[3] == expected["audiobook_rows"]


def test_library_sections_match_expected(ws, expected_counts):
    sections = expected_counts["spotify_account/a/YourLibrary.json"]["sections"]
    summary = import_path(ws, "spotify", LIBRARY_A, "P001")
    stored = dict(query(ws, "SELECT item_type, count(*) FROM library_items GROUP BY 1"))
    for section, item_type in LIBRARY_TYPES.items():
        assert stored.get(item_type, 0) == sections[section], section
    assert summary.kinds["library"].added == sum(sections[s] for s in LIBRARY_TYPES)


def test_account_times_are_utc_minutes(ws):
    import_path(ws, "spotify", MUSIC_A, "P001")
    first = query(
        ws,
        "SELECT ended_at, time_precision, skipped, artist_name, track_name "
        "FROM listening_events WHERE track_name = 'Go Outside'",
    )
    assert first == [
        (
            datetime(2023, 10, 2, 23, 43, tzinfo=UTC),
            "minute",
            None,
            "Cults",
            "Go Outside",
        )
    ]


def test_account_skipped_is_null(ws):
    import_path(ws, "spotify", REAL / "spotify_account" / "a", "P001")
    assert query(ws, "SELECT count(skipped) FROM listening_events")[0][0] == 0


def test_extended_skipped_and_times(ws):
    records = json.loads(EXTENDED_A.read_text())
    import_path(ws, "spotify", EXTENDED_A, "P001")
    counts = Counter(r["skipped"] for r in records)
    stored = dict(
        query(ws, "SELECT skipped, count(*) FROM listening_events GROUP BY 1")
    )
    assert stored.get(True, 0) == counts[True]
    assert stored.get(False, 0) == counts[False]
    assert stored.get(None, 0) == counts[None]
    first = records[0]
    ended = datetime.strptime(first["ts"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    row = query(
        ws,
        "SELECT count(*) FROM listening_events WHERE ended_at = ? "
        "AND time_precision = 'second' AND ms_played = ?",
        [ended, first["ms_played"]],
    )
    assert row[0][0] >= 1


def test_podcast_row_keeps_show_name(ws):
    import_path(ws, "spotify", EXTENDED_A, "P001")
    shows = query(
        ws,
        "SELECT DISTINCT show_name FROM listening_events WHERE kind = 'podcast'",
    )
    assert ("Mythical Monsters ",) in shows


def test_zip_of_package(ws, tmp_path, expected_counts):
    package = REAL / "spotify_account" / "b"
    archive = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(package.rglob("*.json")):
            out.write(path, path.relative_to(package).as_posix())
    summary = import_path(ws, "spotify", archive, "P001")
    prefix = "spotify_account/b/my_spotify_data/Spotify Account Data/"
    music = expected_counts[prefix + "StreamingHistory_music_0.json"]["records"]
    podcast = expected_counts[prefix + "StreamingHistory_podcast_0.json"]["records"]
    assert summary.kinds["music"].added == music
    assert summary.kinds["podcast"].added == podcast
    assert _event_count(ws) == music + podcast


def test_reimport_adds_nothing(ws):
    folder = REAL / "spotify_extended"
    first = import_path(ws, "spotify", folder, "P001")
    second = import_path(ws, "spotify", folder, "P001")
    assert first.added == 300 + 16 + 300 + 227
    assert second.added == 0
    assert second.skipped == first.added
    assert _event_count(ws) == first.added


def _multiset_union(*exports: list[dict]) -> int:
    """Count records of overlapping exports, each identical record as often as
    the export that has it most often."""
    total: Counter = Counter()
    for export in exports:
        counts = Counter(json.dumps(r, sort_keys=True) for r in export)
        total |= counts
    return sum(total.values())


def test_overlapping_export_adds_new_only(ws, tmp_path):
    records = json.loads(EXTENDED_A.read_text())
    earlier, later = records[:200], records[120:]
    old = tmp_path / "old" / "Streaming_History_Audio_2023.json"
    new = tmp_path / "new" / "Streaming_History_Audio_2023_1.json"
    old.parent.mkdir()
    new.parent.mkdir()
    old.write_text(json.dumps(earlier, indent=2))
    new.write_text(json.dumps(later, indent=2))
    import_path(ws, "spotify", old, "P001")
    summary = import_path(ws, "spotify", new, "P001")
    expected_total = _multiset_union(earlier, later)
    assert _event_count(ws) == expected_total
    assert summary.added == expected_total - len(earlier)
    assert summary.skipped == len(later) - summary.added


def test_identical_records_in_file_kept(ws, tmp_path):
    record = {
        "endTime": "2024-03-01 08:15",
        "artistName": "Cults",
        "trackName": "Go Outside",
        "msPlayed": 1200,
    }
    other = dict(record, msPlayed=1500)
    target = tmp_path / "StreamingHistory_music_0.json"
    target.write_text(json.dumps([record, record, other, record], indent=2))
    summary = import_path(ws, "spotify", target, "P001")
    assert summary.added == 4
    ordinals = query(
        ws,
        "SELECT record_ordinal FROM listening_events WHERE ms_played = 1200 ORDER BY 1",
    )
    assert ordinals == [(1,), (2,), (3,)]
    again = import_path(ws, "spotify", target, "P001")
    assert again.added == 0


def test_bom_file_imports(ws, tmp_path):
    target = tmp_path / MUSIC_A.name
    target.write_bytes(b"\xef\xbb\xbf" + MUSIC_A.read_bytes())
    assert import_path(ws, "spotify", target, "P001").added == 300


def test_crlf_file_imports(ws, tmp_path):
    target = tmp_path / EXTENDED_A.name
    target.write_bytes(EXTENDED_A.read_bytes().replace(b"\n", b"\r\n"))
    assert import_path(ws, "spotify", target, "P001").added == 300


def _assert_rejected(ws, path, name):
    with pytest.raises(InputError) as caught:
        import_path(ws, "spotify", path, "P001")
    assert name in str(caught.value)
    assert _event_count(ws) == 0
    assert query(ws, "SELECT count(*) FROM imports")[0][0] == 0
    return str(caught.value)


def test_truncated_json_rejected(ws, tmp_path):
    data = EXTENDED_A.read_bytes()
    target = tmp_path / EXTENDED_A.name
    target.write_bytes(data[: len(data) * 2 // 3])
    _assert_rejected(ws, target, EXTENDED_A.name)


def test_empty_file_rejected(ws, tmp_path):
    target = tmp_path / "StreamingHistory_music_0.json"
    target.write_bytes(b"")
    message = _assert_rejected(ws, target, target.name)
    assert "empty" in message


def test_netflix_csv_rejected(ws):
    netflix = REAL / "netflix_viewing_activity" / "a" / "ViewingActivity.csv"
    _assert_rejected(ws, netflix, "ViewingActivity.csv")


def test_renamed_netflix_csv_rejected(ws, tmp_path):
    target = tmp_path / "StreamingHistory_music_0.json"
    shutil.copy(REAL / "netflix_viewing_activity" / "a" / "ViewingActivity.csv", target)
    _assert_rejected(ws, target, target.name)


def test_object_where_array_expected(ws, tmp_path):
    target = tmp_path / "StreamingHistory_music_0.json"
    shutil.copy(LIBRARY_A, target)
    message = _assert_rejected(ws, target, target.name)
    assert "JSON array" in message


def test_podcast_keys_under_music_name(ws, tmp_path):
    target = tmp_path / "StreamingHistory_music_0.json"
    shutil.copy(
        REAL / "spotify_account" / "a" / "StreamingHistory_podcast_0.json", target
    )
    message = _assert_rejected(ws, target, target.name)
    assert "record 1" in message


def test_extended_under_account_name(ws, tmp_path):
    target = tmp_path / "StreamingHistory_music_0.json"
    shutil.copy(EXTENDED_A, target)
    message = _assert_rejected(ws, target, target.name)
    assert "endTime" in message


def test_bad_boolean_names_record(ws, tmp_path):
    records = json.loads(EXTENDED_A.read_text())[:5]
    records[3]["skipped"] = "maybe"
    target = tmp_path / EXTENDED_A.name
    target.write_text(json.dumps(records))
    message = _assert_rejected(ws, target, target.name)
    assert "record 4" in message


def test_no_ip_address_stored(ws):
    ips = set()
    for path in (REAL / "spotify_extended").rglob("*.json"):
        for record in json.loads(path.read_text()):
            if record.get("ip_addr"):
                ips.add(record["ip_addr"])
    assert len(ips) > 1
    import_path(ws, "spotify", REAL / "spotify_extended", "P001")
    with ws.connect() as con:
        columns = con.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND data_type IN "
            "('VARCHAR', 'JSON')"
        ).fetchall()
        texts = []
        for table, column in columns:
            texts += [
                value
                for (value,) in con.execute(
                    f'SELECT DISTINCT CAST("{column}" AS VARCHAR) FROM "{table}" '
                    f'WHERE "{column}" IS NOT NULL'
                ).fetchall()
            ]
    joined = "\n".join(texts)
    assert "spotify:track:" in joined
    for ip in ips:
        assert ip not in joined
    assert not re.search(r"\b(192\.0\.2|198\.51\.100|203\.0\.113)\.\d+", joined)


def test_cli_json_and_exit_codes(ws, capsys):
    code = cli_main(
        [
            "import",
            "spotify",
            str(MUSIC_A),
            "--participant",
            "P001",
            "--workspace",
            str(ws.root),
            "--json",
        ]
    )
    output = json.loads(capsys.readouterr().out)
    assert code == 0
    assert output["kinds"]["music"] == {"added": 300, "skipped": 0}
    bad = REAL / "netflix_viewing_activity" / "a" / "ViewingActivity.csv"
    code = cli_main(
        [
            "import",
            "spotify",
            str(bad),
            "--participant",
            "P001",
            "--workspace",
            str(ws.root),
        ]
    )
    assert code == 1
    assert "ViewingActivity.csv" in capsys.readouterr().err
    code = cli_main(["import", "spotify", str(MUSIC_A), "--workspace", str(ws.root)])
    assert code == 2


def test_overlapping_files_in_one_import(ws, tmp_path):
    records = json.loads(EXTENDED_A.read_text())
    earlier, later = records[:200], records[120:]
    (tmp_path / "Streaming_History_Audio_2023_0.json").write_text(
        json.dumps(earlier, indent=2)
    )
    (tmp_path / "Streaming_History_Audio_2023_1.json").write_text(
        json.dumps(later, indent=2)
    )
    summary = import_path(ws, "spotify", tmp_path, "P001")
    expected_total = _multiset_union(earlier, later)
    assert _event_count(ws) == expected_total
    assert summary.added == expected_total
    assert summary.skipped == len(earlier) + len(later) - expected_total
    per_file = {f["file"]: f["kinds"] for f in summary.files}
    first = per_file["Streaming_History_Audio_2023_0.json"]
    assert sum(k["added"] for k in first.values()) == len(earlier)


def test_bad_record_in_second_file_named(ws, tmp_path):
    records = json.loads(EXTENDED_A.read_text())
    (tmp_path / "Streaming_History_Audio_2023_0.json").write_text(
        json.dumps(records[:100])
    )
    broken = records[100:200]
    broken[41]["ts"] = "yesterday"
    (tmp_path / "Streaming_History_Audio_2023_1.json").write_text(json.dumps(broken))
    message = _assert_rejected(ws, tmp_path, "Streaming_History_Audio_2023_1.json")
    assert "record 42" in message


def test_truncated_second_file_named(ws, tmp_path):
    records = json.loads(EXTENDED_A.read_text())
    (tmp_path / "Streaming_History_Audio_2023_0.json").write_text(
        json.dumps(records[:100])
    )
    text = json.dumps(records[100:200])
    (tmp_path / "Streaming_History_Audio_2023_1.json").write_text(text[:-300])
    _assert_rejected(ws, tmp_path, "Streaming_History_Audio_2023_1.json")


def _endsong_record(ts: str, track: str, skipped) -> dict:
    """A play in the pre-2023 endsong layout, with the keys that format had."""
    return {
        "ts": ts,
        "username": "31415926535",
        "platform": "Android OS 9 API 28 (samsung, SM-G960F)",
        "ms_played": 201000,
        "conn_country": "DE",
        "ip_addr_decrypted": "198.51.100.23",
        "user_agent_decrypted": "unknown",
        "master_metadata_track_name": track,
        "master_metadata_album_artist_name": "Cults",
        "master_metadata_album_album_name": "Cults",
        "spotify_track_uri": "spotify:track:1jDJFeK9x3OZboIAHsY9k2",
        "episode_name": None,
        "episode_show_name": None,
        "spotify_episode_uri": None,
        "reason_start": "trackdone",
        "reason_end": "trackdone",
        "shuffle": False,
        "skipped": skipped,
        "offline": False,
        "offline_timestamp": 1546300800000,
        "incognito_mode": False,
    }


def test_endsong_format(ws, tmp_path):
    records = [
        _endsong_record("2019-01-01T12:00:05Z", "Go Outside", None),
        _endsong_record("2019-01-01T12:03:30Z", "Abducted", True),
        _endsong_record("2019-01-01T12:07:00Z", "Walk at Night", None),
    ]
    target = tmp_path / "endsong_0.json"
    target.write_text(json.dumps(records, indent=2))
    summary = import_path(ws, "spotify", target, "P001")
    assert summary.kinds["music"].added == 3
    rows = query(
        ws,
        "SELECT ended_at, skipped FROM listening_events ORDER BY ended_at",
    )
    assert rows == [
        (datetime(2019, 1, 1, 12, 0, 5, tzinfo=UTC), None),
        (datetime(2019, 1, 1, 12, 3, 30, tzinfo=UTC), True),
        (datetime(2019, 1, 1, 12, 7, 0, tzinfo=UTC), None),
    ]
    with ws.connect() as con:
        dump = "\n".join(
            str(row) for row in con.execute("SELECT * FROM listening_events").fetchall()
        )
    assert "31415926535" not in dump
    assert "198.51.100.23" not in dump
    assert "samsung" not in dump


def test_old_account_file_name(ws, tmp_path):
    target = tmp_path / "StreamingHistory0.json"
    shutil.copy(MUSIC_A, target)
    summary = import_path(ws, "spotify", target, "P001")
    assert summary.kinds["music"].added == 300


def test_library_reimport_adds_nothing(ws):
    first = import_path(ws, "spotify", LIBRARY_A, "P001")
    second = import_path(ws, "spotify", LIBRARY_A, "P001")
    assert second.kinds["library"].added == 0
    assert second.kinds["library"].skipped == first.kinds["library"].added


def test_library_array_rejected(ws, tmp_path):
    target = tmp_path / "YourLibrary.json"
    shutil.copy(MUSIC_A, target)
    message = _assert_rejected(ws, target, target.name)
    assert "JSON object" in message
