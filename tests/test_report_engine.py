"""The papermill engine of reports and tuning, and the reused HTML exporter.

The engine writes the output notebook when execution starts and ends, and at
cell boundaries only once papermill's autosave interval has passed. papermill's
stock engine writes it before and after every cell. The exporter is created
once per thread, so a page must not depend on which notebooks it exported
before.
"""

from __future__ import annotations

import datetime
import os
import threading

import nbformat
import papermill
import papermill.engines
import pytest
from conftest import write_code_notebook

from twinme_lab.reports import engine, runner
from twinme_lab.reports import html as report_html

CELLS = [
    ("parameters", "value = 1"),
    (None, "doubled = value * 2"),
    (None, "print(doubled)"),
    (None, "tripled = value * 3"),
]


def write_notebook(path, cells=CELLS):
    return write_code_notebook(path, cells)


@pytest.fixture
def writes(monkeypatch):
    """Record the path of every output notebook papermill's engines write."""
    written = []
    original = papermill.engines.write_ipynb

    def recording(nb, path, *args, **kwargs):
        written.append(str(path))
        return original(nb, path, *args, **kwargs)

    monkeypatch.setattr(papermill.engines, "write_ipynb", recording)
    return written


def run(tmp_path, source, output):
    # These notebooks read no workspace, so the kernel gets no key at all.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TWINME_")}
    kernel = runner.ReportKernel(env, tmp_path)
    runner.run_papermill(kernel, source, output, {"value": 7}, tmp_path)


def test_engine_writes_at_start_and_end(tmp_path, writes):
    source = write_notebook(tmp_path / "in.ipynb")
    output = tmp_path / "out.ipynb"
    run(tmp_path, source, output)
    assert writes == [str(output), str(output)]
    executed = nbformat.read(output, as_version=4)
    printed = [
        out["text"] for cell in executed.cells for out in cell.get("outputs", [])
    ]
    assert printed == ["14\n"]
    statuses = [cell.metadata.papermill["status"] for cell in executed.cells]
    # papermill injects a cell of parameters after the tagged one.
    assert statuses == ["completed"] * (len(CELLS) + 1)


def test_stock_engine_writes_every_cell(tmp_path, writes):
    # The control for the count above: papermill's own engine, same notebook.
    source = write_notebook(tmp_path / "in.ipynb")
    papermill.execute_notebook(
        str(source),
        str(tmp_path / "out.ipynb"),
        parameters={"value": 7},
        kernel_name="python3",
        progress_bar=False,
    )
    # Start, end, and before and after each of the five cells.
    assert len(writes) == 2 + 2 * (len(CELLS) + 1)


def test_failed_cell_leaves_its_traceback(tmp_path, writes):
    cells = [*CELLS[:2], (None, "raise ValueError('planted')"), *CELLS[2:]]
    source = write_notebook(tmp_path / "in.ipynb", cells)
    output = tmp_path / "out.ipynb"
    with pytest.raises(papermill.PapermillExecutionError, match="planted"):
        run(tmp_path, source, output)
    # papermill.execute then adds an error banner cell and writes once more,
    # outside the engine.
    assert len(writes) == 2
    executed = nbformat.read(output, as_version=4)
    statuses = [c.metadata.get("papermill", {}).get("status") for c in executed.cells]
    failed = [c for c, s in zip(executed.cells, statuses, strict=True) if s == "failed"]
    assert len(failed) == 1
    assert failed[0].outputs[0]["ename"] == "ValueError"
    # The cells after the failed one never ran.
    assert all(not cell.get("outputs") for cell in executed.cells[-2:])


class SteppedClock(engine.IntervalSaveManager):
    """A manager whose clock moves only when the test moves it (per instance)."""

    clock = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

    def now(self):
        return self.clock


def test_manager_saves_at_boundary_after_interval(tmp_path, writes):
    notebook = nbformat.read(write_notebook(tmp_path / "in.ipynb"), as_version=4)
    notebook.metadata.papermill = {}
    output = tmp_path / "out.ipynb"
    manager = SteppedClock(
        notebook, output_path=str(output), progress_bar=False, autosave_cell_every=30
    )
    manager.notebook_start()
    assert len(writes) == 1
    cell = notebook.cells[0]
    manager.cell_start(cell, 0)
    manager.cell_complete(cell, 0)
    assert len(writes) == 1
    manager.clock += datetime.timedelta(seconds=29)
    manager.cell_start(notebook.cells[1], 1)
    assert len(writes) == 1
    manager.clock += datetime.timedelta(seconds=1)
    manager.cell_complete(notebook.cells[1], 1)
    assert len(writes) == 2
    manager.cell_start(notebook.cells[2], 2)
    assert len(writes) == 2
    manager.notebook_complete()
    assert len(writes) == 3


def chart_free_notebook(text):
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_markdown_cell(f"# {text}")
    notebook.cells.append(cell)
    code = nbformat.v4.new_code_cell("x")
    code.outputs = [
        nbformat.v4.new_output("display_data", data={"text/html": f"<p>{text}</p>"})
    ]
    notebook.cells.append(code)
    return notebook


def test_exporter_is_reused_within_a_thread():
    assert report_html.exporter() is report_html.exporter()
    other = []
    thread = threading.Thread(target=lambda: other.append(report_html.exporter()))
    thread.start()
    thread.join()
    assert other[0] is not report_html.exporter()


def test_reused_exporter_page_matches_a_new_one(tmp_path):
    first = tmp_path / "first.ipynb"
    second = tmp_path / "second.ipynb"
    nbformat.write(chart_free_notebook("first participant"), first)
    nbformat.write(chart_free_notebook("second participant"), second)
    report_html.export_html(first, tmp_path / "first.html", "Trait report A")
    reused = report_html.export_html(second, tmp_path / "reused.html", "Trait report B")

    notebook = nbformat.read(second, as_version=4)
    notebook.metadata["title"] = "Trait report B"
    fresh, _ = report_html.new_exporter().from_notebook_node(notebook, resources={})
    page = reused.read_text(encoding="utf-8")
    assert page == fresh
    assert "second participant" in page
    assert "first participant" not in page
    assert "Trait report A" not in page
