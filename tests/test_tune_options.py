"""Options of ``tune`` checked before any tuning folder or kernel exists."""

from __future__ import annotations

import json

import papermill
import pytest

from twinme_lab.cli import common, main
from twinme_lab.errors import NotFoundError, TwinMeError, UsageError
from twinme_lab.reports import runner
from twinme_lab.traits import tuning


@pytest.fixture(autouse=True)
def reset_cli_state():
    common.reset_state()
    yield
    common.reset_state()


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if anything tries to start a notebook kernel."""

    def start(*args, **kwargs):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(runner, "ReportKernel", start)


def tune(workspace, *options: str) -> int:
    return main(["tune", *options, "--workspace", str(workspace.root), "--json"])


def test_unknown_instrument_exits_2(workspace, capsys, no_kernel):
    assert tune(workspace, "--instrument", "foo") == 2

    payload = json.loads(capsys.readouterr().out)
    assert payload["exit_code"] == 2
    assert "'foo'" in payload["error"]
    assert "ipip50" in payload["error"]
    assert "tipi" in payload["error"]
    assert not (workspace.root / "tuning").exists()


def test_unknown_feature_exits_2(workspace, capsys, no_kernel):
    assert tune(workspace, "--feature", "nope") == 2

    payload = json.loads(capsys.readouterr().out)
    assert payload["kind"] == "UsageError"
    assert "'nope'" in payload["error"]
    assert "listening_hours" in payload["error"]
    assert ".." not in payload["error"]
    assert not (workspace.root / "tuning").exists()


def test_unknown_base_mapping_like_score(workspace, capsys, no_kernel):
    root = str(workspace.root)
    score_code = main(["score", "--mapping", "default-9", "--workspace", root])
    capsys.readouterr()

    assert tune(workspace, "--base-mapping", "default-9") == score_code

    payload = json.loads(capsys.readouterr().out)
    assert payload["kind"] == "NotFoundError"
    assert payload["exit_code"] == 1
    assert "'default-9'" in payload["error"]
    assert "twinme-lab mappings list" in payload["error"]
    assert not (workspace.root / "tuning").exists()


def test_missing_scores_exit_1(workspace, capsys, no_kernel):
    assert tune(workspace) == 1

    payload = json.loads(capsys.readouterr().out)
    assert "No ipip50 questionnaire scores" in payload["error"]
    assert not (workspace.root / "tuning").exists()


def test_check_unstored_feature(workspace):
    with pytest.raises(TwinMeError, match="'listening_hours' is not computed"):
        tuning.check_tuning_options(workspace, feature_set=["listening_hours"])


def test_check_unknown_instrument(workspace):
    with pytest.raises(UsageError, match="'foo'"):
        tuning.check_tuning_options(workspace, instrument="foo")


def test_check_unknown_mapping(workspace):
    with pytest.raises(NotFoundError, match="'default-9'"):
        tuning.check_tuning_options(workspace, base_mapping="default-9")


def test_run_tuning_checks_first(workspace, no_kernel):
    with pytest.raises(UsageError, match="'nope'"):
        tuning.run_tuning(workspace, feature_set=["nope"], model="ridge")

    assert not (workspace.root / "tuning").exists()


@pytest.mark.parametrize(
    "evalue", ["Unknown features: ['nope'].", "Unknown features: ['nope']"]
)
def test_notebook_error_single_period(workspace, tmp_path, monkeypatch, evalue):
    class IdleKernel:
        def __init__(self, env, cwd):
            pass

    def fail(kernel, notebook, output, parameters, cwd):
        raise papermill.PapermillExecutionError(
            cell_index=2,
            exec_count=3,
            source="features, scores = tuning.tuning_inputs(ws)",
            ename="UsageError",
            evalue=evalue,
            traceback=[],
        )

    monkeypatch.setattr(runner, "ReportKernel", IdleKernel)
    monkeypatch.setattr(runner, "run_papermill", fail)
    output = tmp_path / "run" / tuning.TUNING_NOTEBOOK

    with pytest.raises(TwinMeError) as caught:
        tuning.execute_notebook(workspace, tuning.TUNING_NOTEBOOK, {}, output)

    message = str(caught.value)
    assert "['nope']. The partial notebook is" in message
    assert ".." not in message
    assert message.endswith(f"{output}.")
