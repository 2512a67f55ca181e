"""Read-only workspaces, kept connections, and what a report batch opens.

Parallel reports only run side by side if no worker or notebook attaches the
database read-write, because DuckDB gives a read-write attach to one process at
a time. These tests hold a read-only attach in another process while the code
under test runs: any read-write attach then fails with WorkspaceBusyError, so a
report that still gets written proves its whole path only read.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest

from twinme_lab import keys, participants, store, traits
from twinme_lab.errors import StoreError, WorkspaceBusyError, WorkspaceKeyError
from twinme_lab.reports import batch, load_report_data
from twinme_lab.reports.batch import run_reports
from twinme_lab.workspace import open_workspace

# Holds a read-only attach of the workspace given as argv[1] until stdin closes.
HOLDER = """
import sys
from twinme_lab.workspace import open_workspace

ws = open_workspace(sys.argv[1], read_only=True)
with ws.keep_open():
    with ws.connect() as con:
        con.execute("SELECT count(*) FROM participants").fetchone()
    print("ready", flush=True)
    sys.stdin.read()
"""


@contextmanager
def read_only_holder(root):
    """Keep a read-only attach of the workspace open in another process."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)


@pytest.fixture
def connections(monkeypatch):
    """Count the DuckDB connections opened through the store from now on."""
    opened = []
    original = store.new_connection

    def counting(*args, **kwargs):
        con = original(*args, **kwargs)
        opened.append(con)
        return con

    monkeypatch.setattr(store, "new_connection", counting)
    return opened


def test_read_only_opens_beside_other_reader(scored_pair, monkeypatch):
    monkeypatch.setattr(store, "BUSY_RETRY_SECONDS", 0.2)
    with read_only_holder(scored_pair.root):
        reader = open_workspace(scored_pair.root, read_only=True)
        ids = [r["participant_id"] for r in participants.list_participants(reader)]
        assert ids == ["P01", "P02"]
        with pytest.raises(WorkspaceBusyError, match="in use by another process"):
            open_workspace(scored_pair.root)
    # The other reader is gone, so a read-write open works again.
    assert open_workspace(scored_pair.root).read_only is False


def test_read_only_workspace_rejects_writes(scored_pair):
    reader = open_workspace(scored_pair.root, read_only=True)
    assert reader.read_only is True
    with pytest.raises(StoreError, match="read-only"):
        participants.add(reader, "P03")
    ids = [r["participant_id"] for r in participants.list_participants(scored_pair)]
    assert ids == ["P01", "P02"]


def test_read_only_connect_on_writable_workspace(scored_pair):
    with scored_pair.connect(read_only=True) as con:
        with pytest.raises(Exception, match="read-only"):
            con.execute("DELETE FROM participants")
    ids = [r["participant_id"] for r in participants.list_participants(scored_pair)]
    assert ids == ["P01", "P02"]


def test_read_only_open_with_wrong_key(scored_pair, monkeypatch):
    wrong = keys.generate_key()
    monkeypatch.setenv(keys.KEY_ENV, wrong)
    with pytest.raises(WorkspaceKeyError) as raised:
        open_workspace(scored_pair.root, read_only=True)
    assert "does not open" in str(raised.value)
    assert wrong not in str(raised.value)
    assert keys.parse_key(wrong, "test").database_key() not in str(raised.value)


def test_keep_open_reuses_one_connection(scored_pair, connections):
    with scored_pair.keep_open():
        with scored_pair.connect() as first, scored_pair.connect() as second:
            assert first is second
        participants.list_participants(scored_pair)
        traits.trait_table(scored_pair, "P01")
        with scored_pair.keep_open():
            participants.get(scored_pair, "P02")
    assert len(connections) == 1
    participants.list_participants(scored_pair)
    assert len(connections) == 2


def test_keep_open_is_per_thread(scored_pair, connections):
    reader = open_workspace(scored_pair.root, read_only=True)
    connections.clear()
    seen = {}

    def read_in_thread():
        with reader.connect() as con:
            seen["thread"] = con

    with reader.keep_open():
        with reader.connect() as con:
            seen["main"] = con
        thread = threading.Thread(target=read_in_thread)
        thread.start()
        thread.join()
    assert len(connections) == 2
    assert seen["thread"] is not seen["main"]


def test_load_report_data_opens_once(scored_pair, connections):
    written = load_report_data(scored_pair, "P01")
    assert len(connections) == 1
    reader = open_workspace(scored_pair.root, read_only=True)
    connections.clear()
    read = load_report_data(reader, "P01")
    assert len(connections) == 1
    assert read.fingerprint == written.fingerprint
    assert read.scores() == written.scores()


def test_parallel_batch_only_reads(scored_pair, monkeypatch):
    with read_only_holder(scored_pair.root):
        reader = open_workspace(scored_pair.root, read_only=True)
        result = run_reports(reader, jobs=2)
    assert [o.status for o in result.outcomes] == ["written", "written"]
    for participant_id in ("P01", "P02"):
        folder = scored_pair.reports_dir / participant_id
        assert (folder / "trait_report.html").is_file()
        assert not (folder / "report_error.txt").exists()


def test_rerun_checks_all_on_one_connection(scored_pair, monkeypatch, connections):
    first = run_reports(scored_pair, jobs=1)
    assert [o.status for o in first.outcomes] == ["written", "written"]
    pages = [scored_pair.reports_dir / p / "trait_report.html" for p in ("P01", "P02")]
    before = [page.stat().st_mtime_ns for page in pages]

    class NoPool:
        def __init__(self, *args, **kwargs):
            raise AssertionError("a worker pool was started for current reports")

    monkeypatch.setattr(batch, "ProcessPoolExecutor", NoPool)
    connections.clear()
    seen = []
    again = run_reports(scored_pair, jobs=2, progress=seen.append)
    assert [o.status for o in again.outcomes] == ["skipped", "skipped"]
    assert [o.participant_id for o in seen] == ["P01", "P02"]
    assert [page.stat().st_mtime_ns for page in pages] == before
    # One open to list the participants, one for every participant's data.
    assert len(connections) == 2


def test_rerun_writes_only_stale_report(scored_pair, monkeypatch):
    run_reports(scored_pair, jobs=1)
    scores = scored_pair.reports_dir / "P02" / "trait_scores.json"
    document = json.loads(scores.read_text())
    document["data_fingerprint"] = "0" * 64
    scores.write_text(json.dumps(document))
    kept = (scored_pair.reports_dir / "P01" / "trait_report.html").stat().st_mtime_ns

    result = run_reports(scored_pair, jobs=1)
    assert [o.status for o in result.outcomes] == ["skipped", "written"]
    assert (
        scored_pair.reports_dir / "P01" / "trait_report.html"
    ).stat().st_mtime_ns == (kept)
    rewritten = json.loads(scores.read_text())
    assert (
        rewritten["data_fingerprint"]
        == load_report_data(scored_pair, "P02").fingerprint
    )
