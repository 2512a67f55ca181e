"""Wording, exit codes and output details of the command line."""

from __future__ import annotations

import codecs
import fnmatch
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tomllib
import warnings
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import requests
from conftest import REAL, query

from twinme_lab import oauth, participants, sandbox
from twinme_lab.cli import cli, common, main
from twinme_lab.errors import EXIT_REFUSED, InputError
from twinme_lab.imports.common import SourceFile


@pytest.fixture(autouse=True)
def reset_cli_state():
    common.reset_state()
    yield
    common.reset_state()


def run(capsys, *args: str) -> tuple[int, str, str]:
    """Run the CLI and return its exit code, stdout and stderr."""
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def ipip50_csv(path, rows: dict[str, dict[int, int | None]]):
    """Write an IPIP-50 answer file. Items not given get the answer 3."""
    lines = ["participant," + ",".join(str(i) for i in range(1, 51))]
    for participant_id, answers in rows.items():
        cells = []
        for item in range(1, 51):
            value = answers.get(item, 3)
            cells.append("" if value is None else str(value))
        lines.append(participant_id + "," + ",".join(cells))
    path.write_text("\n".join(lines) + "\n")
    return path


# Questionnaire import summary ---------------------------------------------------


def test_missing_note_only_on_null_scales(workspace, tmp_path, capsys):
    participants.add(workspace, "P01")
    participants.add(workspace, "P02")
    # Extraversion is items 1, 6, 11, ..., 46. Three of its ten items missing is
    # more than the 20% IPIP-50 allows, so P02 gets no extraversion score.
    answers = ipip50_csv(
        tmp_path / "answers.csv", {"P01": {}, "P02": {1: None, 6: None, 11: None}}
    )
    code, out, _ = run(
        capsys,
        "questionnaire",
        "import",
        str(answers),
        "--instrument",
        "ipip50",
        "--workspace",
        str(workspace.root),
    )
    assert code == 0
    lines = {line.split(":")[0].strip(): line for line in out.splitlines()[1:]}
    assert lines["extraversion"] == (
        "  extraversion: 1 scored, 1 without a score (too many items missing)"
    )
    assert lines["agreeableness"] == "  agreeableness: 2 scored, 0 without a score"
    assert sum("too many items missing" in line for line in lines.values()) == 1


# Singular and plural nouns ------------------------------------------------------


def test_plural_helper_forms():
    assert common.plural(1, "participant") == "1 participant"
    assert common.plural(0, "participant") == "0 participants"
    assert common.plural(2, "participant") == "2 participants"
    assert common.plural(1, "entry", "entries") == "1 entry"
    assert common.plural(3, "entry", "entries") == "3 entries"


def test_one_participant_is_singular(workspace, tmp_path, capsys):
    participants.add(workspace, "P01")
    answers = ipip50_csv(tmp_path / "answers.csv", {"P01": {}})
    root = str(workspace.root)

    code, out, _ = run(
        capsys,
        "questionnaire",
        "import",
        str(answers),
        "--instrument",
        "ipip50",
        "--workspace",
        root,
    )
    assert code == 0
    assert out.splitlines()[0] == (
        "Imported ipip50 answers for 1 participant from answers.csv "
        "(50 answers, 0 missing)."
    )

    code, out, _ = run(capsys, "features", "--workspace", root)
    assert code == 0
    assert out.splitlines()[0] == "Computed features for 1 participant."

    code, out, _ = run(capsys, "score", "--workspace", root)
    assert code == 0
    assert out.splitlines()[0].startswith("Scored 1 participant with mapping ")


def test_one_ignored_file_is_singular(workspace, tmp_path, capsys):
    participants.add(workspace, "P01")
    folder = tmp_path / "export"
    folder.mkdir()
    music = REAL / "spotify_account" / "a" / "StreamingHistory_music_0.json"
    shutil.copy(music, folder / music.name)
    (folder / "Read Me First.pdf").write_bytes(b"%PDF-1.4\n")

    code, out, _ = run(
        capsys,
        "import",
        "spotify",
        str(folder),
        "--participant",
        "P01",
        "--workspace",
        str(workspace.root),
    )
    assert code == 0
    assert out.splitlines()[-1] == (
        "1 other file was not a spotify history file and was ignored."
    )


# Platforms without an OAuth connection ------------------------------------------


@pytest.mark.parametrize("command", ["connect", "disconnect"])
def test_platform_choices_only_oauth(command, capsys):
    argument = next(p for p in cli.commands[command].params if p.name == "platform")
    assert list(argument.type.choices) == [
        "spotify",
        "github",
        "discord",
        "linkedin",
        "youtube",
        "reddit",
        "twitch",
    ]
    code, out, _ = run(capsys, command, "-h")
    assert code == 0
    assert "netflix" not in out.lower()


@pytest.mark.parametrize("command", ["connect", "disconnect"])
@pytest.mark.parametrize("name", ["netflix", "Netflix"])
def test_netflix_points_to_import(command, name, workspace, capsys):
    code, _, err = run(
        capsys,
        command,
        name,
        "--participant",
        "P01",
        "--workspace",
        str(workspace.root),
    )
    assert code == 2
    assert "Netflix has no API" in err
    assert "twinme-lab import netflix" in err
    assert "is not one of" not in err


# Extraction of endpoints that are not due ---------------------------------------


@pytest.fixture
def discord_connected(workspace, monkeypatch):
    """Connect P01's Discord account to a sandbox on 127.0.0.1 through OAuth."""
    with sandbox.serve(auto_consent=True, seed=0, rate_limits=False) as handle:
        for key, value in handle.env().items():
            monkeypatch.setenv(key, value)
        participants.add(workspace, "P01")
        pending = oauth.begin(workspace, "discord", "P01")
        response = requests.get(
            pending.url + "&sandbox_user=1",
            verify=handle.ca_path,
            allow_redirects=False,
            timeout=10,
        )
        oauth.complete(workspace, pending, response.headers["Location"])
        yield workspace


def test_extract_shows_not_due_as_skipped(discord_connected, capsys):
    # Discord sends no ETag or Last-Modified for the user and the guild list, so
    # a second run within 6 hours requests neither.
    root = str(discord_connected.root)
    code, out, _ = run(capsys, "extract", "--workspace", root, "--json")
    assert code == 0
    first = {row["endpoint"]: row for row in json.loads(out)["endpoints"]}
    assert sorted(first) == ["guilds", "user"]
    for row in first.values():
        assert row["skipped"] is False
        assert row["not_due_until"] is None
        assert row["requests"] > 0
    finished = query(
        discord_connected,
        "SELECT endpoint, finished_at FROM extract_run_log WHERE run_id = 1",
    )

    code, out, _ = run(capsys, "extract", "--workspace", root, "--json")
    assert code == 0
    second = {row["endpoint"]: row for row in json.loads(out)["endpoints"]}
    for endpoint, finished_at in finished:
        row = second[endpoint]
        assert row["skipped"] is True
        assert row["status"] == "ok"
        assert row["requests"] == 0
        due = datetime.fromisoformat(row["not_due_until"])
        expected = finished_at.astimezone(UTC) + timedelta(hours=6)
        assert abs((due - expected).total_seconds()) < 1

    code, out, _ = run(capsys, "extract", "--workspace", root)
    assert code == 0
    for endpoint, finished_at in finished:
        line = next(line for line in out.splitlines() if f" {endpoint} " in line)
        due = finished_at.astimezone(UTC) + timedelta(hours=6)
        # The text shows the due time to the minute.
        shown = line.split("not due until ", 1)[1][:16]
        assert line.split()[3] == "skipped"
        assert abs(datetime.fromisoformat(shown).replace(tzinfo=UTC) - due) < (
            timedelta(minutes=1)
        )
    assert "Skipped 2 endpoints not due yet" in out


# Report batch on a scheduler that is not running --------------------------------


def unused_loopback_port() -> int:
    """Return a 127.0.0.1 port that was free a moment ago and has no listener."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("as_json", [False, True])
def test_unreachable_scheduler_exits_1(workspace, monkeypatch, capsys, as_json):
    pytest.importorskip("distributed")
    from twinme_lab.reports import cluster

    # A refused connection is retried until this timeout (30 s by default).
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", 2)
    participants.add(workspace, "P01")
    address = f"tcp://127.0.0.1:{unused_loopback_port()}"
    args = ["report", "--all", "--scheduler", address]
    args += ["--workspace", str(workspace.root)]
    if as_json:
        args.append("--json")

    code, out, err = run(capsys, *args)
    assert code == EXIT_REFUSED
    assert f"Could not connect to the Dask scheduler at {address}" in err
    assert "leave out --scheduler" in err
    assert not (workspace.reports_dir / "P01").exists()
    if as_json:
        error = json.loads(out)
        assert error["exit_code"] == EXIT_REFUSED
        assert address in error["error"]


# Export files that are cut off --------------------------------------------------

MUSIC = REAL / "spotify_account" / "a" / "StreamingHistory_music_0.json"
WATCH = REAL / "youtube_takeout" / "b" / "watch-history.json"
# The music sample has 300 plays (tests/data/real/expected.json).
MUSIC_PLAYS = 300


def cut_after_record(text: str, records: int) -> str:
    """Return a JSON array's text cut after the comma that follows a record."""
    position = 0
    for _ in range(records):
        position = text.index("\n  },", position) + len("\n  },")
    return text[:position] + "\n"


def import_spotify(capsys, workspace, path) -> tuple[int, str]:
    code, _, err = run(
        capsys,
        "import",
        "spotify",
        str(path),
        "--participant",
        "P01",
        "--workspace",
        str(workspace.root),
    )
    return code, err


def stored(workspace, table: str) -> int:
    return query(workspace, f"SELECT count(*) FROM {table}")[0][0]


def test_cut_between_records_rejected(workspace, tmp_path, capsys):
    participants.add(workspace, "P01")
    target = tmp_path / MUSIC.name
    # DuckDB alone imports the ten records before such a cut without an error.
    target.write_text(cut_after_record(MUSIC.read_text(), 10))

    code, err = import_spotify(capsys, workspace, target)
    assert code == EXIT_REFUSED
    assert f"{MUSIC.name}: the file is not valid JSON and appears to be cut off" in err
    assert "ends with ','" in err
    assert "download the export again, or extract it again" in err
    assert stored(workspace, "listening_events") == 0
    assert stored(workspace, "imports") == 0


def test_cut_zip_member_named(workspace, tmp_path, capsys):
    participants.add(workspace, "P01")
    archive = tmp_path / "my_spotify_data.zip"
    member = f"Spotify Account Data/{MUSIC.name}"
    # Larger than one 1 MiB read block, so the tail spans two blocks.
    records = json.loads(MUSIC.read_text()) * 40
    text = json.dumps(records, indent=2)
    assert len(text) > 1 << 20
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr(member, text[: len(text) // 2])

    code, err = import_spotify(capsys, workspace, archive)
    assert code == EXIT_REFUSED
    assert f"my_spotify_data.zip:{member}: the file is not valid JSON" in err
    assert "appears to be cut off" in err
    assert stored(workspace, "listening_events") == 0


def test_complete_zip_member_imported(workspace, tmp_path, capsys):
    participants.add(workspace, "P01")
    archive = tmp_path / "my_spotify_data.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr(f"Spotify Account Data/{MUSIC.name}", MUSIC.read_bytes())

    code, err = import_spotify(capsys, workspace, archive)
    assert code == 0, err
    assert stored(workspace, "listening_events") == MUSIC_PLAYS


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_file_end_checked(workspace, tmp_path, capsys, encoding):
    participants.add(workspace, "P01")
    bom = codecs.BOM_UTF16_LE if encoding == "utf-16-le" else codecs.BOM_UTF16_BE
    whole = tmp_path / "whole" / MUSIC.name
    cut = tmp_path / "cut" / MUSIC.name
    whole.parent.mkdir()
    cut.parent.mkdir()
    encoded = bom + MUSIC.read_text().encode(encoding)
    whole.write_bytes(encoded)
    cut.write_bytes(bom + cut_after_record(MUSIC.read_text(), 40).encode(encoding))

    code, err = import_spotify(capsys, workspace, cut)
    assert code == EXIT_REFUSED
    assert "appears to be cut off" in err
    assert "ends with ','" in err

    # A download cut at an odd byte ends in half a UTF-16 code unit.
    cut.write_bytes(encoded[:-3])
    code, err = import_spotify(capsys, workspace, cut)
    assert code == EXIT_REFUSED
    assert "appears to be cut off" in err
    assert "ends with '}'" in err

    code, err = import_spotify(capsys, workspace, whole)
    assert code == 0, err
    assert stored(workspace, "listening_events") == MUSIC_PLAYS


def test_trailing_whitespace_beyond_tail(workspace, tmp_path, capsys):
    participants.add(workspace, "P01")
    target = tmp_path / MUSIC.name
    target.write_text(cut_after_record(MUSIC.read_text(), 10) + " \n" * 5000)

    code, err = import_spotify(capsys, workspace, target)
    assert code == EXIT_REFUSED
    assert "ends with ','" in err

    target.write_text(MUSIC.read_text() + "\r\n" * 5000)
    code, err = import_spotify(capsys, workspace, target)
    assert code == 0, err
    assert stored(workspace, "listening_events") == MUSIC_PLAYS


def test_cut_inside_record_names_file(workspace, tmp_path, capsys):
    participants.add(workspace, "P01")
    text = WATCH.read_text()
    # Cut right after the "]" that closes the first entry's subtitles, so the
    # file ends with a bracket and DuckDB's parser finds the cut.
    end = text.index("]", text.index('"subtitles"')) + 1
    target = tmp_path / WATCH.name
    target.write_text(text[:end])

    code, _, err = run(
        capsys,
        "import",
        "youtube",
        str(target),
        "--participant",
        "P01",
        "--workspace",
        str(workspace.root),
    )
    assert code == EXIT_REFUSED
    assert f"{WATCH.name} is not valid JSON and appears to be cut off" in err
    assert "(DuckDB: unexpected end of data at byte " in err
    assert "download the export again" in err
    assert stored(workspace, "youtube_events") == 0


def test_youtube_cut_between_entries(workspace, tmp_path, capsys):
    participants.add(workspace, "P01")
    text = WATCH.read_text()
    end = text.index("\n},{") + len("\n},")
    target = tmp_path / WATCH.name
    target.write_text(text[:end])

    code, _, err = run(
        capsys,
        "import",
        "youtube",
        str(target),
        "--participant",
        "P01",
        "--workspace",
        str(workspace.root),
    )
    assert code == EXIT_REFUSED
    assert "appears to be cut off" in err
    assert stored(workspace, "youtube_events") == 0


def test_parsed_json_cut_off(tmp_path):
    target = tmp_path / "messages.json"
    target.write_text('[{"ID": 1, "Timestamp": "2024-01-01 00:00:00"},\n')
    source = SourceFile(name=target.name, label="c42/messages.json", path=target)
    with pytest.raises(InputError) as caught:
        source.read_json()
    message = str(caught.value)
    assert message.startswith("c42/messages.json is not valid JSON and appears")
    assert "cut off" in message
    assert "download the export again" in message


def test_parsed_json_invalid_inside(tmp_path):
    target = tmp_path / "messages.json"
    target.write_text('[{"ID": 1, "Timestamp": x}]\n')
    source = SourceFile(name=target.name, label="c42/messages.json", path=target)
    with pytest.raises(InputError) as caught:
        source.read_json()
    message = str(caught.value)
    assert "c42/messages.json is not valid JSON (line 1, column 25:" in message
    assert "cut off" not in message


# Warnings from DuckDB's pandas conversion ---------------------------------------


def test_duckdb_inplace_warning_filtered():
    sql = "SELECT TIMESTAMPTZ '2024-01-01 00:00:00+00' AS t"
    with warnings.catch_warnings(record=True) as unfiltered:
        warnings.simplefilter("always")
        duckdb.connect().execute(sql).df()
    if not any("inplace" in str(w.message) for w in unfiltered):
        pytest.skip("this DuckDB and pandas pair emits no inplace warning")

    # Without simplefilter the filters in effect are pytest's, which include
    # the filterwarnings entries of pyproject.toml.
    with warnings.catch_warnings(record=True) as caught:
        duckdb.connect().execute(sql).df()
    assert [str(w.message) for w in caught] == []


# Sandbox temporary folders ------------------------------------------------------

PYTHON_CLI = [
    sys.executable,
    "-c",
    "import sys; from twinme_lab.cli import main; sys.exit(main(sys.argv[1:]))",
]


def sandbox_folders(folder) -> list[str]:
    return sorted(path.name for path in folder.glob("twinme-sandbox-*"))


def test_unstopped_sandbox_folder_removed(tmp_path):
    script = (
        "from pathlib import Path\n"
        "from twinme_lab import sandbox\n"
        "handle = sandbox.serve()\n"
        "print(Path(handle.ca_path).parent.name)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().startswith("twinme-sandbox-")
    assert sandbox_folders(tmp_path) == []


@pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="needs POSIX signals")
@pytest.mark.parametrize("name", ["SIGHUP", "SIGTERM", "SIGINT"])
def test_cli_sandbox_removes_folder(tmp_path, name):
    process = subprocess.Popen(
        [*PYTHON_CLI, "sandbox", "--port", "0"],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = ""
        while not line.startswith("Press Ctrl-C"):
            line = process.stdout.readline()
            assert line, process.stderr.read()
        assert len(sandbox_folders(tmp_path)) == 1
    finally:
        process.send_signal(getattr(signal, name))
        code = process.wait(timeout=30)
    assert code == 0
    assert "Sandbox stopped." in process.stderr.read()
    assert sandbox_folders(tmp_path) == []


def test_cli_sandbox_stops_when_sigint_inherited_ignored(tmp_path):
    # A shell script's background job starts with SIGINT ignored, and without
    # a handler of its own the sandbox would then not stop on SIGINT.
    process = subprocess.Popen(
        [*PYTHON_CLI, "sandbox", "--port", "0"],
        env={**os.environ, "TMPDIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        line = ""
        while not line.startswith("Press Ctrl-C"):
            line = process.stdout.readline()
            assert line, process.stderr.read()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            code = None
    assert code == 0
    assert sandbox_folders(tmp_path) == []


# Files a wheel installs ---------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_lists_every_package_and_file():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
        "setuptools"
    ]
    package_dirs = {"twinme_lab": ROOT / "twinme_lab"}
    for folder in sorted((ROOT / "twinme_lab").rglob("*")):
        if folder.is_dir() and "__pycache__" not in folder.parts:
            package_dirs[".".join(folder.relative_to(ROOT).parts)] = folder
    for package, folder in setuptools.get("package-dir", {}).items():
        package_dirs[package] = ROOT / folder
    assert sorted(setuptools["packages"]) == sorted(package_dirs)

    # Every file a package folder has besides its modules is package data, and
    # the notebooks folder ships as twinme_lab.notebooks.
    assert package_dirs["twinme_lab.notebooks"] == ROOT / "notebooks"
    patterns = setuptools["package-data"]
    for package, folder in package_dirs.items():
        for path in sorted(folder.iterdir()):
            if path.is_dir() or path.suffix in {".py", ".pyc"}:
                continue
            assert any(
                fnmatch.fnmatch(path.name, pattern)
                for pattern in patterns.get(package, [])
            ), f"{path.relative_to(ROOT)} is missing from the package data"
