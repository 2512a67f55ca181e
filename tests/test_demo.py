"""The demo: a fresh workspace from data/samples with one report per participant."""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

import pytest

from twinme_lab import demo, participants, sandbox
from twinme_lab.errors import UsageError
from twinme_lab.workspace import open_workspace

SAMPLES = Path(__file__).parents[1] / "data" / "samples"


def test_demo_builds_six_reports(tmp_path, isolated_config, monkeypatch):
    monkeypatch.delenv("TWINME_SANDBOX_URL", raising=False)
    monkeypatch.delenv("TWINME_GITHUB_REDIRECT_URI", raising=False)
    target = tmp_path / "demo-ws"
    result = demo.build_demo(target, jobs=2)

    key_file = isolated_config / "keys" / f"{open_workspace_id(target)}.key"
    assert result.key_file == key_file
    assert key_file.is_file()
    assert str(key_file) in result.key_origin
    # The sandbox variables were set only while connecting and extracting.
    assert "TWINME_SANDBOX_URL" not in os.environ
    assert "TWINME_GITHUB_REDIRECT_URI" not in os.environ

    ws = open_workspace(target)
    enrolled = {
        p["participant_id"]: p["timezone"] for p in participants.list_participants(ws)
    }
    assert enrolled == {
        "P01": "America/New_York",
        "P02": "America/Los_Angeles",
        "P03": "Europe/Warsaw",
        "P04": "Asia/Kolkata",
        "S01": "Europe/Berlin",
        "S02": "America/Chicago",
    }
    connected = {(c["participant"], c["platform"]) for c in result.connections}
    assert connected == {
        ("S01", "github"),
        ("S01", "discord"),
        ("S01", "youtube"),
        ("S01", "spotify"),
        ("S02", "github"),
        ("S02", "reddit"),
        ("S02", "twitch"),
        ("S02", "linkedin"),
    }
    assert {(c["status"], c["origin"]) for c in result.connections} == {
        ("connected", "sandbox")
    }
    assert result.extraction["exit_code"] == 0
    assert result.extraction["problems"] == []
    assert set(result.extraction["statuses"]) <= {"ok", "empty"}

    ids = ["P01", "P02", "P03", "P04", "S01", "S02"]
    assert [o.participant_id for o in result.reports.outcomes] == ids
    assert [o.status for o in result.reports.outcomes] == ["written"] * 6
    for participant_id in ids:
        folder = target / "reports" / participant_id
        for name in ("trait_report.ipynb", "trait_report.html", "trait_scores.json"):
            assert (folder / name).is_file(), f"{participant_id}/{name}"
        scores = json.loads((folder / "trait_scores.json").read_text())
        assert scores["participant_id"] == participant_id
        # The default mapping weights no Extraversion feature.
        assert scores["traits"]["Extraversion"]["score"] is None
    for participant_id in ("P01", "P02", "P03"):
        scores = json.loads(
            (target / "reports" / participant_id / "trait_scores.json").read_text()
        )
        assert scores["traits"]["Openness"]["score"] is not None

    pages = {
        pid: (target / "reports" / pid / "trait_report.html").read_text() for pid in ids
    }
    # P04's exports fill the communication section with measured values.
    p04 = section_rows(pages["P04"])
    assert re.fullmatch(r"0\.\d{3}", p04["comm_question_rate"][1])
    assert re.fullmatch(r"\d+\.\d", p04["comm_message_length"][1])
    assert p04["linkedin_skills"][1] == "31"  # Skills.csv of export b
    assert p04["linkedin_connections"][1] == "300"
    assert p04["youtube_watches"][3] == "300"
    assert "Contains information from AFINN" in pages["P04"]
    # Sandbox user 0 owns 8 repositories and user 1 owns 135; every fifth is a
    # fork, which does not count.
    assert section_rows(pages["S01"])["github_owned_repos"][1] == "7"
    assert section_rows(pages["S02"])["github_owned_repos"][1] == "108"
    # The demo study opted in to interests; only API data feeds them.
    for pid in ("S01", "S02"):
        assert re.search(r"<h2[^>]*>\s*Interests", pages[pid]), pid
    for pid in ("P01", "P02", "P03", "P04"):
        assert "interest" not in pages[pid].lower(), pid

    # A later demo run first clears this workspace, with the key file it made.
    demo.clear_demo_folder(target)
    assert not target.exists()
    assert not key_file.exists()


def section_rows(page: str) -> dict[str, list[str]]:
    """Return the six-cell rows of the communication and platform tables."""
    rows = {}
    for body in re.findall(r"<tr>(.*?)</tr>", page, re.DOTALL):
        cells = [c.strip() for c in re.findall(r"<td>(.*?)</td>", body, re.DOTALL)]
        if len(cells) == 6:
            rows[cells[0]] = cells
    return rows


def open_workspace_id(root: Path) -> str:
    return json.loads((root / "workspace.json").read_text())["workspace_id"]


def test_sandbox_stopped_when_step_fails(workspace, monkeypatch):
    monkeypatch.delenv("TWINME_SANDBOX_URL", raising=False)
    started = []
    serve = sandbox.serve

    def serve_and_record(**options):
        handle = serve(**options)
        started.append(handle)
        return handle

    monkeypatch.setattr(sandbox, "serve", serve_and_record)
    plan = {
        "seed": 0,
        "participants": [
            {
                "id": "not a valid id",
                "timezone": None,
                "sandbox_user": 0,
                "platforms": ["github"],
            }
        ],
    }
    with pytest.raises(UsageError):
        demo.connect_sandbox_participants(workspace, plan)
    assert len(started) == 1
    # Nothing listens on the sandbox's port any more.
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", started[0].port), timeout=5)
    assert "TWINME_SANDBOX_URL" not in os.environ
    assert "TWINME_GITHUB_REDIRECT_URI" not in os.environ


def test_manifest_rejects_incomplete_sandbox(tmp_path):
    manifest = {
        "participants": [],
        "sandbox": {"participants": [{"id": "S01", "platforms": ["github"]}]},
    }
    (tmp_path / "demo.json").write_text(json.dumps(manifest))
    with pytest.raises(UsageError, match="S01 is missing sandbox_user"):
        demo.load_manifest(tmp_path)


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
    assert ids == ["P01", "P02", "P03", "P04"]
    sandbox_ids = [p["id"] for p in manifest["sandbox"]["participants"]]
    assert sandbox_ids == ["S01", "S02"]
    users = [p["sandbox_user"] for p in manifest["sandbox"]["participants"]]
    assert len(set(users)) == len(users)  # one sandbox account per participant
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
    assert len(rows) == 30
    for sample, original in rows:
        assert (SAMPLES / sample).read_bytes() == (real / original).read_bytes(), sample
