"""Shared fixtures: every test gets its own key folder, key and workspace."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from twinme_lab import keys
from twinme_lab.workspace import init_workspace

DATA = Path(__file__).parent / "data"
REAL = DATA / "real"


@pytest.fixture(autouse=True)
def isolated_config(tmp_path_factory, monkeypatch):
    """Point the key-file folder at a temp folder and clear key variables."""
    config = tmp_path_factory.mktemp("config")
    monkeypatch.setenv(keys.CONFIG_DIR_ENV, str(config))
    monkeypatch.delenv(keys.KEY_ENV, raising=False)
    monkeypatch.delenv(keys.KEY_FILE_ENV, raising=False)
    monkeypatch.delenv("TWINME_WORKSPACE", raising=False)
    return config


@pytest.fixture
def workspace(tmp_path):
    """A fresh encrypted workspace whose key sits in the temp key folder."""
    ws, _ = init_workspace(tmp_path / "ws")
    return ws


@pytest.fixture(scope="session")
def expected_counts() -> dict:
    """Record counts per sample file, from tests/data/real/expected.json."""
    return json.loads((REAL / "expected.json").read_text())["files"]


@pytest.fixture
def scored_pair(workspace):
    """The encrypted workspace with P01 and P02 enrolled and scored (no data)."""
    from twinme_lab import participants, traits

    participants.add(workspace, "P01")
    participants.add(workspace, "P02")
    traits.score(workspace)
    return workspace


@pytest.fixture
def ws(workspace):
    """The ``workspace`` fixture with participant P001 enrolled."""
    from twinme_lab import participants

    participants.add(workspace, "P001")
    return workspace


def query(ws, sql, params=None) -> list[tuple]:
    """Run one query on a workspace and return every row."""
    with ws.connect() as con:
        return con.execute(sql, params or []).fetchall()


def kinds_of(summary) -> dict:
    """Return an import summary's (added, skipped) per kind."""
    return {k: (v.added, v.skipped) for k, v in summary.kinds.items()}


def feature_value(ws, name, participant="P001") -> tuple[float | None, int]:
    """Return one stored feature's value (None when NULL) and observations."""
    from twinme_lab.features import features_table

    table = features_table(ws, participant)
    row = table[table.feature == name].iloc[0]
    value = None if row.value != row.value else float(row.value)
    return value, int(row.n_obs)


def write_code_notebook(path: Path, cells) -> Path:
    """Write a python3 notebook of code cells, given as (tag or None, source)."""
    import nbformat

    notebook = nbformat.v4.new_notebook()
    for tag, source in cells:
        cell = nbformat.v4.new_code_cell(source)
        if tag:
            cell.metadata["tags"] = [tag]
        notebook.cells.append(cell)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(notebook, path)
    return path


# Attaches the workspace in argv[1] read-write and prints its participant count.
_WRITER = """
import sys
from twinme_lab.workspace import open_workspace

ws = open_workspace(sys.argv[1])
with ws.connect(read_only=False) as con:
    print(con.execute("SELECT count(*) FROM participants").fetchone()[0])
"""


def attach_read_write(root):
    """Attach a workspace read-write in a new process; return the finished run.

    DuckDB refuses the attach while any other process still has the file
    attached, even read-only, so a zero exit code shows that none has.
    """
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", _WRITER, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
    )
