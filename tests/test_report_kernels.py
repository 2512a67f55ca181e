"""Report kernels: started ahead in a batch, moved to their folder, always stopped.

Also the page-level plotly.js: the executed notebook carries no copy of it, and
the exported page carries exactly one, before the first chart.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import nbformat
import plotly.offline
import pytest
from conftest import attach_read_write, write_code_notebook

from twinme_lab import store
from twinme_lab.reports import batch, run_report, runner, sections
from twinme_lab.reports import html as report_html
from twinme_lab.reports.batch import KernelSupply, run_reports

BANNER = f"plotly.js v{plotly.offline.get_plotlyjs_version()}"

# A report notebook that records its kernel's working folder, by a relative path.
CWD_NOTEBOOK = [
    (
        "parameters",
        'workspace = ""\nparticipant = ""\nmapping = None\noutput_dir = None',
    ),
    (
        None,
        "import os\nfrom pathlib import Path\nPath('cwd.txt').write_text(os.getcwd())",
    ),
]


@pytest.fixture
def connections(monkeypatch):
    """Count the DuckDB connections this process opens through the store."""
    opened = []
    original = store.new_connection

    def counting(*args, **kwargs):
        opened.append(True)
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "new_connection", counting)
    return opened


@pytest.fixture
def kernels(monkeypatch):
    """Record every report kernel the batch module starts, in order."""
    started = []

    class Recorded(runner.ReportKernel):
        def __init__(self, env, cwd):
            super().__init__(env, cwd)
            self.started_in = Path(cwd)
            started.append(self)

    monkeypatch.setattr(batch, "ReportKernel", Recorded)
    yield started
    for kernel in started:
        kernel.close()


def kill(kernel: runner.ReportKernel) -> None:
    """Kill the kernel's process, as a crash would, and wait until it is gone."""
    kernel.manager.signal_kernel(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while kernel.manager.is_alive():
        assert time.monotonic() < deadline, "the killed kernel is still alive"
        time.sleep(0.05)


def cwd_notebook(path: Path) -> Path:
    return write_code_notebook(path, CWD_NOTEBOOK)


def chart_notebook(html_outputs: list[str]) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("show()")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/html": text, report_html.PLOTLY_MIMETYPE: {"data": []}},
        )
        for text in html_outputs
    ]
    notebook.cells.append(cell)
    return notebook


def test_supply_starts_the_next_kernel_ahead(scored_pair, kernels):
    supply = KernelSupply()
    first = supply.take(scored_pair)
    assert kernels == [first, kernels[1]]
    ahead = kernels[1]
    assert ahead.is_alive()
    second = supply.take(scored_pair)
    assert second is ahead
    assert len(kernels) == 3
    supply.close()
    assert not kernels[2].is_alive()
    assert all(k.started_in == scored_pair.reports_dir.resolve() for k in kernels)
    for kernel in (first, second):
        kernel.close()


def test_supply_replaces_a_dead_kernel(scored_pair, kernels):
    supply = KernelSupply()
    supply.take(scored_pair).close()
    kill(kernels[1])
    taken = supply.take(scored_pair)
    assert taken is kernels[2]
    assert taken.is_alive()
    taken.close()
    supply.close()


def test_supply_drops_a_kernel_with_another_environment(
    scored_pair, kernels, monkeypatch
):
    supply = KernelSupply()
    supply.take(scored_pair).close()
    monkeypatch.setenv("TWINME_TEST_MARKER", "changed")
    taken = supply.take(scored_pair)
    assert taken is kernels[2]
    assert taken.env["TWINME_TEST_MARKER"] == "changed"
    assert not kernels[1].is_alive()
    taken.close()
    supply.close()


@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_kernels_run_in_their_report_folder(scored_pair, tmp_path, jobs):
    notebook = cwd_notebook(tmp_path / "cwd.ipynb")
    result = run_reports(scored_pair, jobs=jobs, notebook=notebook)
    assert [o.status for o in result.outcomes] == ["written", "written"]
    for participant_id in ("P01", "P02"):
        folder = (scored_pair.reports_dir / participant_id).resolve()
        assert (folder / "cwd.txt").read_text() == str(folder)
    assert not (scored_pair.reports_dir / "cwd.txt").exists()


def test_single_report_kernel_runs_in_its_folder(scored_pair, tmp_path):
    notebook = cwd_notebook(tmp_path / "cwd.ipynb")
    report = runner.load_report_data(scored_pair, "P01")
    paths = runner.execute_report(scored_pair, report, notebook=notebook)
    assert (paths.folder / "cwd.txt").read_text() == str(paths.folder.resolve())


@pytest.mark.parametrize("jobs", [1, 2])
def test_batch_leaves_no_kernel_behind(scored_pair, tmp_path, monkeypatch, jobs):
    # Workers find the temporary folder through TMPDIR; this process through
    # tempfile's cache, which is cleared so it reads TMPDIR again.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)
    result = run_reports(scored_pair, jobs=jobs)
    assert [o.status for o in result.outcomes] == ["written", "written"]
    assert sorted(p.name for p in scratch.iterdir() if "kernel" in p.name) == []


def test_report_one_without_keep_starts_no_spare(scored_pair, kernels):
    outcome = batch.report_one(str(scored_pair.root), "P01", None, True)
    assert outcome.status == "written"
    assert kernels == []


def test_ready_check_survives_a_busy_kernel(tmp_path):
    # A kernel that takes longer than the 1 s poll to reply queues a reply per
    # request sent meanwhile. A check that sent a new request for every stale
    # reply it read would never catch up and would time out.
    kernel = runner.ReportKernel(dict(os.environ), tmp_path)
    try:
        client = kernel.manager.client()
        client.start_channels()
        client.execute("import time; time.sleep(3)")
        started = time.monotonic()
        client.wait_for_ready(timeout=30)
        assert time.monotonic() - started < 20
        client.stop_channels()
    finally:
        kernel.close()


def test_ready_check_reports_a_dead_kernel(tmp_path):
    kernel = runner.ReportKernel(dict(os.environ), tmp_path)
    try:
        client = kernel.manager.client()
        client.start_channels()
        kill(kernel)
        with pytest.raises(RuntimeError, match="died"):
            client.wait_for_ready(timeout=60)
        client.stop_channels()
    finally:
        kernel.close()


def test_notebook_has_no_plotlyjs_and_page_has_one(scored_pair):
    paths = run_report(scored_pair, "P01")
    notebook = paths.notebook.read_text()
    assert BANNER not in notebook
    assert report_html.PLOTLY_MIMETYPE in notebook
    page = paths.html.read_text()
    assert page.count(BANNER) == 1
    assert page.index(BANNER) < page.index("Plotly.newPlot(")
    # The library is page script, not text escaped into the page.
    assert "&lt;script" not in page[: page.index(BANNER)]


def test_needs_plotlyjs():
    assert report_html.needs_plotlyjs(chart_notebook(["<div>chart</div>"]))
    with_copy = chart_notebook([f"<script>/** {BANNER} */</script>", "<div></div>"])
    assert not report_html.needs_plotlyjs(with_copy)
    plain = nbformat.v4.new_notebook()
    plain.cells.append(nbformat.v4.new_markdown_cell("no charts"))
    assert not report_html.needs_plotlyjs(plain)


def test_page_without_charts_has_no_plotlyjs(tmp_path):
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_markdown_cell("# Nothing to draw"))
    source = tmp_path / "plain.ipynb"
    nbformat.write(notebook, source)
    page = report_html.export_html(source, tmp_path / "plain.html", "Plain")
    text = page.read_text()
    assert "Nothing to draw" in text
    assert BANNER not in text


def test_batch_attaches_the_database_once(scored_pair, connections):
    result = run_reports(scored_pair, jobs=1, force=True)
    assert [o.status for o in result.outcomes] == ["written", "written"]
    # One to list the participants; the open check and the kept connection of
    # the batch. Opened per report, it would be two more for each of the two.
    assert len(connections) == 3


def test_batch_releases_the_database(scored_pair):
    run_reports(scored_pair, jobs=1)
    # A read-write attach from another process fails while any process still
    # has the file attached, even read-only.
    writer = attach_read_write(scored_pair.root)
    assert writer.returncode == 0, writer.stderr
    assert writer.stdout.strip() == "2"


def test_load_sections_opens_once(scored_pair, connections):
    loaded = sections.load_sections(scored_pair, "P01")
    assert len(connections) == 1
    assert list(loaded.communication.columns) == sections.COLUMNS
    assert loaded.platforms == {}
    assert loaded.interests == {}
