"""Tests for the shared import framework: discovery, decoding, provenance."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile

import pytest
from conftest import REAL, query

from twinme_lab.errors import InputError, NotFoundError, UsageError
from twinme_lab.imports import ImportSummary, decode_text, discover, import_path

ACCOUNT_A = REAL / "spotify_account" / "a"
MUSIC_A = ACCOUNT_A / "StreamingHistory_music_0.json"


def test_decode_strips_utf8_bom():
    assert decode_text(b"\xef\xbb\xbf[1]", "f.json") == "[1]"


def test_decode_utf16_with_bom():
    data = '["\u00e9"]\r\n'.encode("utf-16")
    assert decode_text(data, "f.json") == '["\u00e9"]\n'


def test_decode_crlf_and_cr():
    assert decode_text(b"a\r\nb\rc\n", "f.csv") == "a\nb\nc\n"


def test_decode_invalid_utf8_names_file():
    with pytest.raises(InputError) as caught:
        decode_text(b"abc\xff", "StreamingHistory_music_0.json")
    assert "StreamingHistory_music_0.json" in str(caught.value)
    assert "offset 3" in str(caught.value)


def test_discover_folder_recursive_with_spaces(tmp_path):
    folder = tmp_path / "my data" / "Spotify Account Data"
    folder.mkdir(parents=True)
    (folder / "StreamingHistory_music_0.json").write_text("[]")
    (tmp_path / "my data" / ".DS_Store").write_text("x")
    found = discover(tmp_path / "my data")
    assert [f.label for f in found] == [
        "Spotify Account Data/StreamingHistory_music_0.json"
    ]
    assert found[0].name == "StreamingHistory_music_0.json"


def test_discover_zip_members(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("Spotify Account Data/StreamingHistory_music_0.json", "[]")
        out.writestr("__MACOSX/Spotify Account Data/._x.json", "junk")
    found = discover(archive)
    assert len(found) == 1
    assert found[0].in_archive
    assert found[0].read_bytes() == b"[]"


def test_discover_rejects_zip_slip(tmp_path):
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("../../evil/StreamingHistory_music_0.json", "[]")
    with pytest.raises(InputError) as caught:
        discover(archive)
    assert "../../evil" in str(caught.value)


def test_discover_missing_path(tmp_path):
    with pytest.raises(InputError):
        discover(tmp_path / "absent")


def test_summary_dict_and_lines():
    summary = ImportSummary("spotify", "P001")
    summary.count("podcast", 3, 1)
    summary.count("music", 10, 0)
    summary.count("music", 2, 5)
    data = summary.to_dict()
    assert data["kinds"] == {
        "music": {"added": 12, "skipped": 5},
        "podcast": {"added": 3, "skipped": 1},
    }
    assert data["added"] == 15
    assert data["skipped"] == 6
    assert summary.lines()[0].startswith("music: 12 added, 5 skipped")


def test_unknown_participant_is_rejected(workspace):
    with pytest.raises(NotFoundError) as caught:
        import_path(workspace, "spotify", MUSIC_A, "P404")
    assert "P404" in str(caught.value)


def test_unknown_platform_is_usage_error(ws):
    with pytest.raises(UsageError):
        import_path(ws, "myspace", MUSIC_A, "P001")


def test_imports_row_has_base_name_and_digest(ws, tmp_path):
    folder = tmp_path / "Jane Realname export"
    folder.mkdir()
    shutil.copy(MUSIC_A, folder / MUSIC_A.name)
    import_path(ws, "spotify", folder, "P001")
    with ws.connect() as con:
        rows = con.execute(
            "SELECT file_name, file_sha256, platform, counts FROM imports"
        ).fetchall()
        audit = con.execute(
            "SELECT counts FROM audit_log WHERE kind = 'import.spotify'"
        ).fetchall()

    digest = hashlib.sha256(MUSIC_A.read_bytes()).hexdigest()
    assert rows == [
        (
            "StreamingHistory_music_0.json",
            digest,
            "spotify",
            json.dumps({"music": {"added": 300, "skipped": 0}}),
        )
    ]
    assert len(audit) == 1
    counts = json.loads(audit[0][0])
    assert counts["kinds"] == {"music": {"added": 300, "skipped": 0}}
    assert "Realname" not in audit[0][0]


def test_bad_file_in_folder_adds_nothing(ws, tmp_path):
    shutil.copy(MUSIC_A, tmp_path / MUSIC_A.name)
    good = (ACCOUNT_A / "StreamingHistory_podcast_0.json").read_bytes()
    (tmp_path / "StreamingHistory_podcast_0.json").write_bytes(good[: len(good) // 2])
    with pytest.raises(InputError) as caught:
        import_path(ws, "spotify", tmp_path, "P001")
    assert "StreamingHistory_podcast_0.json" in str(caught.value)
    with ws.connect() as con:
        assert con.execute("SELECT count(*) FROM listening_events").fetchone()[0] == 0
        assert con.execute("SELECT count(*) FROM imports").fetchone()[0] == 0


def test_utf16_file_reads_like_utf8(ws, tmp_path):
    text = MUSIC_A.read_text(encoding="utf-8")
    target = tmp_path / MUSIC_A.name
    target.write_bytes(text.encode("utf-16"))
    summary = import_path(ws, "spotify", target, "P001")
    assert summary.kinds["music"].added == 300


def test_error_hides_folder_path(ws, tmp_path):
    folder = tmp_path / "Jane Realname"
    folder.mkdir()
    (folder / "StreamingHistory_music_0.json").write_text('[{"endTime" : "2023')
    with pytest.raises(InputError) as caught:
        import_path(ws, "spotify", folder, "P001")
    assert "StreamingHistory_music_0.json" in str(caught.value)
    assert "Realname" not in str(caught.value)


def test_damaged_zip_is_named(ws, tmp_path):
    from twinme_lab.errors import InputError
    from twinme_lab.imports import import_path

    fake = tmp_path / "my_spotify_data.zip"
    fake.write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(InputError, match="not a complete ZIP archive"):
        import_path(ws, "spotify", fake, "P001")
    assert query(ws, "SELECT count(*) FROM imports") == [(0,)]
