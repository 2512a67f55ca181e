"""The trait report: papermill run, HTML export, JSON, batch runs and secrecy.

One module-level run executes the real notebook on a workspace holding real
Spotify and Netflix samples and hand-written IPIP-50 answers; most tests read the
files it wrote. A few further runs cover the CLI, a participant without data, and
a batch with a failing notebook.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import nbformat
import plotly
import pytest
from conftest import REAL

from twinme_lab import keys, participants, traits
from twinme_lab.cli import common, main
from twinme_lab.errors import NotFoundError, UsageError
from twinme_lab.features import compute_features
from twinme_lab.imports import import_path
from twinme_lab.reports import data_summary, run_report
from twinme_lab.reports import runner as runner_module
from twinme_lab.reports.batch import run_reports
from twinme_lab.workspace import init_workspace, open_workspace

TRAITS = [
    "Openness",
    "Conscientiousness",
    "Extraversion",
    "Agreeableness",
    "Neuroticism",
]


@contextmanager
def captured_fds(path: Path):
    """Send this process's stdout and stderr (and its children's) to a file."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(path, "wb") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


def write_ipip50(path: Path, participant_ids: list[str]) -> None:
    """Answer every item so that each keyed answer is 4: 4 on '+' items, 2 on '-'.

    Every IPIP-50 scale then scores 4.0, and Neuroticism, the reverse pole of
    Emotional Stability, 6 - 4.0 = 2.0.
    """
    key = json.loads(
        (Path(traits.__file__).parent.parent / "data" / "ipip50_key.json").read_text()
    )["items"]
    answers = {item["item"]: (4 if item["key"] == 1 else 2) for item in key}
    header = "participant," + ",".join(str(i) for i in range(1, 51))
    rows = [
        pid + "," + ",".join(str(answers[i]) for i in range(1, 51))
        for pid in participant_ids
    ]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Build a workspace from real samples and run the report of P01 once.

    The key comes from a key file named by TWINME_KEY_FILE, so the test can look
    for the file's content in every output. Everything written to stdout and
    stderr during the run, the kernel's included, goes to ``console.txt``.
    """
    base = tmp_path_factory.mktemp("report")
    key_hex = keys.generate_key()
    key_file = base / "master.key"
    keys.write_key_file(key_file, key_hex)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(keys.CONFIG_DIR_ENV, str(base / "config"))
        patch.delenv(keys.KEY_ENV, raising=False)
        patch.setenv(keys.KEY_FILE_ENV, str(key_file))
        ws, _ = init_workspace(base / "ws")
        participants.add(ws, "P01", "America/New_York", "v1")
        import_path(ws, "spotify", REAL / "spotify_extended" / "a", "P01")
        import_path(
            ws,
            "netflix",
            REAL / "netflix_viewing_activity" / "a" / "ViewingActivity.csv",
            "P01",
        )
        answers = base / "ipip50.csv"
        write_ipip50(answers, ["P01"])
        traits.import_questionnaire(ws, answers, "ipip50")
        compute_features(ws)
        traits.score(ws)
        console = base / "console.txt"
        with captured_fds(console):
            paths = run_report(ws, "P01")
    return {
        "ws_root": ws.root,
        "key_hex": key_hex,
        "key_file_text": key_file.read_text(),
        "database_key": ws.key.database_key(),
        "token_key": ws.key.token_key().hex(),
        "paths": paths,
        "console": console,
    }


def plot_calls(html: str) -> list[list[dict]]:
    """Return the data argument of every Plotly.newPlot call in the page."""
    decoder = json.JSONDecoder()
    calls = []
    for match in re.finditer(r'Plotly\.newPlot\(\s*"[^"]+",\s*', html):
        data, _ = decoder.raw_decode(html, match.end())
        calls.append(data)
    return calls


def test_report_writes_three_files(run):
    paths = run["paths"]
    folder = run["ws_root"] / "reports" / "P01"
    assert paths.folder == folder
    assert paths.notebook == folder / "trait_report.ipynb"
    assert paths.html == folder / "trait_report.html"
    assert paths.scores == folder / "trait_scores.json"
    for path in (paths.notebook, paths.html, paths.scores):
        assert path.is_file(), path
    leftovers = sorted(p.name for p in folder.iterdir())
    assert leftovers == ["trait_report.html", "trait_report.ipynb", "trait_scores.json"]


def test_executed_notebook_has_no_errors(run):
    notebook = nbformat.read(run["paths"].notebook, as_version=4)
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
        if output.output_type == "error"
    ]
    assert errors == []
    injected = [
        c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])
    ]
    assert len(injected) == 1
    assert 'participant = "P01"' in injected[0].source


def test_scores_json_records_provenance(run, monkeypatch):
    document = json.loads(run["paths"].scores.read_text())
    assert document["participant_id"] == "P01"
    assert document["mapping_version"] == "default-1"
    assert document["package_version"] == "0.1.0"
    assert re.fullmatch(r"[0-9a-f]{64}", document["data_fingerprint"])
    assert document["parameters"]["participant"] == "P01"
    assert document["parameters"]["mapping"] == "default-1"
    assert set(document["parameters"]) == {
        "workspace",
        "participant",
        "mapping",
        "output_dir",
    }
    assert document["generated_at"].endswith("+00:00")
    assert sorted(document["traits"]) == sorted(TRAITS)

    monkeypatch.setenv(keys.KEY_ENV, run["key_hex"])
    stored = traits.trait_table(open_workspace(run["ws_root"]), "P01")
    for row in stored.itertuples(index=False):
        entry = document["traits"][row.trait.capitalize()]
        assert entry["coverage"] == pytest.approx(row.coverage, abs=1e-12)
        assert entry["n_obs"] == row.n_obs
        if row.score != row.score:  # NaN: not scored
            assert entry["score"] is None
        else:
            assert entry["score"] == pytest.approx(row.score, abs=1e-12)


def test_extraversion_is_null_without_weights(run):
    # The default mapping gives every Extraversion feature weight 0, so no
    # evidence reaches it: NULL with coverage 0.
    document = json.loads(run["paths"].scores.read_text())
    assert document["traits"]["Extraversion"] == {
        "score": None,
        "coverage": 0.0,
        "n_obs": 0,
    }


def test_html_chart_carries_trait_data(run):
    html = run["paths"].html.read_text()
    document = json.loads(run["paths"].scores.read_text())
    charts = plot_calls(html)
    assert len(charts) == 2  # the trait chart and the history chart
    bars = [t for t in charts[0] if t["type"] == "bar"][0]
    measured = [t for t in TRAITS if document["traits"][t]["score"] is not None]
    assert bars["x"] == measured
    expected = [document["traits"][t]["score"] for t in measured]
    assert bars["y"] == pytest.approx(expected, abs=1e-12)
    opacity = [0.25 + 0.75 * document["traits"][t]["coverage"] for t in measured]
    assert bars["marker"]["opacity"] == pytest.approx(opacity)
    missing = [t for t in charts[0] if t["name"] == "not measured"][0]
    assert missing["x"] == ["Extraversion"]
    assert missing["text"] == ["not measured"]


def test_html_embeds_plotlyjs_once(run):
    html = run["paths"].html.read_text()
    version = plotly.offline.get_plotlyjs_version()
    assert html.count(f"plotly.js v{version}") == 1
    # The library must load before the first chart calls it.
    assert html.index(f"plotly.js v{version}") < html.index("Plotly.newPlot(")
    assert re.search(r"<script[^>]*\bsrc\s*=", html, re.IGNORECASE) is None
    assert "require.min.js" not in html


def test_html_has_no_code_or_prompts(run):
    html = run["paths"].html.read_text()
    for code in ("load_report_data", "open_workspace", "import twinme_lab"):
        assert code not in html, code
    # Class names also occur in the page's CSS; only elements count.
    classes = " ".join(re.findall(r'class="([^"]*)"', html)).split()
    assert "highlight" not in classes
    assert "jp-CodeMirrorEditor" not in classes
    assert "jp-InputArea-editor" not in classes
    assert "jp-InputPrompt" not in classes
    assert "jp-OutputPrompt" not in classes
    assert "jp-OutputArea" in classes


def test_html_shows_questionnaire_beside_prediction(run):
    html = run["paths"].html.read_text()
    # Hand-scored answers: every scale 4.00, Neuroticism 2.00.
    assert "questionnaire (mean item)" in html
    rows = re.findall(
        r"<tr>\s*<td>(\w+)</td>\s*<td>([+-]\d\.\d\d)</td>\s*"
        r"<td>(\d+)%</td>\s*<td>ipip50</td>\s*<td>(\d\.\d\d)</td>",
        html,
    )
    by_trait = {trait: questionnaire for trait, _, _, questionnaire in rows}
    assert by_trait["Openness"] == "4.00"
    assert by_trait["Conscientiousness"] == "4.00"
    assert by_trait["Agreeableness"] == "4.00"
    assert by_trait["Neuroticism"] == "2.00"
    assert "Extraversion" not in by_trait  # no prediction to compare with
    # The IPIP project publishes no norms, so no IPIP-50 percentile is known.
    assert "Percentile unknown: The IPIP project publishes no norms" in html


def test_html_shows_mapping_sources_and_summary(run):
    html = run["paths"].html.read_text()
    assert "default-1" in html
    assert "Bansal, J., &amp; Woolhouse, M. (2015)" in html
    assert "listening_artist_entropy" in html
    assert "America/New_York" in html


def test_data_summary_counts_samples(run, monkeypatch, expected_counts):
    monkeypatch.setenv(keys.KEY_ENV, run["key_hex"])
    summary = data_summary(open_workspace(run["ws_root"]), "P01")
    counts = {(r.source, r.kind): r.events for r in summary.itertuples()}
    audio = expected_counts["spotify_extended/a/Streaming_History_Audio_2023.json"]
    video = expected_counts["spotify_extended/a/Streaming_History_Video_2023.json"]
    activity = expected_counts["netflix_viewing_activity/a/ViewingActivity.csv"]
    assert counts[("spotify_extended", "music")] == (
        audio["records"] - audio["podcast_rows"]
    )
    assert counts[("spotify_extended", "podcast")] == audio["podcast_rows"]
    assert counts[("spotify_extended", "video")] == video["records"]
    assert counts[("netflix_activity", "viewing")] == (
        activity["records"] - activity["supplemental_rows"]
    )
    assert counts[("netflix_activity", "supplemental")] == activity["supplemental_rows"]


def test_outputs_hold_no_secret(run):
    secrets = {
        "master key": run["key_hex"],
        "key file content": run["key_file_text"].strip(),
        "database key": run["database_key"],
        "token key": run["token_key"],
    }
    files = [p for p in (run["ws_root"] / "reports").rglob("*") if p.is_file()]
    files.append(run["console"])
    assert len(files) == 4
    for path in files:
        text = path.read_text(errors="replace").lower()
        for name, secret in secrets.items():
            assert secret.lower() not in text, f"{name} in {path.name}"


def test_console_has_no_kernel_noise(run):
    text = run["console"].read_text(errors="replace")
    assert "without encryption" not in text
    assert "Traceback" not in text


def test_report_resumes_when_current(run, monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, run["key_hex"])
    before = run["paths"].html.stat().st_mtime_ns
    result = run_reports(run["ws_root"], ["P01"], jobs=1)
    assert [o.status for o in result.outcomes] == ["skipped"]
    assert run["paths"].html.stat().st_mtime_ns == before


def test_unknown_participant_is_rejected(run, monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, run["key_hex"])
    with pytest.raises(NotFoundError, match="P99 is not enrolled"):
        run_report(run["ws_root"], "P99")
    assert not (run["ws_root"] / "reports" / "P99").exists()


def test_other_mapping_is_rejected(run, monkeypatch):
    from twinme_lab.traits.mapping import load_mapping, mapping_path
    from twinme_lab.workspace import open_workspace

    monkeypatch.setenv(keys.KEY_ENV, run["key_hex"])
    ws = open_workspace(run["ws_root"])
    # A mapping that exists, but not the one the scores were computed with.
    other = dict(load_mapping("default-1", ws), version="tuned-7")
    path = mapping_path(ws, "tuned-7")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(other), encoding="utf-8")
    try:
        with pytest.raises(UsageError, match="computed with mapping default-1"):
            run_report(ws, "P01", mapping="tuned-7")
    finally:
        path.unlink()


def test_kernel_spec_ignores_shadowing_python3(tmp_path, monkeypatch):
    # A python3 spec earlier on the Jupyter path that points at another Python.
    spec_dir = tmp_path / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [
                    "/nonexistent/bin/python",
                    "-m",
                    "ipykernel_launcher",
                    "-f",
                    "{connection_file}",
                ],
                "display_name": "Other Python",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == (
        "/nonexistent/bin/python"
    )
    spec = runner_module.InterpreterKernelSpecs().get_kernel_spec("python3")
    assert spec.argv[0] == sys.executable
    assert spec.argv[1:3] == ["-m", "ipykernel_launcher"]


def test_cli_report_without_data_shows_not_measured(tmp_path, monkeypatch, capfd):
    master = keys.generate_key()
    monkeypatch.setenv(keys.KEY_ENV, master)
    ws, _ = init_workspace(tmp_path / "ws")
    participants.add(ws, "P02")
    traits.score(ws)
    common._state.update({"json": False, "exit_code": 0})
    code = main(
        [
            "--log-level",
            "DEBUG",
            "report",
            "--participant",
            "P02",
            "--workspace",
            str(ws.root),
            "--json",
        ]
    )
    common._state.update({"json": False, "exit_code": 0})
    logging.getLogger("twinme_lab").setLevel(logging.WARNING)
    console = capfd.readouterr()
    output = json.loads(console.out)
    assert code == 0
    assert "wrote report of P02" in console.err  # the log reached stderr
    for secret in (master, ws.key.database_key(), ws.key.token_key().hex()):
        assert secret not in console.out
        assert secret not in console.err

    html = Path(output["html"]).read_text()
    bars, missing = plot_calls(html)[0]
    assert bars["x"] == []
    assert missing["x"] == TRAITS
    assert html.count("<td>not measured</td>") == 5
    document = json.loads(Path(output["scores"]).read_text())
    for trait in TRAITS:
        assert document["traits"][trait] == {"score": None, "coverage": 0.0, "n_obs": 0}
    assert "No events imported for this participant." in html


def test_cli_report_needs_one_target(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(keys.KEY_ENV, keys.generate_key())
    ws, _ = init_workspace(tmp_path / "ws")
    assert main(["report", "--workspace", str(ws.root)]) == 2
    assert "either --participant ID or --all" in capsys.readouterr().err


def test_failed_notebook_keeps_error_and_others_run(tmp_path, monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, keys.generate_key())
    ws, _ = init_workspace(tmp_path / "ws")
    participants.add(ws, "P01")
    participants.add(ws, "P02")
    traits.score(ws)

    notebook = nbformat.read(runner_module.notebook_path(), as_version=4)
    failing = nbformat.v4.new_code_cell(
        'if participant == "P02":\n    raise RuntimeError("planted failure")'
    )
    notebook.cells.insert(2, failing)
    patched = tmp_path / "trait_report.ipynb"
    nbformat.write(notebook, patched)
    monkeypatch.setattr(runner_module, "notebook_path", lambda: patched)

    result = run_reports(ws, jobs=1)
    status = {o.participant_id: o.status for o in result.outcomes}
    assert status == {"P01": "written", "P02": "failed"}
    folder = ws.reports_dir / "P02"
    error = (folder / "report_error.txt").read_text()
    assert "RuntimeError: planted failure" in error
    assert (folder / "trait_report.failed.ipynb").is_file()
    assert not (folder / "trait_report.html").exists()
    assert (ws.reports_dir / "P01" / "trait_report.html").is_file()
    assert "planted failure" in result.failed[0].error


def test_run_reports_rejects_zero_jobs(tmp_path, monkeypatch):
    monkeypatch.setenv(keys.KEY_ENV, keys.generate_key())
    ws, _ = init_workspace(tmp_path / "ws")
    with pytest.raises(UsageError, match="at least 1"):
        run_reports(ws, jobs=0)


def test_report_unknown_mapping_not_found(scored_pair, capsys):
    code = main(
        [
            "report",
            "--participant",
            "P01",
            "--mapping",
            "default-9",
            "--workspace",
            str(scored_pair.root),
            "--json",
        ]
    )
    assert code == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["kind"] == "NotFoundError"
    assert "'default-9'" in payload["error"]
    assert not (scored_pair.reports_dir / "P01").exists()
