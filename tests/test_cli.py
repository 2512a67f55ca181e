"""The command line: help text, --json output, exit codes, and no secrets printed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import click
import pytest

from twinme_lab import keys
from twinme_lab.cli import cli, common, main


@pytest.fixture(autouse=True)
def reset_cli_state():
    common._state.update({"json": False, "exit_code": 0})
    yield
    common._state.update({"json": False, "exit_code": 0})


def _walk(group: click.Group, prefix=()):
    for name, command in sorted(group.commands.items()):
        yield prefix + (name,), command
        if isinstance(command, click.Group):
            yield from _walk(command, prefix + (name,))


def test_every_command_has_help_text():
    missing = [" ".join(path) for path, command in _walk(cli) if not command.help]
    assert missing == []


def test_every_command_accepts_help_flag(capsys):
    for path, _ in _walk(cli):
        assert main([*path, "-h"]) == 0, path
        assert "Usage:" in capsys.readouterr().out


def test_init_and_participants_json(tmp_path, capsys):
    root = tmp_path / "ws"
    assert main(["init", "--workspace", str(root), "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["database"] == str(root / "twinme.duckdb")

    assert (
        main(
            [
                "participants",
                "add",
                "P01",
                "--timezone",
                "Asia/Tokyo",
                "--workspace",
                str(root),
                "--json",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["participants", "list", "--workspace", str(root), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [p["participant_id"] for p in listed["participants"]] == ["P01"]
    assert listed["participants"][0]["timezone"] == "Asia/Tokyo"


def test_exit_codes(tmp_path, capsys):
    root = tmp_path / "ws"
    assert main(["init", "--workspace", str(root)]) == 0
    assert main(["participants", "add", "bad id!", "--workspace", str(root)]) == 2
    assert main(["participants", "add", "--no-such-option"]) == 2
    assert main(["participants", "list", "--workspace", str(tmp_path / "none")]) == 1
    err = capsys.readouterr().err
    assert "is not a Twin Me Lab workspace" in err
    assert "Traceback" not in err


def test_error_as_json(tmp_path, capsys):
    code = main(["participants", "list", "--workspace", str(tmp_path / "x"), "--json"])
    assert code == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["exit_code"] == 1
    assert payload["kind"] == "WorkspaceError"


def test_debug_log_never_prints_key(tmp_path):
    key_hex = keys.generate_key()
    database_key = keys.parse_key(key_hex, "test").database_key()
    env = dict(os.environ, TWINME_KEY=key_hex)
    root = tmp_path / "ws"
    outputs = []
    for args in (
        ["init", "--workspace", str(root)],
        ["participants", "add", "P01", "--workspace", str(root)],
        ["participants", "list", "--workspace", str(root), "--json"],
        ["forget", "P01", "--yes", "--workspace", str(root)],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "twinme_lab", "--log-level", "DEBUG", *args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout + done.stderr)
    text = "\n".join(outputs)
    assert "DEBUG" in text or "INFO" in text
    assert key_hex not in text
    assert database_key not in text


@pytest.mark.parametrize(
    ("platform", "sample", "kind", "added"),
    [
        ("youtube", "youtube_takeout/b", "watch", 290),
        ("discord", "discord_package/a", "message", 321),
        ("linkedin", "linkedin_export/b", "comment", 44),
    ],
)
def test_import_export_commands(tmp_path, capsys, platform, sample, kind, added):
    from conftest import REAL

    root = str(tmp_path / "ws")
    assert main(["init", "--workspace", root]) == 0
    assert main(["participants", "add", "P1", "--workspace", root]) == 0
    capsys.readouterr()
    args = ["import", platform, str(REAL / sample), "--participant", "P1"]
    assert main([*args, "--workspace", root, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["kinds"][kind]["added"] == added
    assert main([*args, "--workspace", root, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["added"] == 0


def test_cli_start_loads_no_heavy_science_modules():
    code = (
        "import sys, twinme_lab.cli\n"
        "print(','.join(m for m in ('sklearn', 'papermill', 'plotly', 'distributed')"
        " if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


def test_tune_model_choices_match_tuning_module():
    from twinme_lab.cli import science
    from twinme_lab.traits import tuning

    assert science.MODELS == tuning.MODELS


def test_exit_code_does_not_leak_between_calls(tmp_path, capsys):
    root = str(tmp_path / "ws")
    assert main(["init", "--workspace", root]) == 0
    common.set_exit_code(3)
    common._state["json"] = True
    assert main(["participants", "list", "--workspace", root]) == 0
    assert not capsys.readouterr().out.lstrip().startswith("{")


def test_usage_error_as_json(tmp_path, capsys):
    missing = str(tmp_path / "nothere.zip")
    code = main(["import", "spotify", missing, "--participant", "P1", "--json"])
    assert code == 2
    payload = json.loads(capsys.readouterr().out)
    assert payload["exit_code"] == 2
    assert payload["kind"] == "BadParameter"
    assert "nothere.zip" in payload["error"]
