"""Trait reports: the papermill runner, the HTML export and the report data.

:func:`run_report` executes ``notebooks/trait_report.ipynb`` for one participant
and writes ``reports/<id>/trait_report.ipynb``, ``trait_report.html`` and
``trait_scores.json``; :func:`run_reports` does so for many participants in
parallel. The notebook reads its data with :func:`load_report_data`.

The runner names are imported on first use, because papermill and nbconvert take
seconds to import and the notebook's kernel needs neither.
"""

from __future__ import annotations

import importlib

from .data import TRAITS, ReportData, data_summary, fingerprint, load_report_data

_LAZY = {
    "ReportError": "runner",
    "ReportPaths": "runner",
    "notebook_path": "runner",
    "run_report": "runner",
    "BatchResult": "batch",
    "ReportOutcome": "batch",
    "run_reports": "batch",
}

__all__ = [
    "TRAITS",
    "BatchResult",
    "ReportData",
    "ReportError",
    "ReportOutcome",
    "ReportPaths",
    "data_summary",
    "fingerprint",
    "load_report_data",
    "notebook_path",
    "run_report",
    "run_reports",
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
