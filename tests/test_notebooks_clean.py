"""Notebooks are stored without outputs and take their inputs from a parameters cell."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))

# Parameter names that would put a secret into papermill's output notebook.
SECRET_WORDS = ("key", "token", "secret", "password", "verifier")


def test_notebooks_folder_is_not_empty():
    assert [p.name for p in NOTEBOOKS if p.name == "trait_report.ipynb"] == [
        "trait_report.ipynb"
    ]


def _parameters_cells(notebook: dict) -> list[dict]:
    return [
        cell
        for cell in notebook["cells"]
        if "parameters" in cell.get("metadata", {}).get("tags", [])
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_no_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] != "code":
            continue
        assert cell.get("outputs") == [], f"cell {index} has outputs"
        assert cell.get("execution_count") is None, f"cell {index} was executed"
    assert "papermill" not in notebook["metadata"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_has_one_parameters_cell(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    cells = _parameters_cells(notebook)
    assert len(cells) == 1
    assert cells[0]["cell_type"] == "code"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_parameters_hold_no_secret(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    source = "".join(_parameters_cells(notebook)[0]["source"])
    names = [
        target.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    ]
    assert names
    for name in names:
        for word in SECRET_WORDS:
            assert word not in name.lower(), f"parameter {name} looks like a secret"


def test_trait_report_parameters():
    notebook = json.loads(
        (Path(__file__).parents[1] / "notebooks" / "trait_report.ipynb").read_text()
    )
    source = "".join(_parameters_cells(notebook)[0]["source"])
    values = {}
    exec(compile(source, "parameters", "exec"), {}, values)
    assert values == {
        "workspace": "data/workspace",
        "participant": "",
        "mapping": None,
        "output_dir": None,
    }
