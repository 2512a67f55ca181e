"""The analyst export when its file cannot be written: one error line, no debris."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pandas as pd
import pytest

from twinme_lab.cli import common, main
from twinme_lab.errors import OutputError
from twinme_lab.traits import norms


@pytest.fixture(autouse=True)
def reset_cli_state():
    common.reset_state()
    yield
    common.reset_state()


def export_args(ws, out: Path, fmt: str = "json") -> list[str]:
    return [
        "export",
        "--format",
        fmt,
        "--out",
        str(out),
        "--workspace",
        str(ws.root),
        "--json",
    ]


def fail_after_partial_write(exc: BaseException):
    """Return a writer that leaves a partial file at its path, then raises."""

    def write(target, *args, **kwargs):
        Path(target).write_bytes(b'{"traits": [')
        raise exc

    return write


def patch_writer(monkeypatch, fmt: str, writer) -> None:
    if fmt == "json":
        monkeypatch.setattr(Path, "write_text", lambda self, *a, **k: writer(self))
    elif fmt == "csv":
        monkeypatch.setattr(
            pd.DataFrame, "to_csv", lambda self, path, **k: writer(path)
        )
    else:
        monkeypatch.setattr(
            pd.DataFrame, "to_parquet", lambda self, path, **k: writer(path)
        )


def test_parent_is_file_exits_1(ws, tmp_path, capsys):
    blocking = tmp_path / "notes.txt"
    blocking.write_text("a file, not a folder\n")
    out = blocking / "sub" / "traits.json"

    assert main(export_args(ws, out)) == 1

    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["exit_code"] == 1
    assert payload["kind"] == "OutputError"
    assert str(out) in payload["error"]
    assert f"{blocking} is a file" in payload["error"]
    assert "--out" in payload["error"]
    assert captured.err.count("\n") == 1
    assert "Traceback" not in captured.err
    assert blocking.read_text() == "a file, not a folder\n"


@pytest.mark.parametrize("fmt", ["json", "csv", "parquet"])
def test_disk_full_leaves_no_file(ws, tmp_path, capsys, monkeypatch, fmt):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / f"traits.{fmt}"
    patch_writer(
        monkeypatch,
        fmt,
        fail_after_partial_write(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))),
    )

    assert main(export_args(ws, out, fmt)) == 1

    captured = capsys.readouterr()
    payload = json.loads(captured.out)
    assert payload["kind"] == "OutputError"
    assert str(out) in payload["error"]
    assert "No space left on device" in payload["error"]
    assert "Free disk space" in payload["error"]
    assert "Traceback" not in captured.err
    assert list(folder.iterdir()) == []


def test_failed_write_keeps_earlier_export(ws, tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "traits.json"
    out.write_text('{"earlier": true}\n')
    failure = OSError(errno.EIO, os.strerror(errno.EIO))
    patch_writer(monkeypatch, "json", fail_after_partial_write(failure))

    with pytest.raises(OutputError, match="traits.json"):
        norms.write_export(ws, "json", out)

    assert out.read_text() == '{"earlier": true}\n'
    assert [p.name for p in folder.iterdir()] == ["traits.json"]


def test_interrupted_write_removes_temporary(ws, tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "traits.csv"
    patch_writer(monkeypatch, "csv", fail_after_partial_write(KeyboardInterrupt()))

    with pytest.raises(KeyboardInterrupt):
        norms.write_export(ws, "csv", out, interests=True)

    assert list(folder.iterdir()) == []


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="root can write into a read-only folder",
)
def test_read_only_folder_exits_1(ws, tmp_path, capsys):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o500)
    out = folder / "traits.json"
    try:
        assert main(export_args(ws, out)) == 1
    finally:
        folder.chmod(0o700)

    payload = json.loads(capsys.readouterr().out)
    assert payload["kind"] == "OutputError"
    assert str(out) in payload["error"]
    assert "Permission denied" in payload["error"]
    assert list(folder.iterdir()) == []


def test_export_writes_complete_file(ws, tmp_path, capsys):
    out = tmp_path / "new" / "traits.json"

    assert main(export_args(ws, out)) == 0

    assert json.loads(capsys.readouterr().out)["traits"] == str(out)
    assert json.loads(out.read_text()) == {"traits": []}
    assert [p.name for p in out.parent.iterdir()] == ["traits.json"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_dev_full_written_in_place(ws, capsys):
    device = Path("/dev/full")

    assert main(export_args(ws, device)) == 1

    payload = json.loads(capsys.readouterr().out)
    assert payload["kind"] == "OutputError"
    assert "/dev/full" in payload["error"]
    assert "No space left on device" in payload["error"]
    # A rename would have replaced the device node with a regular file.
    assert device.is_char_device()
    assert not any(p.name.startswith(".full.") for p in Path("/dev").iterdir())
