"""Netflix importer on the real samples, profiles, date orders and bad files."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections import Counter
from datetime import UTC, date, datetime

import pytest
from conftest import REAL, query

from twinme_lab.cli import main as cli_main
from twinme_lab.errors import InputError, UsageError
from twinme_lab.imports import import_path

ACTIVITY_FILES = [
    "netflix_viewing_activity/a/ViewingActivity.csv",
    "netflix_viewing_activity/b/ViewingActivity.csv",
]
HISTORY_FILES = [
    "netflix_viewing_history/a/NetflixViewingHistory.csv",
    "netflix_viewing_history/b/NetflixViewingHistory.csv",
]
ACTIVITY_A = REAL / ACTIVITY_FILES[0]
HISTORY_A = REAL / HISTORY_FILES[0]


def _event_count(ws) -> int:
    return query(ws, "SELECT count(*) FROM viewing_events")[0][0]


def _read_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


def _write_rows(path, header, rows) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


@pytest.mark.parametrize("relative", ACTIVITY_FILES)
def test_activity_counts_match_expected(ws, expected_counts, relative):
    expected = expected_counts[relative]
    summary = import_path(ws, "netflix", REAL / relative, "P001")
    supplemental = expected["supplemental_rows"]
    assert summary.kinds["supplemental"].added == supplemental
    assert summary.kinds["viewing"].added == expected["records"] - supplemental
    stored = query(
        ws,
        "SELECT count(*), count(*) FILTER (WHERE is_supplemental) FROM viewing_events",
    )[0]
    assert stored == (expected["records"], supplemental)


@pytest.mark.parametrize("relative", HISTORY_FILES)
def test_history_counts_match_expected(ws, expected_counts, relative):
    expected = expected_counts[relative]
    summary = import_path(ws, "netflix", REAL / relative, "P001")
    assert summary.kinds["viewing"].added == expected["records"]
    assert _event_count(ws) == expected["records"]
    nulls = query(
        ws,
        "SELECT count(*) FROM viewing_events WHERE started_at IS NOT NULL "
        "OR duration_s IS NOT NULL OR time_precision <> 'day'",
    )
    assert nulls[0][0] == 0


def test_supplemental_types_of_sample_b(ws):
    import_path(ws, "netflix", REAL / ACTIVITY_FILES[1], "P001")
    types = dict(
        query(
            ws,
            "SELECT supplemental_type, count(*) FROM viewing_events "
            "WHERE is_supplemental GROUP BY 1",
        )
    )
    assert types == {"TRAILER": 74, "HOOK": 57, "TEASER_TRAILER": 10, "RECAP": 1}
    episodes = query(
        ws, "SELECT count(*) FROM viewing_events WHERE is_supplemental AND is_episode"
    )
    assert episodes[0][0] == 0


def test_activity_row_fields(ws):
    import_path(ws, "netflix", ACTIVITY_A, "P001")
    row = query(
        ws,
        "SELECT started_at, watched_on, duration_s, series_title, season, "
        "episode_title, is_episode FROM viewing_events WHERE title = ?",
        ["Smiley: Season 1: When Alex Met Bruno (Episode 1)"],
    )
    assert row == [
        (
            datetime(2023, 1, 20, 5, 27, 25, tzinfo=UTC),
            date(2023, 1, 20),
            6 * 60 + 58,
            "Smiley",
            "Season 1",
            "When Alex Met Bruno (Episode 1)",
            True,
        )
    ]


def test_reimport_adds_nothing(ws):
    first = import_path(ws, "netflix", REAL / "netflix_viewing_activity", "P001")
    second = import_path(ws, "netflix", REAL / "netflix_viewing_activity", "P001")
    assert first.added == 600
    assert second.added == 0
    assert second.skipped == 600


def test_overlapping_history_adds_new_only(ws, tmp_path):
    rows = _read_rows(HISTORY_A)
    earlier, later = rows[150:], rows[:200]
    old = tmp_path / "old" / "NetflixViewingHistory.csv"
    new = tmp_path / "new" / "NetflixViewingHistory.csv"
    old.parent.mkdir()
    new.parent.mkdir()
    _write_rows(old, ["Title", "Date"], earlier)
    _write_rows(new, ["Title", "Date"], later)
    import_path(ws, "netflix", old, "P001")
    summary = import_path(ws, "netflix", new, "P001")
    union: Counter = Counter()
    for export in (earlier, later):
        union |= Counter((r["Title"], r["Date"]) for r in export)
    assert _event_count(ws) == sum(union.values())
    assert summary.added == sum(union.values()) - len(earlier)


def _with_profiles(tmp_path) -> tuple:
    rows = _read_rows(ACTIVITY_A)
    for index, row in enumerate(rows):
        if index % 3 == 1:
            row["Profile Name"] = "Kid"
        elif index % 3 == 2:
            row["Profile Name"] = "."
    target = tmp_path / "ViewingActivity.csv"
    _write_rows(target, list(rows[0].keys()), rows)
    return target, Counter(r["Profile Name"] for r in rows), rows


def test_several_profiles_need_choice(ws, tmp_path):
    target, counts, _ = _with_profiles(tmp_path)
    with pytest.raises(InputError) as caught:
        import_path(ws, "netflix", target, "P001")
    message = str(caught.value)
    for name, rows in counts.items():
        assert f"{name!r} ({rows} rows)" in message
    assert _event_count(ws) == 0


def test_chosen_profile_rows_only(ws, tmp_path):
    target, counts, rows = _with_profiles(tmp_path)
    summary = import_path(ws, "netflix", target, "P001", profile="Kid")
    assert summary.added == counts["Kid"]
    kid_titles = Counter(r["Title"] for r in rows if r["Profile Name"] == "Kid")
    stored = Counter(t for (t,) in query(ws, "SELECT title FROM viewing_events"))
    assert stored == kid_titles


def test_dot_profile_is_a_profile(ws, tmp_path):
    target, counts, _ = _with_profiles(tmp_path)
    summary = import_path(ws, "netflix", target, "P001", profile=".")
    assert summary.added == counts["."]


def test_unknown_profile_is_usage_error(ws, tmp_path):
    target, _, _ = _with_profiles(tmp_path)
    with pytest.raises(UsageError) as caught:
        import_path(ws, "netflix", target, "P001", profile="Nobody")
    assert "'Kid'" in str(caught.value)


def test_no_profile_name_or_device_stored(ws, tmp_path):
    target, _, _ = _with_profiles(tmp_path)
    import_path(ws, "netflix", target, "P001", profile="Kid")
    with ws.connect() as con:
        columns = con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_catalog = current_database() AND table_name = "
            "'viewing_events' AND data_type = 'VARCHAR'"
        ).fetchall()
        values = []
        for (column,) in columns:
            values += con.execute(
                f'SELECT DISTINCT "{column}" FROM viewing_events'
            ).fetchall()
    flat = {v for (v,) in values}
    assert "Kid" not in flat
    assert "Chrome PC (Cadmium)" not in flat
    assert "US (United States)" not in flat


def _history(tmp_path, dates: list[str]):
    target = tmp_path / "NetflixViewingHistory.csv"
    rows = [
        {"Title": f"Show {i}: Season 1: Part {i}", "Date": d}
        for i, d in enumerate(dates)
    ]
    _write_rows(target, ["Title", "Date"], rows)
    return target


def test_sample_dates_are_month_first(ws):
    import_path(ws, "netflix", HISTORY_A, "P001")
    row = query(
        ws,
        "SELECT watched_on FROM viewing_events WHERE title = ?",
        ["Gilmore Girls: Season 1: Pilot"],
    )
    assert row == [(date(2019, 2, 5),)]


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        (["2/5/19", "12/31/19"], [date(2019, 2, 5), date(2019, 12, 31)]),
        (["05.02.2019", "31.12.2019"], [date(2019, 2, 5), date(2019, 12, 31)]),
        (["2019-02-05", "2019-12-31"], [date(2019, 2, 5), date(2019, 12, 31)]),
        (["05/02/2019", "13/01/2020"], [date(2019, 2, 5), date(2020, 1, 13)]),
    ],
)
def test_date_order_detected(ws, tmp_path, dates, expected):
    import_path(ws, "netflix", _history(tmp_path, dates), "P001")
    stored = [
        d for (d,) in query(ws, "SELECT watched_on FROM viewing_events ORDER BY title")
    ]
    assert stored == expected


def test_ambiguous_dates_rejected(ws, tmp_path):
    target = _history(tmp_path, ["2/5/19", "3/4/19", "11/12/19"])
    with pytest.raises(InputError) as caught:
        import_path(ws, "netflix", target, "P001")
    assert "--date-order" in str(caught.value)
    assert "ambiguous" in str(caught.value)
    assert _event_count(ws) == 0


@pytest.mark.parametrize(
    ("order", "expected"),
    [("mdy", date(2019, 2, 5)), ("dmy", date(2019, 5, 2))],
)
def test_date_order_option(ws, tmp_path, order, expected):
    target = _history(tmp_path, ["2/5/19", "3/4/19"])
    import_path(ws, "netflix", target, "P001", date_order=order)
    stored = query(ws, "SELECT watched_on FROM viewing_events ORDER BY title")
    assert stored[0] == (expected,)


def test_date_order_option_names_bad_row(ws, tmp_path):
    target = _history(tmp_path, ["2/5/19", "2/30/19", "13/1/19"])
    with pytest.raises(InputError) as caught:
        import_path(ws, "netflix", target, "P001", date_order="mdy")
    assert "record 2" in str(caught.value)


def test_unreadable_dates_rejected(ws, tmp_path):
    target = _history(tmp_path, ["13/13/19", "2/5/19"])
    with pytest.raises(InputError) as caught:
        import_path(ws, "netflix", target, "P001")
    assert "NetflixViewingHistory.csv" in str(caught.value)


def test_bom_and_crlf_activity(ws, tmp_path):
    target = tmp_path / "ViewingActivity.csv"
    data = ACTIVITY_A.read_bytes().replace(b"\n", b"\r\n")
    target.write_bytes(b"\xef\xbb\xbf" + data)
    assert import_path(ws, "netflix", target, "P001").added == 300


def _assert_rejected(ws, path, name) -> str:
    with pytest.raises(InputError) as caught:
        import_path(ws, "netflix", path, "P001")
    assert name in str(caught.value)
    assert _event_count(ws) == 0
    return str(caught.value)


def test_wrong_header_rejected(ws, tmp_path):
    target = tmp_path / "ViewingActivity.csv"
    lines = ACTIVITY_A.read_text().splitlines()
    lines[0] = lines[0].replace(",Country", "")
    target.write_text("\n".join(lines) + "\n")
    message = _assert_rejected(ws, target, target.name)
    assert "header" in message


def test_spotify_json_rejected(ws, tmp_path):
    target = tmp_path / "ViewingActivity.csv"
    target.write_bytes(
        (REAL / "spotify_account" / "a" / "StreamingHistory_music_0.json").read_bytes()
    )
    _assert_rejected(ws, target, target.name)


def test_empty_file_rejected(ws, tmp_path):
    target = tmp_path / "NetflixViewingHistory.csv"
    target.write_bytes(b"")
    message = _assert_rejected(ws, target, target.name)
    assert "empty" in message


def test_short_row_rejected(ws, tmp_path):
    target = tmp_path / "ViewingActivity.csv"
    lines = ACTIVITY_A.read_text().splitlines()
    lines[5] = "Profile A,2023-01-01 10:00:00,00:01:00"
    target.write_text("\n".join(lines) + "\n")
    _assert_rejected(ws, target, target.name)


def test_bad_duration_names_record(ws, tmp_path):
    rows = _read_rows(ACTIVITY_A)
    rows[6]["Duration"] = "12 minutes"
    target = tmp_path / "ViewingActivity.csv"
    _write_rows(target, list(rows[0].keys()), rows)
    message = _assert_rejected(ws, target, target.name)
    assert "record 7" in message
    assert "Duration" in message


def test_cli_profiles_and_date_order(ws, tmp_path, capsys):
    target, _, _ = _with_profiles(tmp_path)
    base = ["--participant", "P001", "--workspace", str(ws.root)]
    assert cli_main(["import", "netflix", str(target), *base]) == 1
    assert "--profile" in capsys.readouterr().err
    code = cli_main(
        ["import", "netflix", str(target), *base, "--profile", "Kid", "--json"]
    )
    output = json.loads(capsys.readouterr().out)
    assert code == 0
    assert output["kinds"]["viewing"]["added"] > 0
    code = cli_main(["import", "netflix", str(HISTORY_A), *base, "--date-order", "md"])
    assert code == 2


def test_utf16_history_imports(ws, tmp_path):
    target = tmp_path / "NetflixViewingHistory.csv"
    target.write_bytes(HISTORY_A.read_text(encoding="utf-8").encode("utf-16"))
    assert import_path(ws, "netflix", target, "P001").added == 300


def test_zip_with_both_files(ws, tmp_path):
    archive = tmp_path / "netflix-report.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        out.write(ACTIVITY_A, "CONTENT_INTERACTION/ViewingActivity.csv")
        out.write(HISTORY_A, "NetflixViewingHistory.csv")
    summary = import_path(ws, "netflix", archive, "P001")
    assert summary.kinds["viewing"].added == 299 + 300
    assert summary.kinds["supplemental"].added == 1
    names = query(ws, "SELECT file_name FROM imports ORDER BY 1")
    assert names == [("NetflixViewingHistory.csv",), ("ViewingActivity.csv",)]
