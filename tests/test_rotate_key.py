"""Master key rotation: re-wrapped tokens, the old key refused, and recovery from
a process killed at every step."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from twinme_lab import keys, participants, rotation
from twinme_lab.errors import UsageError, WorkspaceKeyError
from twinme_lab.oauth import records
from twinme_lab.workspace import Workspace, init_workspace, open_workspace

TOKENS = {
    ("P1", "spotify"): ("access-spotify-1", "refresh-spotify-1"),
    ("P2", "github"): ("access-github-2", None),
}

CLI = [
    sys.executable,
    "-c",
    "import sys; from twinme_lab.cli import main; sys.exit(main(sys.argv[1:]))",
]

_ROTATE_SCRIPT = """
import sys
from twinme_lab import rotation
from twinme_lab.workspace import open_workspace
rotation.rotate_key(open_workspace(sys.argv[1]))
"""


def populate(workspace: Workspace) -> None:
    """Enrol two participants with one stored connection each, and one revoked."""
    participants.add(workspace, "P1")
    participants.add(workspace, "P2")
    now = datetime.now(UTC)
    with workspace.connect() as con:
        for (participant_id, platform), (access, refresh) in TOKENS.items():
            tokens = records.Tokens(access, refresh, "Bearer", None)
            records.write_connection(
                con,
                workspace,
                participant_id,
                platform,
                "sandbox",
                f"acct-{participant_id}",
                tokens,
                "scope",
                now,
            )
        records.write_connection(
            con,
            workspace,
            "P2",
            "discord",
            "sandbox",
            "acct-d",
            records.Tokens(None, None, "Bearer", None),
            "identify",
            now,
        )


def assert_intact(workspace: Workspace) -> None:
    """Check that participants and every token survived, readable with the key."""
    names = [p["participant_id"] for p in participants.list_participants(workspace)]
    assert names == ["P1", "P2"]
    with workspace.connect() as con:
        for (participant_id, platform), (access, refresh) in TOKENS.items():
            record = records.load(con, participant_id, platform)
            tokens = record.open_tokens(workspace.key)
            assert tokens.access_token == access
            assert tokens.refresh_token == refresh
            assert record.key_id == workspace.key.key_id
        setting = con.execute(
            "SELECT value FROM workspace_settings WHERE key = 'key_id'"
        ).fetchone()[0]
    assert setting == workspace.key.key_id


def opens_with(root: Path, workspace_id: str, key_hex: str) -> bool:
    candidate = Workspace(root, workspace_id, keys.parse_key(key_hex, "test"))
    try:
        with candidate.connect():
            return True
    except WorkspaceKeyError:
        return False


def test_rotate_with_key_file(workspace):
    populate(workspace)
    key_file = keys.default_key_file(workspace.workspace_id)
    old_hex = key_file.read_text().strip()

    result = rotation.rotate_key(workspace)

    new_hex = key_file.read_text().strip()
    assert new_hex != old_hex
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert result["new_key"] is None
    assert result["key_file"] == str(key_file)
    assert result["rewrapped"] == 2
    assert result["unreadable"] == 0
    assert not rotation.pending_path(workspace.workspace_id).exists()

    reopened = open_workspace(workspace.root)
    assert reopened.key.key_id == result["new_key_id"]
    assert_intact(reopened)
    assert not opens_with(workspace.root, workspace.workspace_id, old_hex)


def test_old_key_refused_after_rotation(workspace, monkeypatch):
    populate(workspace)
    old_hex = workspace.key.raw.hex()
    rotation.rotate_key(workspace)
    monkeypatch.setenv(keys.KEY_ENV, old_hex)
    with pytest.raises(WorkspaceKeyError, match="does not open"):
        open_workspace(workspace.root)


def test_rotate_with_environment_key(tmp_path, monkeypatch):
    old_hex = keys.generate_key()
    monkeypatch.setenv(keys.KEY_ENV, old_hex)
    workspace, _ = init_workspace(tmp_path / "ws")
    populate(workspace)

    result = rotation.rotate_key(workspace)

    new_hex = result["new_key"]
    assert len(new_hex) == 64
    assert new_hex != old_hex
    assert result["key_file"] is None
    assert not keys.default_key_file(workspace.workspace_id).exists()
    with pytest.raises(WorkspaceKeyError):
        open_workspace(workspace.root)
    monkeypatch.setenv(keys.KEY_ENV, new_hex)
    assert_intact(open_workspace(workspace.root))


def test_cli_prints_environment_key_once(tmp_path):
    old_hex = keys.generate_key()
    environment = dict(os.environ, TWINME_KEY=old_hex)
    root = tmp_path / "ws"
    subprocess.run(
        [*CLI, "init", "--workspace", str(root)],
        env=environment,
        check=True,
        capture_output=True,
    )
    completed = subprocess.run(
        [*CLI, "rotate-key", "--yes", "--json", "--workspace", str(root)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    summary = json.loads(completed.stdout)
    assert "new_key" not in summary
    printed = [line for line in completed.stderr.split() if len(line) == 64]
    assert len(printed) == 1
    new_hex = printed[0]
    assert old_hex not in completed.stdout + completed.stderr
    meta = json.loads((root / "workspace.json").read_text())
    assert opens_with(root, meta["workspace_id"], new_hex)
    assert not opens_with(root, meta["workspace_id"], old_hex)


def test_rotation_refused_while_pending(workspace):
    rotation.pending_path(workspace.workspace_id).write_text("{}")
    with pytest.raises(UsageError, match="interrupted key rotation"):
        rotation.rotate_key(workspace)


@pytest.mark.parametrize("checkpoint", rotation.CHECKPOINTS)
def test_killed_rotation_recovers(workspace, checkpoint):
    populate(workspace)
    key_file = keys.default_key_file(workspace.workspace_id)
    old_hex = key_file.read_text().strip()
    environment = dict(os.environ, **{rotation.CRASH_ENV: checkpoint})
    completed = subprocess.run(
        [sys.executable, "-c", _ROTATE_SCRIPT, str(workspace.root)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 70, completed.stderr

    pending = rotation.pending_path(workspace.workspace_id)
    swapped = checkpoint != "pending_written"
    assert pending.exists() == (checkpoint != "done")
    if pending.exists():
        new_hex = json.loads(pending.read_text())["new"]
        assert opens_with(workspace.root, workspace.workspace_id, new_hex) == swapped
        assert opens_with(workspace.root, workspace.workspace_id, old_hex) != swapped

    outcome = rotation.recover(workspace.root)
    if checkpoint == "done":
        assert outcome is None
    elif swapped:
        assert outcome["state"] == "completed"
    else:
        assert outcome["state"] == "abandoned"
    assert not pending.exists()
    assert rotation.recover(workspace.root) is None

    reopened = open_workspace(workspace.root)
    assert_intact(reopened)
    current_hex = key_file.read_text().strip()
    assert (current_hex != old_hex) == swapped
    assert opens_with(workspace.root, workspace.workspace_id, current_hex)
    assert opens_with(workspace.root, workspace.workspace_id, old_hex) != swapped


def test_killed_environment_rotation_recovers(tmp_path, monkeypatch):
    old_hex = keys.generate_key()
    monkeypatch.setenv(keys.KEY_ENV, old_hex)
    workspace, _ = init_workspace(tmp_path / "ws")
    populate(workspace)
    environment = dict(os.environ, **{rotation.CRASH_ENV: "database_swapped"})
    completed = subprocess.run(
        [sys.executable, "-c", _ROTATE_SCRIPT, str(workspace.root)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 70, completed.stderr
    with pytest.raises(WorkspaceKeyError):
        open_workspace(workspace.root)

    reopened, outcome = rotation.open_recovering(workspace.root)
    assert outcome["state"] == "completed"
    assert outcome["new_key"] == reopened.key.raw.hex()
    assert_intact(reopened)
    monkeypatch.setenv(keys.KEY_ENV, outcome["new_key"])
    assert_intact(open_workspace(workspace.root))


_ROTATE_AFTER_OPEN_SCRIPT = """
import sys
from twinme_lab import rotation
from twinme_lab.workspace import open_workspace
workspace = open_workspace(sys.argv[1])
print("opened", flush=True)
rotation.rotate_key(workspace)
"""


@pytest.mark.parametrize("delay", [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.3, 1.6])
def test_rotation_killed_at_any_moment(workspace, delay):
    populate(workspace)
    key_file = keys.default_key_file(workspace.workspace_id)
    old_hex = key_file.read_text().strip()
    process = subprocess.Popen(
        [sys.executable, "-c", _ROTATE_AFTER_OPEN_SCRIPT, str(workspace.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout.readline().strip() == "opened"
    try:
        process.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)

    rotation.recover(workspace.root)
    reopened = open_workspace(workspace.root)
    assert_intact(reopened)
    current_hex = key_file.read_text().strip()
    assert opens_with(workspace.root, workspace.workspace_id, current_hex)
    if current_hex != old_hex:
        assert not opens_with(workspace.root, workspace.workspace_id, old_hex)


def test_open_workspace_finishes_file_key_rotation(tmp_path):
    workspace, _ = init_workspace(tmp_path / "ws")
    populate(workspace)
    environment = dict(os.environ, **{rotation.CRASH_ENV: "database_swapped"})
    completed = subprocess.run(
        [sys.executable, "-c", _ROTATE_SCRIPT, str(workspace.root)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 70, completed.stderr

    reopened = open_workspace(workspace.root)

    assert_intact(reopened)
    assert not rotation.pending_path(workspace.workspace_id).exists()
    assert reopened.key.raw != workspace.key.raw
