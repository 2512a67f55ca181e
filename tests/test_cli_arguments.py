"""Strict JSON output, and blank option values rejected as invalid arguments."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from twinme_lab import participants
from twinme_lab.cli import common, main
from twinme_lab.errors import UsageError


@pytest.fixture(autouse=True)
def reset_cli_state():
    common.reset_state()
    yield
    common.reset_state()


def reject_constant(name: str):
    raise AssertionError(f"{name} is not valid JSON")


def strict_loads(text: str):
    """Parse JSON, failing on the NaN and Infinity words that strict JSON lacks."""
    return json.loads(text, parse_constant=reject_constant)


def test_simulate_json_has_no_nan(tmp_path, capsys):
    root = str(tmp_path / "sim")
    args = ["simulate", "--participants", "10", "--seed", "1", "--workspace", root]

    assert main([*args, "--no-import", "--json"]) == 0

    payload = strict_loads(capsys.readouterr().out)
    # Ten participants are too few for a ceiling, so it is unknown.
    ceilings = {row["trait"]: row["ceiling"] for row in payload["ceilings"]}
    assert ceilings["openness"] is None
    assert all(row["n"] == 10 for row in payload["ceilings"])


def test_to_json_non_finite_as_null():
    data = {
        "nan": math.nan,
        "inf": math.inf,
        "minus_inf": -math.inf,
        "numpy_nan": np.float64("nan"),
        "float32_nan": np.float32("nan"),
        "float32": np.float32(0.5),
        "int64": np.int64(7),
        "nested": [{"value": math.nan}, (1.5, math.inf)],
    }

    parsed = strict_loads(common.to_json(data))

    assert parsed["nan"] is None
    assert parsed["inf"] is None
    assert parsed["minus_inf"] is None
    assert parsed["numpy_nan"] is None
    assert parsed["float32_nan"] is None
    assert parsed["float32"] == 0.5
    assert parsed["int64"] == 7
    assert parsed["nested"] == [{"value": None}, [1.5, None]]


@pytest.mark.parametrize("as_json", [True, False])
def test_emit_prints_strict_json(capsys, as_json):
    common._state["json"] = as_json

    common.emit({"ceiling": math.nan, "r": 0.25})

    assert strict_loads(capsys.readouterr().out) == {"ceiling": None, "r": 0.25}


@pytest.mark.parametrize("value", ["", "   "])
@pytest.mark.parametrize("option", ["--consent", "--timezone"])
def test_blank_option_rejected(workspace, capsys, option, value):
    root = str(workspace.root)

    code = main(["participants", "add", "P004", option, value, "--workspace", root])

    assert code == 2
    assert option in capsys.readouterr().err
    assert participants.list_participants(workspace) == []


def test_blank_consent_as_json(workspace, capsys):
    args = ["participants", "add", "P004", "--consent", "", "--json"]

    assert main([*args, "--workspace", str(workspace.root)]) == 2

    payload = json.loads(capsys.readouterr().out)
    assert payload["exit_code"] == 2
    assert "--consent" in payload["error"]


def test_omitted_consent_stays_null(workspace, capsys):
    args = ["participants", "add", "P004", "--workspace", str(workspace.root)]

    assert main([*args, "--json"]) == 0

    record = json.loads(capsys.readouterr().out)
    assert record["consent_version"] is None
    assert record["consent_at"] is None


@pytest.mark.parametrize("value", ["", " \t"])
def test_add_rejects_blank_consent(workspace, value):
    with pytest.raises(UsageError, match="consent version"):
        participants.add(workspace, "P004", consent_version=value)

    assert participants.list_participants(workspace) == []
