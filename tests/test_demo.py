"""The demo: a fresh workspace from data/samples with one report per participant."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from twinme_lab import demo, participants
from twinme_lab.errors import UsageError
from twinme_lab.workspace import open_workspace

SAMPLES = Path(__file__).parents[1] / "data" / "samples"


def test_demo_builds_three_reports(tmp_path, isolated_config):
    target = tmp_path / "demo-ws"
    result = demo.build_demo(target, jobs=2)

    key_file = isolated_config / "keys" / f"{open_workspace_id(target)}.key"
    assert result.key_file == key_file
    assert key_file.is_file()
    assert str(key_file) in result.key_origin

    ws = open_workspace(target)
    enrolled = {
        p["participant_id"]: p["timezone"] for p in participants.list_participants(ws)
    }
    assert enrolled == {
        "P01": "America/New_York",
        "P02": "America/Los_Angeles",
        "P03": "Europe/Warsaw",
    }
    assert [o.status for o in result.reports.outcomes] == ["written"] * 3
    for participant_id in ("P01", "P02", "P03"):
        folder = target / "reports" / participant_id
        for name in ("trait_report.ipynb", "trait_report.html", "trait_scores.json"):
            assert (folder / name).is_file(), f"{participant_id}/{name}"
        scores = json.loads((folder / "trait_scores.json").read_text())
        assert scores["participant_id"] == participant_id
        # The default mapping weights no Extraversion feature.
        assert scores["traits"]["Extraversion"]["score"] is None
        assert scores["traits"]["Openness"]["score"] is not None

    # A later demo run first clears this workspace, with the key file it made.
    demo.clear_demo_folder(target)
    assert not target.exists()
    assert not key_file.exists()


def open_workspace_id(root: Path) -> str:
    return json.loads((root / "workspace.json").read_text())["workspace_id"]


def test_demo_rejects_other_folder(tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    (study / "notes.txt").write_text("keep me")
    with pytest.raises(UsageError, match="not a demo workspace"):
        demo.build_demo(study)
    assert (study / "notes.txt").read_text() == "keep me"


def test_samples_match_manifest():
    manifest = json.loads((SAMPLES / "demo.json").read_text())
    ids = [p["id"] for p in manifest["participants"]]
    assert ids == ["P01", "P02", "P03"]
    sources = (SAMPLES / "SOURCES.md").read_text()
    for person in manifest["participants"]:
        for entry in person["imports"]:
            path = SAMPLES / entry["path"]
            assert path.exists(), path
            files = (
                [path]
                if path.is_file()
                else sorted(p for p in path.rglob("*") if p.is_file())
            )
            for file in files:
                relative = file.relative_to(SAMPLES).as_posix()
                assert f"`{relative}`" in sources, relative
    header = (SAMPLES / "ipip50.csv").read_text().splitlines()[0].split(",")
    assert header == ["participant"] + [str(i) for i in range(1, 51)]


def test_samples_are_copies_of_test_data():
    real = Path(__file__).parent / "data" / "real"
    rows = re.findall(
        r"^\| `([^`]+)` \| `([^`]+)` \|",
        (SAMPLES / "SOURCES.md").read_text(),
        re.MULTILINE,
    )
    assert len(rows) == 13
    for sample, original in rows:
        assert (SAMPLES / sample).read_bytes() == (real / original).read_bytes(), sample
