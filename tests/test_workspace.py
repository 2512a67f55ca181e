"""The encrypted workspace: keys, encryption at rest, locking, migrations, forget."""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from twinme_lab import keys, participants, store
from twinme_lab.errors import (
    UsageError,
    WorkspaceBusyError,
    WorkspaceError,
    WorkspaceKeyError,
)
from twinme_lab.workspace import DB_NAME, init_workspace, open_workspace

CANARY_TITLE = "Zqxvy Canary Ballad Nine"
CANARY_PARTICIPANT = "PCANARY7Q"


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _insert_canary_rows(
    con, participant_id: str, rows: int = 20, title: str = CANARY_TITLE
) -> None:
    con.execute(
        "INSERT INTO participants "
        "VALUES (?, 'Europe/Berlin', NULL, NULL, false, now())",
        [participant_id],
    )
    con.execute(
        """
        INSERT INTO listening_events (participant_id, source, kind, ended_at,
            time_precision, ms_played, track_name, artist_name, record_key,
            record_ordinal, import_id)
        SELECT ?, 'spotify_extended', 'music', TIMESTAMPTZ '2024-01-01 00:00:00+00'
            + i * INTERVAL 1 MINUTE, 'second', 1000 + i, ? || ' ' || i, 'Artist',
            md5(i::VARCHAR), 1, 1
        FROM range(?) t(i)
        """,
        [participant_id, title, rows],
    )
    con.execute(
        "INSERT INTO questionnaire_answers VALUES (?, 'ipip50', 4, 4.0, 1)",
        [participant_id],
    )


def test_init_writes_private_key_file(workspace, isolated_config):
    key_file = keys.default_key_file(workspace.workspace_id)
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().strip()) == 64
    meta = json.loads((workspace.root / "workspace.json").read_text())
    assert meta["workspace_id"] == workspace.workspace_id
    assert meta["encrypted"] is True


def test_init_refuses_existing_workspace(workspace):
    with pytest.raises(WorkspaceError, match="already contains a workspace"):
        init_workspace(workspace.root)


def test_database_file_has_no_plaintext(workspace):
    with workspace.connect() as con:
        _insert_canary_rows(con, CANARY_PARTICIPANT)
        con.execute("CHECKPOINT")
    data = workspace.db_path.read_bytes()
    assert CANARY_TITLE.encode() not in data
    assert CANARY_PARTICIPANT.encode() not in data
    assert b"ipip50" not in data


def test_wal_has_no_plaintext_but_plain_wal_does(tmp_path, workspace):
    plain, _ = init_workspace(tmp_path / "plain", encrypted=False)
    for ws, expect_plaintext in ((workspace, False), (plain, True)):
        with ws.connect() as con:
            con.execute("SET checkpoint_threshold = '10GB'")
            _insert_canary_rows(con, CANARY_PARTICIPANT)
            wal = ws.db_path.with_name(DB_NAME + ".wal")
            assert wal.is_file()
            wal_bytes = wal.read_bytes()
        assert (CANARY_TITLE.encode() in wal_bytes) is expect_plaintext
        assert (CANARY_PARTICIPANT.encode() in wal_bytes) is expect_plaintext


def _spill_and_watch(ws, encrypt_temp: bool) -> tuple[int, bool]:
    """Run a sort that spills to disk; return (temp files seen, canary seen)."""
    seen_files: set[str] = set()
    found = False
    done = threading.Event()
    errors: list[BaseException] = []

    def run_sort():
        try:
            with ws.connect() as con:
                if not encrypt_temp:
                    con.execute("SET temp_file_encryption = false")
                con.execute("SET memory_limit = '64MB'")
                con.execute("SET threads = 1")
                con.execute("SET preserve_insertion_order = false")
                con.execute(
                    f"""
                    SELECT s, count(*) FROM (
                        SELECT '{CANARY_TITLE}' || (i * 7919 % 1000003)::VARCHAR
                            || repeat('x', 40) AS s
                        FROM range(3000000) t(i)
                        ORDER BY s
                    ) GROUP BY s ORDER BY s LIMIT 1
                    """
                ).fetchall()
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=run_sort)
    thread.start()
    while not done.is_set():
        for path in ws.temp_dir.rglob("*"):
            if not path.is_file():
                continue
            seen_files.add(path.name)
            try:
                if CANARY_TITLE.encode() in path.read_bytes():
                    found = True
            except OSError:
                pass
        time.sleep(0.02)
    thread.join()
    if errors:
        raise errors[0]
    return len(seen_files), found


def test_temp_files_of_large_sort_are_encrypted(workspace):
    seen, found = _spill_and_watch(workspace, encrypt_temp=False)
    assert seen > 0, "the sort did not spill; the test would prove nothing"
    assert found, "plain temp files should show the canary (control)"

    seen, found = _spill_and_watch(workspace, encrypt_temp=True)
    assert seen > 0
    assert not found


def test_wrong_key_is_one_sentence_and_changes_nothing(workspace, monkeypatch):
    with workspace.connect() as con:
        _insert_canary_rows(con, CANARY_PARTICIPANT)
    before = _tree_digest(workspace.root)
    monkeypatch.setenv(keys.KEY_ENV, "ab" * 32)
    with pytest.raises(WorkspaceKeyError) as info:
        open_workspace(workspace.root)
    message = str(info.value)
    assert "TWINME_KEY environment variable" in message
    assert "does not open" in message
    assert "ab" * 32 not in message
    assert _tree_digest(workspace.root) == before


def test_missing_key_names_every_place_looked(workspace, isolated_config):
    key_file = keys.default_key_file(workspace.workspace_id)
    key_file.rename(key_file.with_suffix(".moved"))
    before = _tree_digest(workspace.root)
    with pytest.raises(WorkspaceKeyError) as info:
        open_workspace(workspace.root)
    message = str(info.value)
    assert "TWINME_KEY (not set)" in message
    assert "TWINME_KEY_FILE (not set)" in message
    assert str(key_file) in message
    assert _tree_digest(workspace.root) == before


def test_key_file_readable_by_others_is_rejected(workspace):
    key_file = keys.default_key_file(workspace.workspace_id)
    key_file.chmod(0o644)
    with pytest.raises(WorkspaceKeyError, match="chmod 600"):
        open_workspace(workspace.root)


def test_key_from_env_and_key_file_env(tmp_path, monkeypatch):
    key_hex = keys.generate_key()
    monkeypatch.setenv(keys.KEY_ENV, key_hex)
    ws, origin = init_workspace(tmp_path / "env")
    assert "TWINME_KEY" in origin
    assert not keys.default_key_file(ws.workspace_id).exists()

    key_file = tmp_path / "study.key"
    key_file.write_text(key_hex + "\n")
    key_file.chmod(0o600)
    monkeypatch.delenv(keys.KEY_ENV)
    monkeypatch.setenv(keys.KEY_FILE_ENV, str(key_file))
    reopened = open_workspace(ws.root)
    assert reopened.key.raw == bytes.fromhex(key_hex)


def test_malformed_key_is_rejected(monkeypatch, tmp_path):
    monkeypatch.setenv(keys.KEY_ENV, "not-a-key")
    with pytest.raises(WorkspaceKeyError, match="not 64 hexadecimal"):
        init_workspace(tmp_path / "bad")


def test_subkeys_differ_and_are_stable():
    key = keys.parse_key("01" * 32, "test")
    assert key.database_key() != key.token_key().hex()
    assert key.database_key() == keys.parse_key("01" * 32, "x").database_key()
    assert "01" * 32 not in repr(key)


def test_path_with_quote_and_space(tmp_path):
    ws, _ = init_workspace(tmp_path / "it's a study")
    participants.add(ws, "P01", "UTC")
    assert [p["participant_id"] for p in participants.list_participants(ws)] == ["P01"]


def test_busy_file_is_reported_plainly(workspace, monkeypatch):
    monkeypatch.setattr(store, "BUSY_RETRY_SECONDS", 0.5)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from twinme_lab.workspace import open_workspace\n"
            "ws = open_workspace(sys.argv[1])\n"
            "with ws.connect():\n"
            "    print('held', flush=True)\n"
            "    time.sleep(30)\n",
            str(workspace.root),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkspaceBusyError) as info:
            with workspace.connect():
                pass
        assert str(workspace.db_path) in str(info.value)
        assert "in use by another process" in str(info.value)
    finally:
        holder.kill()
        holder.wait()


def test_migrations_apply_once(workspace):
    latest = max(version for version, _, _ in store.migration_files())
    with workspace.connect() as con:
        assert store.schema_version(con) == latest
        assert store.migrate(con) == []
        count = con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
    assert count == len(store.migration_files())


def test_participant_validation(workspace):
    with pytest.raises(UsageError, match="Invalid participant id"):
        participants.add(workspace, "jane.doe@example.com")
    with pytest.raises(UsageError, match="Unknown time zone"):
        participants.add(workspace, "P01", "Mars/Olympus")
    participants.add(workspace, "P01", "Europe/Berlin", "v2")
    with pytest.raises(UsageError, match="already enrolled"):
        participants.add(workspace, "P01")
    record = participants.get(workspace, "P01")
    assert record["timezone"] == "Europe/Berlin"
    assert record["consent_version"] == "v2"
    assert record["consent_at"] is not None


def test_forget_removes_bytes_from_plain_file(tmp_path):
    ws, _ = init_workspace(tmp_path / "plain", encrypted=False)
    with ws.connect() as con:
        # Few rows, so DuckDB stores the strings uncompressed and a byte scan can
        # see them.
        _insert_canary_rows(con, CANARY_PARTICIPANT, rows=3)
        _insert_canary_rows(con, "PKEEP01", rows=3, title="Kept Song")
        con.execute("CHECKPOINT")
    assert CANARY_TITLE.encode() in ws.db_path.read_bytes()
    report = ws.reports_dir / CANARY_PARTICIPANT
    report.mkdir(parents=True)
    (report / "trait_report.html").write_text("report")

    result = participants.forget(ws, CANARY_PARTICIPANT)

    # The pseudonymous id stays in audit_log and deletions by design; the
    # participant's data must be gone from every page of the file.
    data = ws.db_path.read_bytes()
    assert CANARY_TITLE.encode() not in data
    assert b"Kept Song" in data
    assert not report.exists()
    assert result["rows_deleted"]["listening_events"] == 3
    with ws.connect() as con:
        kept = con.execute(
            "SELECT count(*) FROM listening_events WHERE participant_id = 'PKEEP01'"
        ).fetchone()[0]
    assert kept == 3


def test_forget_on_encrypted_workspace(workspace):
    with workspace.connect() as con:
        _insert_canary_rows(con, CANARY_PARTICIPANT)
    participants.forget(workspace, CANARY_PARTICIPANT)
    reopened = open_workspace(workspace.root)
    with reopened.connect() as con:
        for table in participants.tables_with_participants(con):
            rows = con.execute(
                f'SELECT count(*) FROM "{table}" WHERE participant_id = ?',
                [CANARY_PARTICIPANT],
            ).fetchone()[0]
            expected = 1 if table == "deletions" else None
            if table == "audit_log":
                assert rows >= 1
            elif expected is not None:
                assert rows == expected
            else:
                assert rows == 0, table
        counts = con.execute(
            "SELECT counts FROM audit_log WHERE kind = 'forget'"
        ).fetchone()[0]
    assert CANARY_TITLE not in counts
    assert not workspace.db_path.with_name(DB_NAME + ".rebuild").exists()


def test_plain_delete_leaves_bytes_that_forget_removes(tmp_path):
    """Control for the forget test: DELETE alone leaves the rows in freed pages."""
    ws, _ = init_workspace(tmp_path / "plain", encrypted=False)
    with ws.connect() as con:
        _insert_canary_rows(con, CANARY_PARTICIPANT, rows=3)
        con.execute("CHECKPOINT")
        con.execute(
            "DELETE FROM listening_events WHERE participant_id = ?",
            [CANARY_PARTICIPANT],
        )
        con.execute("CHECKPOINT")
    assert CANARY_TITLE.encode() in ws.db_path.read_bytes()


def test_database_key_opens_without_token_key(workspace, monkeypatch):
    participants.add(workspace, "P01", "UTC")
    database_key = workspace.key.database_key()
    key_file = keys.default_key_file(workspace.workspace_id)
    key_file.rename(key_file.with_suffix(".away"))
    monkeypatch.setenv(keys.DATABASE_KEY_ENV, database_key)

    worker = open_workspace(workspace.root)

    assert [p["participant_id"] for p in participants.list_participants(worker)] == [
        "P01"
    ]
    with pytest.raises(WorkspaceKeyError, match="only the database key"):
        worker.key.token_key()
    assert worker.worker_environment() == {keys.DATABASE_KEY_ENV: database_key}


def test_worker_environment_never_carries_master_key(workspace):
    env = workspace.worker_environment()
    assert workspace.key.raw.hex() not in "".join(env.values())
    assert list(env) == [keys.DATABASE_KEY_ENV]


def test_forget_deletes_analyst_exports(workspace):
    with workspace.connect() as con:
        _insert_canary_rows(con, CANARY_PARTICIPANT)
    exports = workspace.root / "exports"
    exports.mkdir()
    (exports / "traits.csv").write_text(f"participant\n{CANARY_PARTICIPANT}\n")

    result = participants.forget(workspace, CANARY_PARTICIPANT)

    assert result["exports_deleted"] == ["traits.csv"]
    assert not (exports / "traits.csv").exists()
