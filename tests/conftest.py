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
