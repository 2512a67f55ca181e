"""Tuning through the CLI and notebooks, mappings, export, and the notebooks."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from twinme_lab import simulate
from twinme_lab.cli import main
from twinme_lab.traits import mapping as mapping_api
from twinme_lab.traits import norms, scoring, tuning
from twinme_lab.traits.questionnaires import import_questionnaire
from twinme_lab.workspace import init_workspace

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
SCIENCE_NOTEBOOKS = (
    "tune_trait_mappings.ipynb",
    "cohort_report.ipynb",
    "explore.ipynb",
)


def stored_cohort(root: Path, n: int, seed: int):
    """A workspace with a simulated cohort's features and IPIP-50 answers.

    Features are inserted as the simulator computed them, which the pipeline test
    in test_simulate.py shows equal to what the importers and SQL features give;
    that keeps this fixture fast.
    """
    ws, _ = init_workspace(root)
    cohort = simulate.simulate_cohort(n, seed)
    simulate.store_cohort(ws, cohort, f"run-{seed}")
    rows = [
        [pid, feature, None if pd.isna(value) else float(value), 100]
        for (pid, feature), value in cohort.features.stack(future_stack=True).items()
    ]
    with ws.connect() as con:
        con.executemany(
            "INSERT INTO features (participant_id, feature, value, n_obs, "
            "computed_at) VALUES (?, ?, ?, ?, now())",
            rows,
        )
    answers = root / "answers.csv"
    frame = cohort.answers.copy()
    frame.index.name = "participant"
    frame.to_csv(answers)
    import_questionnaire(ws, answers, "ipip50")
    return ws, cohort


@pytest.fixture(scope="module")
def science(tmp_path_factory):
    root = tmp_path_factory.mktemp("science") / "ws"
    config = tmp_path_factory.mktemp("config")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TWINME_CONFIG_DIR", str(config))
        patch.delenv("TWINME_KEY", raising=False)
        patch.delenv("TWINME_KEY_FILE", raising=False)
        ws, cohort = stored_cohort(root, 120, seed=8)
        yield ws, cohort, config


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().out


def test_notebooks_stored_clean():
    for name in SCIENCE_NOTEBOOKS:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        tagged = [
            c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])
        ]
        assert len(tagged) == 1, name
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], name
                assert cell.execution_count is None, name


def test_tune_cli_saves_mapping(science, capsys, monkeypatch):
    ws, _, config = science
    monkeypatch.setenv("TWINME_CONFIG_DIR", str(config))
    code, out = run_cli(
        [
            "tune",
            "--workspace",
            str(ws.root),
            "--outer-folds",
            "3",
            "--inner-folds",
            "3",
            "--permutations",
            "4",
            "--bootstrap",
            "50",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    result = json.loads(out)
    assert [row["trait"] for row in result["traits"]] == list(simulate.TRAITS)
    for row in result["traits"]:
        assert row["n"] == 120
        # Four permutations allow p in {0.2, 0.4, ..., 1.0} only.
        assert round(row["p_permutation"] * 5) == pytest.approx(
            row["p_permutation"] * 5
        )
    version = result["version"]
    document = mapping_api.load_mapping(version, ws)
    assert document["instrument"] == "ipip50"
    assert document["n_participants"] == 120
    executed = nbformat.read(result["notebook"], as_version=4)
    text = json.dumps(executed)
    assert ws.key.raw.hex() not in text

    code, out = run_cli(
        ["mappings", "list", "--workspace", str(ws.root), "--json"], capsys
    )
    listed = json.loads(out)
    assert version in {row["version"] for row in listed["mappings"]}
    assert listed["in_use"] == "default-1"

    code, out = run_cli(
        ["mappings", "use", version, "--workspace", str(ws.root)], capsys
    )
    assert code == 0
    assert mapping_api.default_version(ws) == version
    scoring.score(ws)
    table = scoring.trait_table(ws)
    assert set(table["mapping_version"]) == {version}

    code, out = run_cli(
        ["mappings", "show", version, "--workspace", str(ws.root)], capsys
    )
    assert code == 0
    assert "Tuned on ipip50 scores of 120 participants" in out


def test_mappings_use_unknown_version(science, capsys, monkeypatch):
    ws, _, config = science
    monkeypatch.setenv("TWINME_CONFIG_DIR", str(config))
    code = main(["mappings", "use", "no-such-version", "--workspace", str(ws.root)])
    assert code == 1
    assert "no-such-version" in capsys.readouterr().err


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_formats(science, tmp_path, monkeypatch, fmt):
    ws, cohort, config = science
    monkeypatch.setenv("TWINME_CONFIG_DIR", str(config))
    scoring.score(ws)
    out = tmp_path / f"traits.{fmt}"
    assert (
        main(
            ["export", "--format", fmt, "--out", str(out), "--workspace", str(ws.root)]
        )
        == 0
    )
    if fmt == "csv":
        frame = pd.read_csv(out)
    elif fmt == "parquet":
        frame = pd.read_parquet(out)
    else:
        frame = pd.DataFrame(json.loads(out.read_text())["traits"])
    assert list(frame.columns) == list(norms.EXPORT_COLUMNS)
    predicted = frame[frame["source"] == "predicted"]
    answered = frame[frame["source"] == "questionnaire"]
    assert len(predicted) == 120 * 5
    assert len(answered) == 120 * 5
    assert predicted["percentile"].isna().all()
    # IPIP-50 has no published norms, so its percentiles are NULL with the reason.
    assert answered["percentile"].isna().all()
    assert answered["percentile_note"].str.contains("ipip.ori.org").all()
    assert set(frame["participant_id"]) == set(cohort.participants)
    assert not (tmp_path / f"traits_interests.{fmt}").exists()


def test_export_interests_only_when_asked(science, tmp_path, monkeypatch):
    ws, cohort, config = science
    monkeypatch.setenv("TWINME_CONFIG_DIR", str(config))
    pid = cohort.participants[0]
    with ws.connect() as con:
        con.execute(
            "INSERT INTO interests VALUES (?, 'music_genre', 'jazz', 0.5, 10, now())",
            [pid],
        )
    plain = tmp_path / "plain.json"
    norms.write_export(ws, "json", plain)
    assert "interests" not in json.loads(plain.read_text())
    assert "jazz" not in plain.read_text()
    asked = tmp_path / "asked.csv"
    written = norms.write_export(ws, "csv", asked, interests=True)
    interests = pd.read_csv(written["interests"])
    assert interests.to_dict(orient="records") == [
        {
            "participant_id": pid,
            "category": "music_genre",
            "label": "jazz",
            "weight": 0.5,
            "n_obs": 10,
        }
    ]


def test_export_rejects_unknown_format(science):
    ws, _, _ = science
    with pytest.raises(Exception, match="xlsx"):
        norms.write_export(ws, "xlsx")


@pytest.mark.parametrize("name", ["cohort_report.ipynb", "explore.ipynb"])
def test_cohort_notebooks_execute(science, tmp_path, monkeypatch, name):
    ws, _, config = science
    monkeypatch.setenv("TWINME_CONFIG_DIR", str(config))
    scoring.score(ws)
    output = tmp_path / name
    tuning.execute_notebook(ws, name, {"workspace": str(ws.root)}, output)
    executed = nbformat.read(output, as_version=4)
    errors = [
        o
        for c in executed.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []
    assert ws.key.raw.hex() not in output.read_text()
