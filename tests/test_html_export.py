"""The HTML page written from a report notebook leaves no .tmp file behind."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from conftest import write_code_notebook

from twinme_lab.reports import html


@pytest.fixture
def notebook(tmp_path) -> Path:
    """An executed-looking notebook of one code cell with a text output."""
    import nbformat

    path = write_code_notebook(tmp_path / "report.ipynb", [(None, "print('hi')")])
    document = nbformat.read(path, as_version=4)
    document.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="hi\n")
    ]
    nbformat.write(document, path)
    return path


def fail_after_partial_write(exc: BaseException):
    """Return a Path.write_text that leaves a partial file, then raises."""

    def write_text(self, data, *args, **kwargs):
        with open(self, "w", encoding="utf-8") as handle:
            handle.write(data[:100])
        raise exc

    return write_text


def test_export_html_writes_page(notebook, tmp_path):
    page = tmp_path / "report.html"

    assert html.export_html(notebook, page, "P001") == page

    assert "hi" in page.read_text()
    assert not (tmp_path / "report.html.tmp").exists()


@pytest.mark.parametrize(
    "exc",
    [OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), KeyboardInterrupt()],
    ids=["disk-full", "interrupt"],
)
def test_failed_write_removes_tmp(notebook, tmp_path, monkeypatch, exc):
    page = tmp_path / "report.html"
    page.write_text("earlier page\n")
    monkeypatch.setattr(Path, "write_text", fail_after_partial_write(exc))

    with pytest.raises(type(exc)):
        html.export_html(notebook, page, "P001")

    assert not (tmp_path / "report.html.tmp").exists()
    assert page.read_text() == "earlier page\n"


def test_failed_render_removes_stale_tmp(notebook, tmp_path, monkeypatch):
    page = tmp_path / "report.html"
    stale = tmp_path / "report.html.tmp"
    stale.write_text("<html>cut off")

    def fail(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(html.HTMLExporter, "from_notebook_node", fail)

    with pytest.raises(KeyboardInterrupt):
        html.export_html(notebook, page, "P001")

    assert not stale.exists()
    assert not page.exists()
