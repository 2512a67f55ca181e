"""Ctrl-C during a report batch: it stops within seconds and leaves nothing running.

The batch runs in a child process in its own session, and the test sends SIGINT
to that whole process group, as a terminal's Ctrl-C does. A batch that finished
every report after the interrupt, left a kernel or its socket folder behind, or
kept the database attached, fails here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import attach_read_write, write_code_notebook

from twinme_lab import participants, traits
from twinme_lab.cli import main
from twinme_lab.reports import batch
from twinme_lab.reports.batch import BatchResult, ReportOutcome

PARTICIPANTS = [f"P{number:02d}" for number in range(1, 9)]

# Runs a forced batch over the workspace in argv[1] with argv[2] jobs and the
# notebook in argv[3]. It prints a line per finished report, then the result.
DRIVER = """
import json
import sys

from twinme_lab.reports.batch import run_reports
from twinme_lab.workspace import open_workspace

def finished(outcome):
    print("finished", outcome.participant_id, outcome.status, flush=True)

ws = open_workspace(sys.argv[1])
result = run_reports(
    ws, jobs=int(sys.argv[2]), notebook=sys.argv[3], force=True, progress=finished
)
print(json.dumps(result.as_dict()), flush=True)
"""

SLOW_NOTEBOOK = [
    (
        "parameters",
        'workspace = ""\nparticipant = ""\nmapping = None\noutput_dir = None',
    ),
    (None, "import time\ntime.sleep(2)"),
]


@pytest.fixture
def eight(workspace):
    for participant_id in PARTICIPANTS:
        participants.add(workspace, participant_id)
    traits.score(workspace)
    return workspace


def processes_mentioning(text: str) -> list[int]:
    """Return the ids of live processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if text.encode() in command:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("jobs", [1, 2])
def test_ctrl_c_stops_batch(eight, tmp_path, jobs):
    notebook = write_code_notebook(tmp_path / "slow.ipynb", SLOW_NOTEBOOK)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = {**os.environ, "TMPDIR": str(scratch)}
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(eight.root), str(jobs), str(notebook)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        first = driver.stdout.readline()
        assert first.startswith("finished"), driver.stderr.read()
        os.killpg(driver.pid, signal.SIGINT)
        interrupted_at = time.monotonic()
        rest, errors = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    stopped_after = time.monotonic() - interrupted_at

    assert driver.returncode == 0, errors
    result = json.loads(rest.strip().splitlines()[-1])
    assert result["written"] >= 1
    assert result["interrupted"] >= 1, errors
    assert result["written"] + result["interrupted"] == len(PARTICIPANTS)
    assert result["failed"] == 0
    # Each report sleeps 2 s, so finishing the rest would take 6 s or more.
    assert stopped_after < 30
    statuses = {r["participant"]: r["status"] for r in result["reports"]}
    for participant_id, status in statuses.items():
        folder = eight.reports_dir / participant_id
        assert not (folder / "trait_report.running.ipynb").exists()
        assert list(folder.glob("*.tmp")) == []
        if status == "written":
            assert (folder / "trait_report.html").is_file()

    # Kernels remove their socket folder when shut down; a kernel still running
    # would show its connection file path in its command line.
    assert [p.name for p in scratch.iterdir() if "kernel" in p.name] == []
    assert processes_mentioning(str(scratch)) == []
    writer = attach_read_write(eight.root)
    assert writer.returncode == 0, writer.stderr
    assert writer.stdout.strip() == str(len(PARTICIPANTS))


def test_cli_interrupted_batch_exits_130(eight, monkeypatch, capsys):
    def interrupted_batch(ws, **kwargs):
        return BatchResult(
            [
                ReportOutcome("P01", "written", "reports/P01", html="x.html"),
                ReportOutcome("P02", "interrupted", "reports/P02"),
            ]
        )

    monkeypatch.setattr(batch, "run_reports", interrupted_batch)
    code = main(["report", "--all", "--workspace", str(eight.root), "--json"])
    assert code == 130
    printed = json.loads(capsys.readouterr().out)
    assert printed["written"] == 1
    assert printed["interrupted"] == 1


def test_cli_ctrl_c_exits_130(eight, monkeypatch, capsys):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(participants, "list_participants", interrupt)
    code = main(["participants", "list", "--workspace", str(eight.root)])
    assert code == 130
    assert "Interrupted." in capsys.readouterr().err
